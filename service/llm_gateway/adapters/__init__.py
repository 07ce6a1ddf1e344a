"""Adapters: the gateway's only I/O to other systems. They translate library errors into GatewayError."""
