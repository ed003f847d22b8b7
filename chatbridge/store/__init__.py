"""State stores behind one protocol: memory (tests), SQLite (embedded default)."""

from chatbridge.store.base import ContactState, Store
from chatbridge.store.memory import MemoryStore
from chatbridge.store.sqlite import SQLiteStore

__all__ = ["ContactState", "MemoryStore", "SQLiteStore", "Store"]
