"""The history in PostgreSQL, for several hosts (``pip install 'chatbridge[postgres]'``):
psycopg 3 with a connection pool. Each operation runs in one transaction; one that meets
a deadlock or a serialization failure is run again from its start."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, TypeVar

import anyio
import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from chatbridge.conversations.ops import Op, Query, Row, comparable, run_async
from chatbridge.conversations.schema import LAST_TABLE, POSTGRES
from chatbridge.errors import ConfigurationError, HistoryError
from chatbridge.redaction import redact

T = TypeVar("T")

#: Tries of an operation that conflicts with concurrent transactions.
ATTEMPTS = 5
#: How long opening the pool waits for a first connection, in seconds.
OPEN_TIMEOUT = 10.0
#: Held while the schema is created, so processes starting together do it once.
_LOCK = 0x63686174  # "chat"
#: Whether the schema's last part exists (then all of it does).
_SCHEMA_MADE = (
    "SELECT 1 FROM information_schema.tables "
    f"WHERE table_name = '{LAST_TABLE}' AND table_schema = current_schema()"
)


#: A connection's states inside a transaction (ended with a rollback after a failure).
_OPEN = (TransactionStatus.INTRANS, TransactionStatus.INERROR)


@cache
def _placeholders(sql: str) -> str:
    """``sql`` with psycopg's placeholders for ``?``: ``%b``, binary (a list, an array,
    is then dumped without the text format's quoting of each item)."""
    return sql.replace("%", "%%").replace("?", "%b")


class PostgresDatabase:
    """A history database at the PostgreSQL ``url`` (``postgresql://user@host/db``),
    through a pool of at most ``max_connections``; its schema is created on first use.
    Text that PostgreSQL cannot store (the NUL character) is stored as U+FFFD."""

    dialect = POSTGRES

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        try:
            password = conninfo_to_dict(url).get("password")
        except psycopg.ProgrammingError:  # its message repeats the URL, password and all
            raise ConfigurationError(
                "the history's PostgreSQL url is not a connection URL "
                "(postgresql://user:password@host:port/database)"
            ) from None
        self._secrets = [str(password)] if password else []
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=max_connections,  # all opened at the start, not under load
            max_size=max_connections,
            open=False,
            # Prepared at first use, not the 5th on each connection (the pool takes them
            # in turn): a statement's text is the same for any number of rows.
            kwargs={"autocommit": True, "prepare_threshold": 0},
        )
        self._opened = False
        self._opening = anyio.Lock()

    async def _open(self) -> None:
        async with self._opening:
            if self._opened:
                return
            await self._pool.open(wait=True, timeout=OPEN_TIMEOUT)
            async with self._pool.connection() as connection:
                found = await connection.execute(_SCHEMA_MADE)
                if not await found.fetchone():  # else: no DDL (its locks) for each process
                    async with connection.transaction():
                        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                        for statement in POSTGRES.statements():
                            await connection.execute(statement)
            self._opened = True

    async def run(self, op: Callable[[], Op[T]]) -> T:
        return await self._retrying(op, write=True)

    async def read(self, op: Callable[[], Op[T]]) -> T:
        return await self._retrying(op, write=False)

    async def _retrying(self, op: Callable[[], Op[T]], *, write: bool) -> T:
        try:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    if not self._opened:
                        await self._open()
                    return await self._run(op, write=write)
                except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                    if attempt == ATTEMPTS:
                        raise
            raise AssertionError("unreachable")
        except psycopg.Error as exc:
            reason = redact(str(exc), self._secrets)
            raise HistoryError(f"the history database failed: {reason}") from None
        except TimeoutError:  # the pool found no connection in time
            raise HistoryError("the history database is unreachable (no connection)") from None

    async def _run(self, op: Callable[[], Op[T]], *, write: bool) -> T:
        """``op`` in one transaction, in pipeline mode: BEGIN goes with the first
        queries, queries sent together (:func:`~.ops.together`) in one round trip, and
        COMMIT with the last ones (:func:`~.ops.finish`), if any: recording a batch of
        events costs two round trips. A read runs without a transaction (READ
        COMMITTED gives each statement its own snapshot either way): a round trip a
        query, no BEGIN or COMMIT."""
        async with self._pool.connection() as connection:
            if not write:
                return await run_async(op, partial(_execute, connection, None))
            try:
                async with connection.pipeline() as pipeline:
                    await connection.execute("BEGIN")
                    value = await run_async(
                        op, partial(_execute, connection, pipeline), partial(_send, connection)
                    )
                    await connection.execute("COMMIT")
                # Leaving the pipeline waits for the COMMIT and raises what failed.
            except Exception:
                if connection.info.transaction_status in _OPEN:
                    await connection.rollback()
                raise
            return value

    async def aclose(self) -> None:
        await self._pool.close()


async def _execute(
    connection: psycopg.AsyncConnection[Any],
    pipeline: psycopg.AsyncPipeline | None,
    queries: Sequence[Query],
) -> list[list[Row]]:
    """Run ``queries`` (in one round trip in ``pipeline``); their rows."""
    cursors = []
    for sql, params in queries:
        cursor = connection.cursor()
        await cursor.execute(_placeholders(sql), tuple(map(_storable, params)))
        cursors.append(cursor)
    if pipeline is not None:
        await pipeline.sync()
    return [await cursor.fetchall() if cursor.description else [] for cursor in cursors]


async def _send(connection: psycopg.AsyncConnection[Any], queries: Sequence[Query]) -> None:
    """Queue ``queries`` in the connection's pipeline, their rows unread (they go with
    the next round trip)."""
    for sql, params in queries:
        await connection.execute(_placeholders(sql), tuple(map(_storable, params)))


def _storable(value: object) -> object:
    """``value`` (or the items of a list: an array) as PostgreSQL text can hold it (no
    NUL character)."""
    if isinstance(value, str):
        return comparable(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value
