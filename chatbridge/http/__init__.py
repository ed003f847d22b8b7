"""The one place outbound HTTP is configured: timeouts, pooling, and safe retries.

A request is retried only when it is certain the provider did not act on it: the
connection could not be made, or the provider answered 429/503 with a ``Retry-After``
short enough to wait for.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Literal, get_args

import anyio
import httpx

from chatbridge.errors import ConfigurationError
from chatbridge.http.client import Client


class _SecretQueryFilter(logging.Filter):
    """Hides the values of secret-looking query parameters (``access_token``, ``secret``,
    ``api_key``...) in the URLs of httpx's "HTTP Request: ..." log lines: WeChat puts its
    access token, and its app secret when fetching one, in the query."""

    SECRET = ("token", "secret", "key", "password", "sig")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.hidden(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True

    def hidden(self, url: httpx.URL) -> httpx.URL:
        pairs = url.params.multi_items()
        if not any(self.secret(name) for name, _ in pairs):
            return url
        return url.copy_with(params=[(n, "***" if self.secret(n) else v) for n, v in pairs])

    def secret(self, name: str) -> bool:
        return any(part in name.lower() for part in self.SECRET)


logging.getLogger("httpx").addFilter(_SecretQueryFilter())

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: httpx's own pool default: 100 connections, 20 of them kept alive between requests.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

#: How requests go on the wire: httpx's own transport (default, any async library), or
#: aiohttp's (``chatbridge[aiohttp]``, asyncio only; about a third of the CPU per send at
#: 8 in flight, an eighth or less at 64).
Engine = Literal["httpx", "aiohttp"]
ENGINES: tuple[Engine, ...] = get_args(Engine)
DEFAULT_ENGINE: Engine = "httpx"


def make_client(
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    engine: Engine = DEFAULT_ENGINE,
    max_connections: int | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (a :class:`~chatbridge.http.client.Client`) with
    chatbridge's timeouts and connection pool, sending through ``transport`` if given,
    else through ``engine``.

    ``max_connections`` sizes the pool to the sends kept in flight: at most that many
    connections, all kept alive (sends beyond it wait for a free one). Without it the
    aiohttp engine keeps up to 100 alive, and the httpx engine httpx's default (100, of
    which 20 stay alive). httpx's pool does work per request that grows with the square
    of its connections, so for many sends in flight choose the aiohttp engine
    (docs/serving.md, "Outbound HTTP engines")."""
    if engine not in ENGINES:
        raise ConfigurationError(f"unknown HTTP engine {engine!r} ({' or '.join(ENGINES)})")
    limits = DEFAULT_LIMITS
    if max_connections is not None:
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, not {max_connections}")
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
    if transport is None and engine == "aiohttp":
        transport = _aiohttp_transport(limits)
    return Client(timeout=DEFAULT_TIMEOUT, limits=limits, transport=transport)


def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    try:
        from chatbridge.http.aiohttp import AiohttpTransport
    except ImportError as exc:
        raise ConfigurationError(
            "the aiohttp HTTP engine needs: pip install 'chatbridge[aiohttp]'"
        ) from exc
    return AiohttpTransport(limits)


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait when a retry is safe."""

    attempts: int = 3
    max_wait: float = 30.0
    backoff: float = 0.2


def basic_authorization(user: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP basic auth (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def retry_after(response: httpx.Response) -> float | None:
    """The provider's Retry-After in seconds, when it is given as a number."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: RetryPolicy = RetryPolicy(),
    follow_redirects: bool = False,
) -> httpx.Response:
    """Send ``request``, retrying only where it is safe; the last response is returned
    whatever its status (the caller maps errors)."""
    attempt = 1
    while True:
        try:
            response = await client.send(request, follow_redirects=follow_redirects)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if attempt >= policy.attempts:
                raise
            await anyio.sleep(policy.backoff * 2 ** (attempt - 1))
        else:
            wait = retry_after(response) if response.status_code in (429, 503) else None
            if wait is None or wait > policy.max_wait or attempt >= policy.attempts:
                return response
            await response.aclose()
            await anyio.sleep(wait)
        attempt += 1
