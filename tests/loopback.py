"""Helpers for servers the tests and benchmarks start on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, seconds: float = 20) -> None:
    """Return once ``url`` answers HTTP at all; raise the last error after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def cli_server(
    *args: str, stdout: int = subprocess.DEVNULL
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``chatbridge ARGS --port PORT`` in a subprocess: its base URL and the process, once
    it answers HTTP. Stopped on exit."""
    port = free_port()
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "chatbridge.server.cli", *args, "--port", str(port)],
        stdout=stdout,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(base)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
