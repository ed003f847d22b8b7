"""An httpx transport over aiohttp (``chatbridge[aiohttp]``, asyncio only).

aiohttp parses HTTP in C and pools connections without per-request bookkeeping over the
whole pool, so a send costs about a third of the CPU of httpx's own transport at 8 in
flight and an eighth or less at 64 (docs/benchmarks.md; with chatbridge's client, which
calls this transport directly). The transport maps an ``httpx.Request``
straight onto aiohttp's session and reads the answer whole (as ``httpx.AsyncClient.send``
does unless asked to stream). aiohttp's failures become the httpx exceptions
chatbridge's retry and :class:`~chatbridge.errors.DeliveryUnknownError` handling rely on:
a connection that was never made is a connect error (retried); any failure after the
request may have been sent is a read or protocol error (never retried: the provider may
have acted on it).
"""

from __future__ import annotations

from typing import Any, NoReturn

import aiohttp
import httpx
from yarl import URL

from chatbridge.http.client import DirectTransport, headers_of

#: aiohttp failures, most specific first, and what httpx raises for the same failure.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # pool wait or connect
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientConnectionError, httpx.ReadError),  # dropped after (part of) the request
    (aiohttp.ClientError, httpx.RemoteProtocolError),
)


class AiohttpTransport(DirectTransport):
    """Sends httpx requests through one ``aiohttp.ClientSession`` (opened on first use,
    in the running event loop) of at most ``limits.max_connections`` connections, all
    kept alive for ``limits.keepalive_expiry``. Cookies, redirects and decompression
    stay httpx's."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._ssl = httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout", {})
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, pool = key
            timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
            self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        try:
            data: Any = request.content or None
        except httpx.RequestNotRead:  # a streamed body (multipart upload): aiohttp reads it
            data = request.stream
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(request),
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:
                body = await response.read()
                raw_headers = response.raw_headers
        except Exception as exc:
            _raise_as_httpx(exc, request)
        return httpx.Response(
            response.status,
            headers=headers_of([(name, name.lower(), value) for name, value in raw_headers]),
            stream=httpx.ByteStream(body),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": response.reason.encode()}
            if response.reason
            else {"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _raise_as_httpx(exc: Exception, request: httpx.Request) -> NoReturn:
    for failure, mapped in _ERRORS:
        if isinstance(exc, failure):
            raise mapped(str(exc) or type(exc).__name__, request=request) from exc
    raise exc
