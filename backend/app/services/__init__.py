"""The application layer (no Flask here): use cases over units of work, read-your-writes, the
cache keys each write invalidates, API keys and readiness. Routes, the CLI and jobs call it."""
