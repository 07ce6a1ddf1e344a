"""secure-llm-gateway: an OpenAI-compatible gateway with quotas, rate limits, redaction and telemetry."""

__all__ = ["__version__"]

__version__ = "0.1.0"
