"""The ChannelKit contract: what a channel ships so the conformance suite (the
``chatbridge_conformance`` package), the sandbox and the offline demo can drive it
without a provider.

It lives with the plugin helpers so a channel's kit imports nothing but chatbridge."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Generic

from pydantic import BaseModel, SecretStr
from typing_extensions import TypeVar

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.clock import FAKE_EPOCH
from chatbridge.models import DeliveryState, Event, Identity, Media, Message
from chatbridge.plugin.fake import FakeAPI
from chatbridge.policy import RateLimit
from chatbridge.redaction import secret_values
from chatbridge.webhook import WebhookRequest

C = TypeVar("C", bound=Channel, default=Channel, covariant=True)

_signing_at: ContextVar[datetime | None] = ContextVar("signing_at", default=None)


def signing_time() -> datetime:
    """When a kit's ``sign`` dates a time-bound signature: :data:`FAKE_EPOCH`, where the
    suite's clocks start, or the real time within :func:`signing_now`."""
    return _signing_at.get() or FAKE_EPOCH


@contextmanager
def signing_now() -> Iterator[None]:
    """Kits sign at the real time meanwhile (for webhooks sent to a real server)."""
    token = _signing_at.set(datetime.now(UTC))
    try:
        yield
    finally:
        _signing_at.reset(token)


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
class Quota:
    """A monthly send quota: ``limit`` billable sends (the limit the kit's config sets),
    counted per calendar month in the provider's ``timezone``."""

    limit: int
    timezone: str


@dataclass(frozen=True)
class Facts:
    """What the provider documents, declared by the kit with ``sources``. The
    conformance suite checks the channel's behaviour against these facts (just inside,
    exactly at and just after each limit), never against what the channel declares.

    - ``window``: how long after the customer's last message free-form sends are
      allowed; None: the provider has no window. With a window, or with
      ``requires_follower``, a contact who never wrote may not be messaged.
    - ``requires_follower``: only contacts who follow the account may be messaged.
    - ``tags``: the provider's message tags, each with how long after the customer's
      last message it allows sends (None: at any time).
    - ``quota``: the monthly quota billable sends count against, or None.
    - ``reply_ttl``: how long a reply token (one free, unbilled reply to the customer's
      event) stays usable; None: the provider has no reply tokens.
    - ``signature_tolerance``: how far a signed timestamp may be from now before the
      webhook is refused as a replay (as the kit's config sets it); None: the
      signatures carry no timestamp.
    - ``statuses``: every delivery state the provider reports, by its own name, and the
      common state it means (None: not a delivery state, reported as another event).
      The kit's ``status_body`` builds the webhook that reports each.
    - ``media_hash``: downloads come with a hash the channel must check.
    - ``rate_limit``: how many sends one contact may get per period, as the kit's config
      (or ``wiring``) sets it; None: no limit.
    - ``answer_type``: the media type every webhook's answer must have (Twilio reads
      TwiML); None: the provider takes any.
    - ``sources``: for each fact, where the provider documents it (URLs).
    """

    window: timedelta | None = None
    requires_follower: bool = False
    tags: Mapping[str, timedelta | None] = field(default_factory=dict)
    quota: Quota | None = None
    reply_ttl: timedelta | None = None
    signature_tolerance: timedelta | None = None
    statuses: Mapping[str, DeliveryState | None] = field(default_factory=dict)
    media_hash: bool = False
    rate_limit: RateLimit | None = None
    answer_type: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def customer_first(self) -> bool:
        """Whether a contact must write (or follow) before being messaged."""
        return self.window is not None or self.requires_follower


