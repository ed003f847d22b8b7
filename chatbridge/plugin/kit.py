"""The ChannelKit contract: what a channel ships so the conformance suite (the
``chatbridge_conformance`` package), the sandbox and the offline demo can drive it
without a provider.

It lives with the plugin helpers so a channel's kit imports nothing but chatbridge."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic

from pydantic import BaseModel, SecretStr
from typing_extensions import TypeVar

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.models import Event, Identity, Media, Message
from chatbridge.plugin.fake import FakeAPI
from chatbridge.webhook import WebhookRequest

C = TypeVar("C", bound=Channel, default=Channel, covariant=True)


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
class ChannelKit(Generic[C]):
    """Everything the conformance suite and the sandbox need to exercise one channel
    offline.

    - ``channel`` and ``config``: the channel class and its test configuration.
    - ``fake_api()``: a fresh loopback imitation of the provider's API (``hosts`` say
      where HTTP fakes are mounted).
    - ``webhook(body)``: an unsigned inbound request carrying ``body``.
    - ``sign(request, secret)``: ``request`` signed the provider's way with the kit's
      secret, or with ``secret`` when given (to forge). Channels under test run on a
      :class:`~chatbridge.clock.FakeClock`; time-bound signatures use
      :data:`~chatbridge.clock.FAKE_EPOCH`.
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
      every scheme; the altered-body check is skipped then).
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
    name: str = ""
    api_bases: tuple[str, ...] = ()
    wiring: Callable[[FakeAPI | None], Mapping[str, Any]] | None = None
    extra_secrets: Sequence[str] = field(default_factory=tuple)
    signs_body: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.channel.name)

    def build(self, options: ChannelOptions | None = None, fake: FakeAPI | None = None) -> C:
        """The channel with the kit's test configuration and ``options`` (store, clock,
        http client), wired to ``fake`` when the provider is not reached over HTTP."""
        wiring = self.wiring(fake) if self.wiring is not None else {}
        return self.channel(self.config, **(options or {}), **wiring)

    @property
    def secrets(self) -> list[str]:
        """Values that must never appear in reprs or error messages: the config's
        ``SecretStr`` values, nested ones included, and ``extra_secrets``."""
        return [*_secrets(self.config), *self.extra_secrets]

    def plain_config(self) -> dict[str, Any]:
        """The test configuration as a config file's table: JSON values, secrets
        revealed, fields left at their defaults left out."""
        plain = _revealed(self.config, self.config.model_dump(mode="json", exclude_defaults=True))
        assert isinstance(plain, dict)
        return plain


def _secrets(value: object) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return [secret for item in value for secret in _secrets(item)]
    return []


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
