"""What every SMS provider shares: E.164 numbers, segment counting and cost, STOP/START/
HELP keywords, opt-out and per-number rate policy. Providers add signatures, payloads and
their send API."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Self, Unpack

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.errors import MessageInvalidError, UnsupportedMessageError
from chatbridge.models import (
    Event,
    Identity,
    Message,
    MessageKind,
    MessageReceived,
    OptedIn,
    OptedOut,
)
from chatbridge.policy import PolicyRules, RateLimit
from chatbridge.sms.keywords import Keyword, keyword_of
from chatbridge.sms.numbers import require_e164
from chatbridge.sms.segments import Encoding, count_segments
from chatbridge.webhook import WebhookRequest, WebhookResponse, WebhookResult


class SmsSettings(BaseModel):
    """Policy and compliance settings common to SMS providers.

    ``max_segments`` refuses texts that would be billed as more parts;
    ``price_per_segment`` (in ``currency``) lets :meth:`SmsChannel.estimate` report a
    cost; ``help_reply`` answers HELP/INFO; ``stop_reply``/``start_reply`` confirm
    opt-out/in when the provider does not already do it.
    """

    model_config = ConfigDict(frozen=True)

    max_segments: int = Field(default=10, ge=1)
    price_per_segment: Decimal | None = None
    currency: str = "USD"
    rate_limit: RateLimit | None = None
    help_reply: str = "Reply STOP to unsubscribe. Msg&data rates may apply."
    stop_reply: str | None = None
    start_reply: str | None = None


class SmsEstimate(BaseModel):
    """How a text will be billed, known before sending."""

    encoding: Encoding
    segments: int
    characters: int
    units: int
    cost: Decimal | None
    currency: str


class SmsChannel(Channel):
    """Base of the SMS providers. Identities are E.164 numbers; no service window;
    opted-out numbers are refused until they text START."""

    name = "sms"

    def __init__(
        self,
        config: BaseModel,
        settings: SmsSettings | None = None,
        **options: Unpack[ChannelOptions],
    ) -> None:
        super().__init__(config, **options)
        self.settings = settings or SmsSettings()
        self.rules = PolicyRules(rate_limit=self.settings.rate_limit)

    @classmethod
    def from_config(cls, data: Mapping[str, Any], **options: Unpack[ChannelOptions]) -> Self:
        """Provider configuration, plus an optional ``settings`` table of SmsSettings."""
        values = dict(data)
        settings = SmsSettings.model_validate(values.pop("settings", {}))
        return cls(cls.config_type.model_validate(values), settings, **options)

    def estimate(self, message: Message) -> SmsEstimate:
        """Segments, encoding and cost of ``message``'s text."""
        count = count_segments(message.text or "")
        price = self.settings.price_per_segment
        return SmsEstimate(
            encoding=count.encoding,
            segments=count.segments,
            characters=count.characters,
            units=count.units,
            cost=price * count.segments if price is not None else None,
            currency=self.settings.currency,
        )

    def validate(self, message: Message) -> None:
        super().validate(message)
        require_e164(message.contact.address)
        if message.kind not in (MessageKind.TEXT, MessageKind.MEDIA):
            raise UnsupportedMessageError(f"SMS cannot send a {message.kind} message")
        if not (message.text or message.media):
            raise MessageInvalidError("an SMS needs a text or media")
        estimate = self.estimate(message)
        if estimate.segments > self.settings.max_segments:
            raise MessageInvalidError(
                f"text needs {estimate.segments} {estimate.encoding} segments; "
                f"the configured maximum is {self.settings.max_segments}"
            )

    async def answer(self, result: WebhookResult) -> WebhookResponse:
        """Answer a keyword of a new message (a redelivered HELP is not answered twice)."""
        replies = [reply for event in result.events if (reply := self._keyword_reply(event))]
        return await self._auto_reply(*replies[0]) if replies else result.response

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        events = await self._parse(request)
        events += [extra for event in events for extra in _keyword_events(event)]
        return WebhookResult(events=events, response=self._acknowledgement())

    def _keyword_reply(self, event: Event) -> tuple[Identity, str] | None:
        if not isinstance(event, MessageReceived) or event.contact is None:
            return None
        replies = {
            Keyword.HELP: self.settings.help_reply,
            Keyword.OPT_OUT: self.settings.stop_reply,
            Keyword.OPT_IN: self.settings.start_reply,
        }
        keyword = keyword_of(event.message.text)
        text = replies.get(keyword) if keyword else None
        return (event.contact, text) if text else None

    @abstractmethod
    async def _parse(self, request: WebhookRequest) -> list[Event]:
        """Verify the provider's signature and parse the request into events."""

    @abstractmethod
    async def _auto_reply(self, contact: Identity, text: str) -> WebhookResponse:
        """Answer a keyword (HELP...) the provider's way; returns the webhook response."""

    def _acknowledgement(self) -> WebhookResponse:
        """The response to a webhook that needs no reply."""
        return WebhookResponse()


def _keyword_events(event: Event) -> list[Event]:
    """OptedOut / OptedIn for a STOP / START message (HELP changes nothing)."""
    if not isinstance(event, MessageReceived):
        return []
    keyword = keyword_of(event.message.text)
    common = {
        "channel": event.channel,
        "contact": event.contact,
        "timestamp": event.timestamp,
        "raw": event.raw,
    }
    if keyword is Keyword.OPT_OUT:
        reason = f"texted {(event.message.text or '').strip()}"
        return [OptedOut(event_id=f"{event.event_id}:opt-out", reason=reason, **common)]
    if keyword is Keyword.OPT_IN:
        return [OptedIn(event_id=f"{event.event_id}:opt-in", **common)]
    return []
