"""HTTP layer: blueprints that parse input, call one use case and shape the response."""
