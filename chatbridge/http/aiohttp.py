"""An httpx transport over aiohttp (``chatbridge[aiohttp]``, asyncio only).

aiohttp parses HTTP in C, so a send costs about half the CPU of httpx's default
transport (see docs/benchmarks.md). It comes from ``httpx-aiohttp``, with one change:
its error mapping reports a dropped connection as ``httpx.ConnectTimeout``, which would
make chatbridge retry a request the provider may already have acted on (a duplicate
message). Here only a connection that was never made is a connect error; every other
failure is a read or protocol error, which is never retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport as _AiohttpTransport

#: aiohttp failures that happen before any byte of the request is sent.
_NOT_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


@contextmanager
def _classified(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        if isinstance(exc.__cause__, _NOT_CONNECTED):
            raise
        raise httpx.ReadError(str(exc), request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc


class _ClassifiedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _classified(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _classified(self._request):
            await self._stream.aclose()


class AiohttpTransport(_AiohttpTransport):
    """``httpx_aiohttp.AiohttpTransport`` with retry-safe error classification."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _classified(request):
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ClassifiedStream(response.stream, request)
        return response
