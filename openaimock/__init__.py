"""openaimock: an OpenAI-compatible mock upstream for testing and benchmarking the gateway."""
