"""State stores behind one protocol: memory (tests), SQLite (embedded default), Redis
(shared by many workers; ``chatbridge.store.redis.RedisStore``, imported on demand)."""

from chatbridge.store.base import ContactState, Store
from chatbridge.store.memory import MemoryStore
from chatbridge.store.sqlite import SQLiteStore

__all__ = ["ContactState", "MemoryStore", "SQLiteStore", "Store"]
