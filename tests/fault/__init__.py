"""Fault tests: a real server against a private Postgres cluster that is restarted and killed."""
