"""The channel under test: built from its kit on a fake clock, wired to the kit's fake
API (through respx) or to a running sandbox, with what reached the provider counted.

In process, the harness can also make the provider misbehave: answer every request
with an error that echoes the request, fail to connect, or corrupt media bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import httpx
import pytest
import respx

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.clock import FakeClock
from chatbridge.errors import ChatbridgeError
from chatbridge.models import Interactive, Media, MediaKind, Message, Template
from chatbridge.plugin.fake import FakeAPI
from chatbridge.plugin.kit import ChannelKit
from chatbridge.store.memory import MemoryStore
from chatbridge.testing.sandbox import sandbox_channel
from chatbridge.webhook import WebhookRequest


class Trouble(Enum):
    """How the in-process provider misbehaves (:meth:`Harness.trouble`)."""

    CLIENT_ERROR = "answers 400, echoing the request"
    SERVER_ERROR = "answers 503, echoing the request"
    UNREACHABLE = "cannot be reached"
    CORRUPT_MEDIA = "corrupts media bytes"


_ERROR_STATUS = {Trouble.CLIENT_ERROR: 400, Trouble.SERVER_ERROR: 503}


def _echo(request: httpx.Request) -> str:
    """Everything the request carried, as a careless provider echoes it in an error."""
    headers = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
    return f"{request.method} {request.url} {headers} {request.content!r}"


def _corrupted(response: httpx.Response) -> httpx.Response:
    """``response`` with one bit of its body flipped when it carries media bytes."""
    kind = response.headers.get("content-type", "")
    if not response.content or "json" in kind or kind.startswith("text/"):
        return response
    data = bytearray(response.content)
    data[-1] ^= 1
    return httpx.Response(response.status_code, headers=response.headers, content=bytes(data))


class _Counting(httpx.AsyncBaseTransport):
    """A real HTTP transport that counts what it sends (sandbox runs)."""

    def __init__(self) -> None:
        self.count = 0
        self._transport = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


@dataclass
class Harness:
    """A channel under test and its clock. ``calls`` counts what reached the provider:
    HTTP requests (to the fake or a sandbox) and deliveries to non-HTTP fakes."""

    kit: ChannelKit
    channel: Channel
    clock: FakeClock
    api: FakeAPI | None = None  # in process
    sandbox: str | None = None  # the URL of a running sandbox
    _trouble: Trouble | None = field(default=None, init=False)
    _transport: _Counting | None = None
    _router: respx.MockRouter | None = None

    @property
    def calls(self) -> int:
        if self._transport is not None:
            return self._transport.count
        assert self._router is not None and self.api is not None
        return max(len(self._router.calls), self.api.received)

    def serve(self, request: httpx.Request) -> httpx.Response:
        """The in-process provider's answer to ``request``, with the current trouble."""
        assert self.api is not None
        if self._trouble is Trouble.UNREACHABLE:
            raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)
        if self._trouble in _ERROR_STATUS:
            return httpx.Response(_ERROR_STATUS[self._trouble], text=_echo(request))
        response = self.api(request)
        if self._trouble is Trouble.CORRUPT_MEDIA:
            return _corrupted(response)
        return response

    @contextlib.contextmanager
    def trouble(self, mode: Trouble) -> Iterator[None]:
        """Make the in-process provider misbehave the ``mode`` way meanwhile."""
        self.in_process_only()
        self._trouble = mode
        try:
            yield
        finally:
            self._trouble = None

    def assert_no_secret(self, error: BaseException, when: str, also: Sequence[str] = ()) -> None:
        """``error``, and every error a traceback shows with it, shows no secret of the
        kit's config nor any of ``also`` (in its message, repr or arguments, or a
        chatbridge error's fields)."""
        shown: list[str] = []
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            shown += [str(current), repr(current), repr(current.args)]
            if isinstance(current, ChatbridgeError):  # its fields, too
                shown.append(repr(vars(current)))
            suppressed = current.__suppress_context__
            current = current.__cause__ or (None if suppressed else current.__context__)
        for index, secret in enumerate([*self.kit.secrets, *also]):
            leaked = any(secret in text for text in shown)
            assert not leaked, f"{when}: {type(error).__name__} shows secret #{index} of the kit"

    def in_process_only(self) -> None:
        if self.api is None:
            pytest.skip("needs the in-process fake (not a sandbox)")

    # -- inbound ----------------------------------------------------------------------

    def signed(self, body: bytes) -> WebhookRequest:
        return self.kit.sign(self.kit.webhook(body), None)

    async def deliver(self, bodies: Sequence[bytes]) -> None:
        """Deliver each of ``bodies``, signed, to the channel, as the provider sends
        them (the provider's fake learns what it sent: LINE's reply tokens)."""
        for body in bodies:
            if self.api is not None:
                self.api.webhook_sent(body)
            await self._tell_sandbox("webhook-sent", content=body)
            await self.channel.receive(self.signed(body))

    async def open_conversation(self, address: str | None = None) -> None:
        """The customer writes now (opening or reopening their window)."""
        address = address or self.kit.customer
        await self.deliver(self.kit.open_conversation(address, self.clock.now()))
        if self.api is not None:
            self.api.customer_wrote(address)
        await self._tell_sandbox("customer-wrote", json={"address": address})

    async def _tell_sandbox(self, what: str, **request: Any) -> None:
        """POST ``request`` to the running sandbox's ``_sandbox/<what>``, if any."""
        if self.sandbox:
            async with httpx.AsyncClient() as control:
                await control.post(f"{self.sandbox}/{self.kit.name}/_sandbox/{what}", **request)

    # -- outbound ---------------------------------------------------------------------

    def messages(self, address: str | None = None) -> dict[str, Message]:
        """One message of each kind the suite sends, to ``address`` (the customer):
        text, media (bytes to upload where the kit has them), interactive, a template,
        and the kit's message for outside the window (its template, or a tagged
        message), if any."""
        contact = self.channel.identity(address or self.kit.customer)
        media = self.kit.media or Media(
            kind=MediaKind.IMAGE, mime_type="image/jpeg", url="https://cdn.example.com/a.jpg"
        )
        buttons = Interactive.model_validate(
            {"body": "Which size?", "buttons": [{"id": "m", "title": "M"}]}
        )
        kinds = {
            "text": Message(contact=contact, text="conformance"),
            "media": Message(contact=contact, media=[media]),
            "interactive": Message(contact=contact, interactive=buttons),
        }
        outside = self.kit.outside_window(contact) if self.kit.outside_window else None
        if outside is None or outside.template is None:  # templates are not the way out
            template = Template(name="conformance", language="en_US")
            kinds["template"] = Message(contact=contact, template=template)
        if outside is not None:
            kinds["outside_window"] = outside
        return kinds

    def sendable(self, address: str | None = None) -> dict[str, Message]:
        """:meth:`messages` that the channel can carry (its ``validate`` accepts)."""
        kinds = {}
        for kind, message in self.messages(address).items():
            try:
                self.channel.validate(message)
            except Exception:  # noqa: S112 (the channel cannot carry this kind)
                continue
            kinds[kind] = message
        return kinds


async def harness_for(kit: ChannelKit, sandbox: str | None) -> AsyncIterator[Harness]:
    """A harness for ``kit``: against the running ``sandbox`` when given and the kit is
    served over HTTP, else in process."""
    if sandbox and kit.api_bases:
        config = sandbox_channel(sandbox.rstrip("/"), kit)
        clock, transport = FakeClock(), _Counting()
        async with httpx.AsyncClient(transport=transport) as client:
            channel = kit.channel.from_config(
                config, store=MemoryStore(), clock=clock, http_client=client
            )
            yield Harness(kit, channel, clock, sandbox=sandbox.rstrip("/"), _transport=transport)
            await channel.aclose()
        return
    api = kit.fake_api()
    clock = FakeClock()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        async with httpx.AsyncClient() as client:
            options: ChannelOptions = {
                "store": MemoryStore(),
                "clock": clock,
                "http_client": client,
            }
            channel = kit.build(options, api)
            harnessed = Harness(kit, channel, clock, api=api, _router=router)
            for host in api.hosts:
                router.route(host=host).mock(side_effect=harnessed.serve)
            yield harnessed
            await channel.aclose()
