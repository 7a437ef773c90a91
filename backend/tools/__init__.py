"""Developer tools that import the API itself (run from the repository root,
PYTHONPATH=backend:.)."""
