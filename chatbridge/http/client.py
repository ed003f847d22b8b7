"""The ``httpx.AsyncClient`` that :func:`chatbridge.http.make_client` hands out: httpx's
client, with a shorter path for what chatbridge's channels send.

``send`` calls a :class:`DirectTransport` (the aiohttp engine's) straight away when none
of ``AsyncClient.send``'s steps would do anything: no redirect to follow, no auth (client,
per request, or credentials in the URL), no event hooks, no mounts. What those steps
still do for such a request is done here too: the client's timeout, the cookie jar fed
from ``Set-Cookie`` answers, httpx's request log line, ``next_request`` of a redirect
answer, ``elapsed`` and the body read. Anything else goes through httpx unchanged.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import httpx
from httpx._client import ClientState, UseClientDefault

#: httpx's own logger: its "HTTP Request: ..." line is written for direct sends too.
_LOG = logging.getLogger("httpx")


class DirectTransport(httpx.AsyncBaseTransport):
    """A transport whose ``handle_async_request`` :class:`Client` may call without
    ``AsyncClient.send``'s steps around it: it answers with the request set and the body
    in an ``httpx.ByteStream``, and raises httpx's transport errors with the request."""


class Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` with a direct send through a :class:`DirectTransport`."""

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        transport = self._transport
        if (
            stream
            or not isinstance(transport, DirectTransport)
            or auth is not httpx.USE_CLIENT_DEFAULT
            or self._auth is not None
            or (
                self.follow_redirects
                if follow_redirects is httpx.USE_CLIENT_DEFAULT
                else follow_redirects
            )
            or self._mounts
            or self._event_hooks["request"]
            or self._event_hooks["response"]
            or self._state is ClientState.CLOSED
            or not isinstance(request.stream, httpx.AsyncByteStream)
            or request.url.userinfo
        ):
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        self._state = ClientState.OPENED
        if "timeout" not in request.extensions:
            self._set_timeout(request)
        start = time.perf_counter()
        response = await transport.handle_async_request(request)
        response.request = request
        response.default_encoding = self._default_encoding
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            self.cookies.extract_cookies(response)
        _LOG.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )
        try:
            if response.has_redirect_location:
                response.next_request = self._build_redirect_request(request, response)
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        finally:
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
        return response