@dataclass(frozen=True)
class ChannelKit(Generic[C]):
    """Everything the conformance suite and the sandbox need to exercise one channel
    offline.

    - ``channel`` and ``config``: the channel class and its test configuration.
    - ``facts``: the provider's documented rules (:class:`Facts`).
    - ``fake_api()``: a fresh loopback imitation of the provider's API (``hosts`` say
      where HTTP fakes are mounted).
    - ``webhook(body)``: an unsigned inbound request carrying ``body``.
    - ``sign(request, secret)``: ``request`` signed the provider's way with the kit's
      secret, or with ``secret`` when given (to forge). Channels under test run on a
      :class:`~chatbridge.clock.FakeClock`; time-bound signatures are dated
      :func:`signing_time` (the suite moves the clock around it).
    - ``samples``: every inbound event type the channel maps, with expectations.
    - ``unknown_body``: a well-formed body whose event type the channel does not know.
    - ``open_conversation(address, now)``: bodies after which the contact may be sent
      free-form messages (a message at ``now``, a follow...).
    - ``customer``: an address on the channel; ``outside_window(identity)``: a message
      the channel allows outside its window (a template), or None if it has no window.
    - ``media``: a media item with bytes and mime type, for the upload/download check;
      None when the provider has no upload API.

    With defaults:

    - ``name``: the channel's registry name (its ``chatbridge.channels`` entry point and
      the sandbox's path); default ``channel.name``. One channel class may have several
      kits, one per provider, such as ``sms-twilio`` and ``sms-vonage``.
    - ``api_bases``: the config fields holding the provider API's base URLs; the sandbox
      points them at itself. Empty: the provider is not served over HTTP.
    - ``wiring(fake)``: constructor arguments beyond the config and the options that tie
      the channel to ``fake`` when the provider is not reached over HTTP (SMTP).
    - ``extra_secrets``: secrets that must not leak beyond the config's ``SecretStr``
      fields (which are always checked).
    - ``signs_body``: whether the provider's signature covers the body (it does not for
      every scheme; the altered-body check is skipped then); ``signs_url``: whether it
      covers the URL (the altered-URL check runs then).
    - ``unsigned_parts``: headers, query parameters or fields ``sign`` adds that no
      signature covers (the suite tampers with every other part ``sign`` adds).
    - ``status_body(state)``: a webhook body reporting the provider's delivery ``state``
      (a key of ``facts.statuses``).
    - ``failed_later(message_id, address)``: the status webhook with which the provider
      reports that a send it accepted (``message_id``, to ``address``) failed later
      (WhatsApp's ``failed``, Twilio's ``undelivered``), with its error; None: the
      provider reports no such failure. The sandbox posts it for sends to addresses
      marked undeliverable (the fake's ``fail_sends_to``).
    - ``handshake(secret)``: the provider's URL verification request, made with the
      kit's verify token or secret (or ``secret``, to forge), and the answer the
      channel must give; None: the provider has no handshake.
    - ``opt_out``: each way a contact stops messages (unfollow, block, each STOP
      keyword, unsubscribe...), by name: ``way(address, now)`` gives the bodies after
      which the contact may not be messaged; ``opt_in``: each way back, likewise.
    - ``answered``: each message the channel must answer by itself (HELP, INFO...), by
      name: ``way(address, now)`` gives the bodies; the channel's ``answer`` must
      differ from its answer to an ordinary message (a reply in the webhook response,
      or a send to the provider).
    - ``broken``: requests signed with the kit's secrets whose content is broken in ways
      only a holder of the secrets could break it (a sealed payload's padding, lengths
      or encoding), by what is wrong: each must be refused with a ``WebhookError`` (a
      4xx), never accepted and never a crash (a 5xx).
    - ``misconfigured``: config values the provider never issues (a key of the wrong
      length, a bound out of range), by what is wrong: each the config fields to
      replace; the channel must refuse each when it is built (or its config model when
      validated), with an error that shows no secret. ``edge_configs``: config values
      just inside what is valid (a quota of 0), by what they are: each must be accepted.
    - ``variants``: other configurations the provider supports that change how
      webhooks are signed or sent (a GET webhook, a URL rewritten by a proxy, another
      signature method), by name: each the kit fields to replace (:meth:`variant`).
      The suite runs every check on each variant too.
    """

    channel: type[C]
    config: BaseModel
    fake_api: Callable[[], FakeAPI]
    webhook: Callable[[bytes], WebhookRequest]
    sign: Callable[[WebhookRequest, str | None], WebhookRequest]
    samples: Sequence[Sample]
    unknown_body: bytes
    open_conversation: Callable[[str, datetime], Sequence[bytes]]
    customer: str
    outside_window: Callable[[Identity], Message] | None
    media: Media | None
    facts: Facts
    name: str = ""
    api_bases: tuple[str, ...] = ()
    wiring: Callable[[FakeAPI | None], Mapping[str, Any]] | None = None
    extra_secrets: Sequence[str] = field(default_factory=tuple)
    signs_body: bool = True
    signs_url: bool = False
    unsigned_parts: frozenset[str] = frozenset()
    status_body: Callable[[str], bytes] | None = None
    failed_later: Callable[[str, str], bytes] | None = None
    handshake: Callable[[str | None], tuple[WebhookRequest, bytes]] | None = None
    opt_out: Mapping[str, Callable[[str, datetime], Sequence[bytes]]] = field(default_factory=dict)
    opt_in: Mapping[str, Callable[[str, datetime], Sequence[bytes]]] = field(default_factory=dict)
    answered: Mapping[str, Callable[[str, datetime], Sequence[bytes]]] = field(default_factory=dict)
    broken: Mapping[str, WebhookRequest] = field(default_factory=dict)
    misconfigured: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    edge_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.channel.name)

    def build(self, options: ChannelOptions | None = None, fake: FakeAPI | None = None) -> C:
        """The channel with the kit's test configuration and ``options`` (store, clock,
        http client), wired to ``fake`` when the provider is not reached over HTTP."""
        wiring = self.wiring(fake) if self.wiring is not None else {}
        return self.channel(self.config, **(options or {}), **wiring)

    def variant(self, name: str) -> ChannelKit[C]:
        """The kit in its ``name`` variant (same name, fields replaced)."""
        return replace(self, variants={}, **self.variants[name])

    @property
    def secrets(self) -> list[str]:
        """Values that must never appear in reprs or error messages: the config's
        ``SecretStr`` values, nested ones included, and ``extra_secrets``."""
        return [*secret_values(self.config), *self.extra_secrets]

    def plain_config(self) -> dict[str, Any]:
        """The test configuration as a config file's table: JSON values, secrets
        revealed, fields left at their defaults left out."""
        plain = _revealed(self.config, self.config.model_dump(mode="json", exclude_defaults=True))
        assert isinstance(plain, dict)
        return plain


def _revealed(value: object, dumped: object) -> object:
    """``dumped`` (``value`` dumped as JSON) with ``value``'s secrets revealed."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        fields = dict(value)
        return {key: _revealed(fields.get(key), item) for key, item in dumped.items()}
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {key: _revealed(value.get(key), item) for key, item in dumped.items()}
    if isinstance(value, list | tuple) and isinstance(dumped, list):
        return [_revealed(item, out) for item, out in zip(value, dumped, strict=True)]
    return dumped
