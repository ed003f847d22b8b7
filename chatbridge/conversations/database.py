"""The seam between the history's operations and a database: run one operation in one
transaction (``read`` for one that only reads). A backend is a driver of this protocol
(:mod:`.sqlite`, :mod:`.postgres`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from chatbridge.conversations.ops import Op
from chatbridge.conversations.schema import Dialect

T = TypeVar("T")


class Database(Protocol):
    """Runs history operations, each in one transaction, atomically."""

    dialect: Dialect

    async def run(self, op: Callable[[], Op[T]]) -> T:
        """Run a fresh ``op()`` in a transaction; a driver may run it again from the start
        after a conflict with a concurrent transaction. Database failures are
        :class:`~chatbridge.errors.HistoryError`; what the operation raises passes."""
        ...

    async def read(self, op: Callable[[], Op[T]]) -> T:
        """:meth:`run` for an operation that only reads: it may run beside writes, and
        each of its queries sees what was committed before it (PostgreSQL runs it
        without a transaction; READ COMMITTED gives each statement its own snapshot)."""
        ...

    async def aclose(self) -> None: ...
