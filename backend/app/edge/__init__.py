"""The edge purger: keeps nginx's edge copies as fresh as the events say (docs/caching.md)."""
