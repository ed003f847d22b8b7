"""An httpx transport over aiohttp (``chatbridge[aiohttp]``, asyncio only).

aiohttp parses HTTP in C and pools connections without per-request bookkeeping over the
whole pool, so a send costs about a third of the CPU of httpx's own transport at 8 in
flight and an eighth or less at 64 (docs/benchmarks.md; with chatbridge's client, which
calls this transport directly). The transport maps an ``httpx.Request``
straight onto aiohttp's session; the client's direct sends read the answer whole, httpx's
own (streams) read it as it comes. aiohttp's failures become the httpx exceptions
chatbridge's retry and :class:`~chatbridge.errors.DeliveryUnknownError` handling rely on:
a connection that was never made is a connect error (retried); any failure after the
request may have been sent is a read or protocol error (never retried: the provider may
have acted on it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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

    async def send_whole(self, request: httpx.Request) -> httpx.Response:
        try:
            async with await self._request(request) as response:
                body = await response.read()
        except Exception as exc:
            _raise_as_httpx(exc, request)
        return _response(response, request, httpx.ByteStream(body))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The answer with its body streamed (``AsyncClient.stream``, or through
        httpx's own send)."""
        try:
            response = await self._request(request)
        except Exception as exc:
            _raise_as_httpx(exc, request)
        return _response(response, request, _Body(response, request))

    async def _request(self, request: httpx.Request) -> aiohttp.ClientResponse:
        session = self._session or self._open()
        headers = request.headers.multi_items()
        try:
            data: Any = request.content or None
        except httpx.RequestNotRead:  # a streamed body: aiohttp chunks it itself
            data = request.stream
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        # Let the loop see a close the server sent after its last answer, or aiohttp
        # would reuse that connection and fail a request it never sent.
        await asyncio.sleep(0)
        return await session.request(
            request.method,
            URL(str(request.url), encoded=True),
            headers=headers,
            data=data,
            allow_redirects=False,
            compress=False,
            timeout=self._timeout(request),
            server_hostname=request.extensions.get("sni_hostname"),
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _Body(httpx.AsyncByteStream):
    """An aiohttp answer's body, read as httpx reads a stream, failures mapped."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response, self._request = response, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            _raise_as_httpx(exc, self._request)

    async def aclose(self) -> None:
        self._response.release()


def _response(
    response: aiohttp.ClientResponse, request: httpx.Request, stream: httpx.AsyncByteStream
) -> httpx.Response:
    extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
    if response.reason:
        extensions["reason_phrase"] = response.reason.encode("utf-8", "surrogateescape")
    return httpx.Response(
        response.status,
        headers=headers_of([(name, name.lower(), value) for name, value in response.raw_headers]),
        stream=stream,
        request=request,
        extensions=extensions,
    )


def _raise_as_httpx(exc: Exception, request: httpx.Request) -> NoReturn:
    """Raise the httpx error for ``exc``, saying what failed but not where: aiohttp's
    messages hold the URL, whose query may carry a secret (WeChat's access token). The
    aiohttp error is not chained, for the same reason."""
    for failure, mapped in _ERRORS:
        if isinstance(exc, failure):
            detail = f": {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else ""
            raise mapped(f"{type(exc).__name__}{detail}", request=request) from None
    raise exc
