"""Development tooling that works on the app from outside; never imported by `app/`."""
