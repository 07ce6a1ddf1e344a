"""Metrics and tracing: what operators see of the gateway."""
