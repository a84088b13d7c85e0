"""Metadata store. Callers use the `Store` interface; `SqliteStore` is the embedded default."""

from appyard.store.base import Store
from appyard.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store"]
