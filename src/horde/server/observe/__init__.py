"""Observability at the boundary: request ids and JSON logs, Prometheus metrics (never in services)."""
