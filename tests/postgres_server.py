"""A real, throwaway PostgreSQL server on loopback for the tests (Debian's postgresql
package, or initdb and postgres on PATH)."""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.loopback import free_port

# initdb refuses to run as root; as root the cluster is made and run by this system user.
SYSTEM_USER = "postgres"
# The cluster's superuser, whoever runs it: the URLs name it.
SUPERUSER = "postgres"
# Durability is of no use to a cluster deleted after the run.
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _bin_dir() -> Path | None:
    """The directory of initdb and postgres: PATH's, else the newest Debian install
    (/usr/lib/postgresql/VERSION/bin, which is not on PATH)."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    debian.sort(key=lambda path: [int(n) for n in re.findall(r"\d+", path)], reverse=True)
    candidates += [Path(path) for path in debian]
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def _missing(reason: str) -> NoReturn:
    """Skip, or fail when CHATBRIDGE_REQUIRE_POSTGRES is set (CI sets that)."""
    if os.environ.get("CHATBRIDGE_REQUIRE_POSTGRES"):
        pytest.fail(f"{reason}: PostgreSQL is required (apt-get install postgresql)")
    pytest.skip(reason)


@contextmanager
def postgres_server(seconds: float = 20) -> Iterator[str]:
    """Create and start a throwaway cluster on a free port of 127.0.0.1 (trust auth, no
    fsync); yields its URL, ``postgresql://postgres@127.0.0.1:PORT/postgres``, once it
    accepts connections (within ``seconds``). Stopped and deleted on exit. Skips when
    the binaries are missing, unless CHATBRIDGE_REQUIRE_POSTGRES is set."""
    import psycopg

    bin_dir = _bin_dir()
    if bin_dir is None:
        _missing("PostgreSQL (initdb, postgres) is not installed")
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            _missing(f"running as root, and there is no {SYSTEM_USER!r} user to run PostgreSQL")
        as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    root = Path(tempfile.mkdtemp(prefix="chatbridge-postgres-"))
    try:
        if as_user:
            os.chown(root, as_user["user"], as_user["group"])
        data = root / "data"
        initdb: list[str | Path] = [bin_dir / "initdb", "-D", data, "-U", SUPERUSER]
        # No password; no fsync; UTF-8 whatever the environment's locale (C: SQL_ASCII).
        initdb += ["--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"]
        made = subprocess.run(  # noqa: S603 (a fixed local binary and arguments)
            initdb,
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            **as_user,
        )
        if made.returncode != 0:
            pytest.fail(f"initdb failed ({made.returncode}):\n{made.stdout}{made.stderr}")
        port = free_port()
        settings = {
            **SETTINGS,
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(root),
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with open(root / "server.log", "wb") as log:
            server = subprocess.Popen(  # noqa: S603 (a fixed local binary and arguments)
                [bin_dir / "postgres", "-D", data, *options],
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                **as_user,
            )
        try:
            url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
            deadline = time.monotonic() + seconds
            while True:
                try:
                    psycopg.connect(url, connect_timeout=1).close()
                    break
                except psycopg.OperationalError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        log_text = (root / "server.log").read_text(errors="replace")
                        pytest.fail(f"PostgreSQL did not start:\n{log_text}")
                    time.sleep(0.05)
            yield url
        finally:
            server.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, stop
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
