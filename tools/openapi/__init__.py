"""Recording the OpenAPI examples (`python -m tools.openapi`, run by `make openapi`)."""
