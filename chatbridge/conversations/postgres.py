"""The history in PostgreSQL, for several hosts (``pip install 'chatbridge[postgres]'``):
psycopg 3 with a connection pool. Each operation runs in one transaction; one that meets
a deadlock or a serialization failure is run again from its start."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import anyio
import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from chatbridge.conversations.ops import Op, Query, Row, run_async
from chatbridge.conversations.schema import POSTGRES
from chatbridge.errors import HistoryError

T = TypeVar("T")

#: Tries of an operation that conflicts with concurrent transactions.
ATTEMPTS = 5
#: Held while the schema is created, so processes starting together do it once.
_SCHEMA_LOCK = 0x63686174  # "chat"


@cache
def _placeholders(sql: str) -> str:
    """``sql`` with psycopg's ``%s`` placeholders for ``?``."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    """A history database at the PostgreSQL ``url`` (``postgresql://user@host/db``),
    through a pool of at most ``max_connections``; its schema is created on first use."""

    dialect = POSTGRES

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url, min_size=1, max_size=max_connections, open=False, kwargs={"autocommit": True}
        )
        self._opened = False
        self._opening = anyio.Lock()

    async def _open(self) -> None:
        async with self._opening:
            if self._opened:
                return
            await self._pool.open(wait=True, timeout=30)
            async with self._pool.connection() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in POSTGRES.statements():
                    await connection.execute(statement)
            self._opened = True

    async def run(self, op: Callable[[], Op[T]]) -> T:
        try:
            if not self._opened:
                await self._open()
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    return await self._run(op)
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    if attempt == ATTEMPTS:
                        raise
            raise AssertionError("unreachable")
        except psycopg.Error as exc:
            raise HistoryError(f"the history database failed: {exc}") from exc
        except TimeoutError as exc:  # the pool found no connection in time
            raise HistoryError(f"the history database is unreachable: {exc}") from exc

    async def _run(self, op: Callable[[], Op[T]]) -> T:
        async with self._pool.connection() as connection, connection.transaction():
            cursor = connection.cursor()

            async def execute(query: Query) -> list[Row]:
                await cursor.execute(_placeholders(query[0]), query[1])
                return await cursor.fetchall() if cursor.description else []

            return await run_async(op, execute)

    async def aclose(self) -> None:
        await self._pool.close()
