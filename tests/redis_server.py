"""A real redis-server on loopback for the tests (Debian's redis-server package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.loopback import free_port


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Start a throwaway redis-server (on ``port``, or a free one); yields its URL. Skips
    when the binary is missing, unless CHATBRIDGE_REQUIRE_REDIS is set (CI sets that)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CHATBRIDGE_REQUIRE_REDIS"):
            pytest.fail("redis-server is required (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    port = port or free_port()
    process = subprocess.Popen(  # noqa: S603 (a fixed local binary and arguments)
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
