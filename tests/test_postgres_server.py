"""The throwaway PostgreSQL server of the tests (tests/postgres_server.py) answers queries
in a fresh database, and is recent enough for the SQL the tests use (DROP ... FORCE)."""

import pytest

pytestmark = pytest.mark.anyio


async def test_a_fresh_database_answers_queries(postgres_database: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_database) as connection:
        cursor = await connection.execute("SELECT 1, current_database()")
        assert await cursor.fetchone() == (1, postgres_database.rsplit("/", 1)[1])
        assert connection.info.server_version >= 130000
