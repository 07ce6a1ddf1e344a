"""HTTP endpoints: validate, call core and adapters, respond."""
