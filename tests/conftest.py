import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatbridge.clock import FakeClock
from chatbridge.conversations import History
from tests.postgres_server import postgres_server
from tests.redis_server import redis_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server for the session: the URL of its ``postgres``
    database (connect as the superuser, no password)."""
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the session's server, dropped after the test."""
    import psycopg
    from psycopg import sql

    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{postgres_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=["sqlite", "postgres"])
async def make_history(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Callable[..., History]]:
    """Makes histories (with options) on the backend of the parameter, on the test
    module's ``clock``: each with a database object of its own over one database, as
    the histories of several processes."""
    made: list[History] = []

    def make(**options: Any) -> History:
        if request.param == "sqlite":
            made.append(History.sqlite(tmp_path / "h.db", clock=clock, **options))
        else:
            url = request.getfixturevalue("postgres_database")
            made.append(History.postgres(url, clock=clock, **options))
        return made[-1]

    yield make
    for history in made:
        await history.aclose()


@pytest.fixture
def history(make_history: Callable[..., History]) -> History:
    return make_history()
