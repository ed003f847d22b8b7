"""The ChannelKit contract: what a channel ships so the conformance suite (the
``chatbridge_conformance`` package) and the offline demo can drive it without a provider.

It lives in the core so a channel's kit imports nothing but chatbridge."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.models import Event, Identity, Media, Message
from chatbridge.testing.fake import FakeAPI
from chatbridge.webhook import WebhookRequest


@dataclass(frozen=True)
class Sample:
    """One provider webhook body and the events it must produce.

    ``expected`` lists the event types in order; ``check`` asserts common-model fields.
    """

    name: str
    body: bytes
    expected: tuple[type[Event], ...]
    check: Callable[[list[Event]], None] | None = None


@dataclass(frozen=True)
class ChannelKit:
    """Everything the conformance suite needs to exercise one channel offline.

    - ``name``: the kit's name (one channel class may have several kits, one per
      provider, such as SMS through Twilio or Vonage).
    - ``fake_api()``: a fresh loopback imitation of the provider's API (``hosts`` say
      where HTTP fakes are mounted).
    - ``build(options, fake)``: the channel with the kit's test credentials and
      ``options`` (store, clock, http client), wired to ``fake`` when the provider is
      not reached over HTTP (an SMTP transport, say).
    - ``webhook(body)``: an unsigned inbound request carrying ``body``.
    - ``sign(request, secret)``: ``request`` signed the provider's way with the kit's
      secret, or with ``secret`` when given (to forge). Channels under test run on a
      :class:`~chatbridge.clock.FakeClock`; time-bound signatures use
      :data:`~chatbridge.clock.FAKE_EPOCH`.
    - ``signs_body``: whether the provider's signature covers the body (it does not for
      every scheme; the altered-body check is skipped then).
    - ``samples``: every inbound event type the channel maps, with expectations.
    - ``unknown_body``: a well-formed body whose event type the channel does not know.
    - ``open_conversation(address, now)``: bodies after which the contact may be sent
      free-form messages (a message at ``now``, a follow...).
    - ``customer``: an address on the channel; ``outside_window(identity)``: a message
      the channel allows outside its window (a template), or None if it has no window.
    - ``media``: a media item with bytes and mime type, for the upload/download check;
      None when the provider has no upload API.
    - ``secrets``: values that must never appear in reprs or error messages.
    """

    name: str
    build: Callable[[ChannelOptions, FakeAPI], Channel]
    fake_api: Callable[[], FakeAPI]
    webhook: Callable[[bytes], WebhookRequest]
    sign: Callable[[WebhookRequest, str | None], WebhookRequest]
    samples: Sequence[Sample]
    unknown_body: bytes
    open_conversation: Callable[[str, datetime], Sequence[bytes]]
    customer: str
    outside_window: Callable[[Identity], Message] | None
    media: Media | None
    secrets: Sequence[str] = field(default_factory=tuple)
    signs_body: bool = True
