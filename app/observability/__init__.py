"""What an operator sees of the running service: metrics, structured logs, request ids."""
