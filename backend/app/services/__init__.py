"""Use cases of the API. Keyword-only functions over a SQLAlchemy connection; no Flask here."""
