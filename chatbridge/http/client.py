"""The ``httpx.AsyncClient`` that :func:`chatbridge.http.make_client` hands out: httpx's
client, with shorter paths for what chatbridge's channels build and send.

``build_request`` for a URL string with a JSON or bytes body (or none) and a dict of
headers reuses what httpx made of the same method, URL, header names and kind of body
before (a template: the parsed URL and the merged headers in httpx's order: ``Host``,
the client's defaults, the given ones, the content headers). Per request only the given
header values, the body and its ``Content-Length`` are filled in; the JSON body is
serialized as httpx does (``json.dumps``, same arguments). A client whose base URL,
default headers, parameters or cookies changed, or a request with anything else
(params, cookies, files, form data, a timeout, extensions), goes through httpx.

``send`` calls a :class:`DirectTransport` (the aiohttp engine's) straight away when none
of ``AsyncClient.send``'s steps would do anything: no redirect to follow, no auth (client,
per request, or credentials in the URL), no event hooks, no mounts. What those steps
still do for such a request is done here too: the client's timeout, the cookie jar fed
from ``Set-Cookie`` answers, httpx's request log line, ``next_request`` of a redirect
answer, ``elapsed`` and the body read (an unencoded body, whole already, is taken as it
is rather than through httpx's decoders). Anything else goes through httpx unchanged.
"""

from __future__ import annotations

import datetime
import json as jsonlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from httpx._client import ClientState, UseClientDefault

#: httpx's own logger: its "HTTP Request: ..." line is written for direct sends too.
_LOG = logging.getLogger("httpx")


class DirectTransport(httpx.AsyncBaseTransport):
    """A transport whose :meth:`send_whole` :class:`Client` may call without
    ``AsyncClient.send``'s steps around it."""

    async def send_whole(self, request: httpx.Request) -> httpx.Response:
        """``request``'s answer, with the request set and the whole body in an
        ``httpx.ByteStream``; httpx's transport errors, with the request, on failure."""
        raise NotImplementedError


#: Templates kept per client (the URLs of media downloads differ per call).
_TEMPLATES = 128


@dataclass(frozen=True, slots=True)
class _Template:
    """What httpx makes of a request, apart from the given header values and the body."""

    url: httpx.URL
    headers: list[tuple[bytes, bytes, bytes]]  # httpx's (name, lowercase name, value)
    given: tuple[tuple[int, int], ...]  # (position in headers, index of the given value)
    length: int  # the position of the Content-Length header, or -1


class Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` with cached request building and a direct send through a
    :class:`DirectTransport`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._templates: dict[tuple[str, str, tuple[str, ...], str], _Template] = {}
        self._made_with: tuple[httpx.URL | None, list[tuple[bytes, bytes]]] = (None, [])

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: Any = None,
        json: Any = None,
        headers: Any = None,
        **kwargs: Any,
    ) -> httpx.Request:
        if not (
            isinstance(url, str)
            and not kwargs
            and (headers is None or type(headers) is dict)
            and (content is None or (type(content) is bytes and json is None))
            and not self.params
            and not self.cookies
        ):
            return super().build_request(
                method, url, content=content, json=json, headers=headers, **kwargs
            )
        given = () if headers is None else tuple(headers)
        if json is not None:
            body, kind = _json_body(json), "json"
        else:
            body, kind = content or b"", "bytes" if content else "empty"
        template = self._template(method, url, given, kind)
        entries = template.headers.copy()
        if headers:
            values = list(headers.values())
            for position, index in template.given:
                name, lower, _ = entries[position]
                entries[position] = (name, lower, _header_value(values[index]))
        if template.length >= 0:
            name, lower, _ = entries[template.length]
            entries[template.length] = (name, lower, b"%d" % len(body))
        request = httpx.Request(
            method,
            template.url,
            headers=headers_of(entries),
            stream=httpx.ByteStream(body),
            extensions={"timeout": self.timeout.as_dict()},
        )
        request.read()
        return request

    def _template(self, method: str, url: str, given: tuple[str, ...], kind: str) -> _Template:
        defaults = self.headers.raw  # the client's default headers (mutable)
        base, known = self._made_with
        if base is not self._base_url or known != defaults:
            self._templates.clear()
            self._made_with = (self._base_url, defaults)
        key = (method, url, given, kind)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= _TEMPLATES:
                self._templates.clear()
            template = self._templates[key] = self._probe(method, url, given, kind)
        return template

    def _probe(self, method: str, url: str, given: tuple[str, ...], kind: str) -> _Template:
        """Build the request the httpx way with placeholders, and note where they went."""
        marker = f"chatbridge-slot-{secrets.token_hex(8)}-"  # no default header holds it
        slots = {f"{marker}{index}".encode(): index for index in range(len(given))}
        headers = {name: f"{marker}{index}" for index, name in enumerate(given)}
        if kind == "json":
            probe = super().build_request(method, url, headers=headers, json={})
        else:
            content = b"-" if kind == "bytes" else None
            probe = super().build_request(method, url, headers=headers, content=content)
        entries = [(name, name.lower(), value) for name, value in probe.headers.raw]
        positions = []
        length = -1
        for position, (_, lower, value) in enumerate(entries):
            if value in slots:
                positions.append((position, slots[value]))
            elif lower == b"content-length" and kind != "empty":
                length = position
        return _Template(probe.url, entries, tuple(positions), length)

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
        response = await transport.send_whole(request)
        response.request = request
        response.default_encoding = self._default_encoding
        names = response.headers.keys()  # lowercase
        if "set-cookie" in names or "set-cookie2" in names:
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
            if "content-encoding" in names or not isinstance(response.stream, httpx.ByteStream):
                await response.aread()
            else:
                _read_whole(response)
        except BaseException:
            await response.aclose()
            raise
        finally:
            response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
        return response


def _read_whole(response: httpx.Response) -> None:
    """Read a response whose body is whole in a ``ByteStream`` and not encoded, as
    ``Response.aread`` would (without its decoder and chunker steps, which do nothing to
    such a body): content, bytes downloaded, stream consumed and closed."""
    content = b"".join(response.stream)  # type: ignore[arg-type]  # a ByteStream
    response._content = content
    response._num_bytes_downloaded = len(content)
    response.is_stream_consumed = True
    response.is_closed = True


def headers_of(entries: list[tuple[bytes, bytes, bytes]]) -> httpx.Headers:
    """``httpx.Headers`` holding ``entries`` (name, lowercase name, value; bytes) as they
    are: what ``httpx.Headers`` makes of the (name, value) pairs, without normalizing
    again what is normal already."""
    headers = httpx.Headers()
    headers._list = entries
    return headers


def _header_value(value: Any) -> bytes:
    """A given header value, normalized (and refused) as ``httpx.Headers`` does."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"Header value must be str or bytes, not {type(value)}")
    return value.encode("ascii")


#: json.dumps with httpx's arguments, its encoder made once.
_JSON = jsonlib.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_body(value: Any) -> bytes:
    """``value`` as httpx serializes a ``json=`` body."""
    return _JSON.encode(value).encode("utf-8")
