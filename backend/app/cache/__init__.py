"""The Redis cache: what is stored (entries), how it is read (reads), how writes invalidate it
(invalidation), and the per-process near cache in front of it (near)."""

from app.cache.entries import CachePolicy, CacheUnavailable, Outcome, Served
from app.cache.reads import Cache

__all__ = ["Cache", "CachePolicy", "CacheUnavailable", "Outcome", "Served"]
