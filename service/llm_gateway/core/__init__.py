"""Pure cores: no I/O, no environment, no framework. Everything here is testable one call at a time."""
