"""Building blocks for loopback imitations of provider APIs.

A fake is a callable ``httpx.Request -> httpx.Response`` that follows the provider's
documented request and response shapes, and refuses what the provider refuses with the
provider's status, error code and error body (a handler raises :class:`Refused`).
Tests mount it on a respx router (for each of ``fake.hosts``:
``router.route(host=host).mock(side_effect=fake)``) or on ``httpx.MockTransport(fake)``;
nothing here talks to a network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from chatbridge.errors import PayloadError
from chatbridge.plugin.formdata import Part, parse_form

Handler = Callable[[httpx.Request, re.Match[str]], httpx.Response]
#: What a handler raises on a request it cannot read (bytes that are no text, JSON nested
#: too deep, a value of the wrong type, a broken multipart body): answered by
#: :meth:`FakeAPI.unreadable`, never a server error.
_UNREADABLE = (ValueError, TypeError, KeyError, RecursionError, PayloadError)


def parse_multipart(request: httpx.Request) -> dict[str, Part]:
    """The fields of a multipart/form-data request, by name."""
    return parse_form(request.headers.get("content-type", ""), request.content)


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


class Refused(Exception):
    """Raised by a fake's handler (or its checks) to answer ``response``: the
    provider's error for the request."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class FakeAPI:
    """A provider API imitation. Subclasses register routes in ``__init__`` with
    :meth:`route`; every request is kept in :attr:`requests`."""

    #: The provider's API hosts, for mounting on a respx router.
    hosts: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        #: A path prefix the fake is served under (the sandbox serves several fakes).
        self.prefix = ""
        #: When set, free-form sends are refused the provider's way unless the customer
        #: wrote within this long (the sandbox tells the fake through
        #: :meth:`customer_wrote`); None leaves windows to chatbridge's own policy.
        self.window: timedelta | None = None
        self._last_customer_message: dict[str, datetime] = {}
        self._undeliverable: set[str] = set()
        #: (message id, address) of accepted sends to undeliverable addresses, which the
        #: provider reports failed later (the sandbox posts the kit's ``failed_later``).
        self.failed: list[tuple[str, str]] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._queued: list[tuple[re.Pattern[str], httpx.Response]] = []

    def address(self, given: str) -> str:
        """The provider's one form of a contact address given in any form it accepts
        (WhatsApp: the digits). Every method taking an address uses it."""
        return given

    def customer_wrote(self, address: str, at: datetime | None = None) -> None:
        """Record that ``address`` wrote to the business (opens the provider's window)."""
        self._last_customer_message[self.address(address)] = at or datetime.now(UTC)

    def fail_sends_to(self, address: str) -> None:
        """Accept sends to ``address`` from now on, and fail them later (a phone that is
        off, a number not on WhatsApp)."""
        self._undeliverable.add(self.address(address))

    def accepted(self, message_id: str, address: str) -> None:
        """A handler accepted a send the provider reports on later (one it can fail)."""
        if (address := self.address(address)) in self._undeliverable:
            self.failed.append((message_id, address))

    def webhook_sent(self, body: bytes) -> None:
        """The provider sent a webhook with ``body`` (what the fake issued with it, such
        as LINE's reply tokens, it accepts from then on). By default: nothing to note."""

    def wrote(self, address: str) -> bool:
        """Whether ``address`` ever wrote to the business."""
        return self.address(address) in self._last_customer_message

    def window_closed(self, address: str) -> bool:
        """Whether the provider would refuse a free-form send to ``address`` now."""
        if self.window is None:
            return False
        wrote = self._last_customer_message.get(self.address(address))
        return wrote is None or datetime.now(UTC) - wrote > self.window

    @property
    def received(self) -> int:
        """How many requests (or, for non-HTTP fakes, deliveries) reached the fake."""
        return len(self.requests)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path fully matches regex ``path``."""
        self._routes.append((method, re.compile(path), handler))

    def fail_next(self, response: httpx.Response, path: str = ".*") -> None:
        """Answer the next request whose path matches regex ``path`` with ``response``
        instead (error injection). Queued answers are used in order."""
        self._queued.append((re.compile(path), response))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            self.authorize(request)
            return self.serve(request)
        except Refused as refused:
            return refused.response
        except _UNREADABLE:
            return self.unreadable(request)

    def authorize(self, request: httpx.Request) -> None:
        """Raise :class:`Refused` unless ``request`` carries the credentials the provider
        wants (by default, none)."""

    def serve(self, request: httpx.Request) -> httpx.Response:
        """The answer to ``request``: a queued one, its route's, or :meth:`unknown`'s."""
        for index, (pattern, response) in enumerate(self._queued):
            if pattern.fullmatch(request.url.path.removeprefix(self.prefix)):
                del self._queued[index]
                return response
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.url.path.removeprefix(self.prefix))
            if method == request.method and match:
                return handler(request, match)
        return self.unknown(request)

    def unknown(self, request: httpx.Request) -> httpx.Response:
        """The provider's answer to a path or method it does not serve."""
        return json_response(404, {"message": f"no route for {request.method} {request.url.path}"})

    def unreadable(self, request: httpx.Request) -> httpx.Response:
        """The provider's answer to a request it cannot read (a body that is not the
        JSON object or form it expects)."""
        return json_response(400, {"message": "the request cannot be read"})

    def json_body(self, request: httpx.Request) -> dict[str, Any]:
        """The request's JSON object; else :class:`Refused` with :meth:`unreadable`."""
        try:
            body = json.loads(request.content)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            raise Refused(self.unreadable(request))
        return body
