"""The email channel: SMTP out, raw RFC 5322 and provider webhooks in."""

from __future__ import annotations

from datetime import timedelta
from typing import Unpack

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.email import mime, providers, signature
from chatbridge.email.transport import MailTransport, SmtpSettings, SmtpTransport
from chatbridge.errors import (
    ConfigurationError,
    MessageInvalidError,
    PayloadError,
    SignatureError,
    UnsupportedMessageError,
    UnsupportedRequestError,
)
from chatbridge.models import Event, Identity, Message, Receipt
from chatbridge.plugin.formdata import read_form
from chatbridge.plugin.parsing import load_json
from chatbridge.policy import PolicyRules
from chatbridge.webhook import WebhookRequest, WebhookResult


class EmailConfig(BaseModel):
    """The sending address and server, and the keys of the inbound webhooks in use.

    ``max_message_bytes`` caps inbound messages (mail bombs); ``timestamp_tolerance``
    bounds the age of signed webhook requests (replays).
    """

    model_config = ConfigDict(frozen=True)

    from_address: str
    from_name: str | None = None
    smtp: SmtpSettings | None = None
    message_id_domain: str | None = None
    mailgun_signing_key: SecretStr | None = None
    sendgrid_verification_key: str | None = None
    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    timestamp_tolerance: timedelta = timedelta(minutes=5)


class EmailChannel(Channel):
    """Email. No reply window; bounced, complained and unsubscribed addresses are
    suppressed and refused with the reason."""

    name = "email"
    content_types = frozenset(
        {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    )
    config_type = EmailConfig
    config: EmailConfig
    rules = PolicyRules()

    def __init__(
        self,
        config: EmailConfig,
        transport: MailTransport | None = None,
        **options: Unpack[ChannelOptions],
    ) -> None:
        super().__init__(config, **options)
        self.max_body_bytes = config.max_message_bytes
        if transport is None:
            if config.smtp is None:
                raise ConfigurationError("email needs SMTP settings or a transport")
            transport = SmtpTransport(config.smtp)
        self.transport = transport
        key = config.sendgrid_verification_key
        self._sendgrid_key = signature.sendgrid_public_key(key) if key else None

    def __repr__(self) -> str:
        return f"EmailChannel(from_address={self.config.from_address!r})"

    def identity(self, address: str) -> Identity:
        """The identity of one mailbox; InvalidAddressError for a list, CR/LF or bad
        syntax."""
        return super().identity(mime.mailbox(address))

    # -- inbound ----------------------------------------------------------------------

    async def receive_raw(self, raw: bytes) -> WebhookResult:
        """Take in one raw RFC 5322 message (from your own SMTP server or a mailbox)
        through the same size limit, dedup and state path as webhooks."""
        self._check_size(raw)
        inbound = self.inbound()
        message = await anyio.to_thread.run_sync(mime.parse_message, raw, inbound)
        return await self._apply(WebhookResult(events=[providers.received(message, inbound)]))

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        if request.method != "POST":
            raise UnsupportedRequestError(f"email webhooks are POST, not {request.method}")
        inbound = self.inbound()
        content_type = request.header("content-type") or ""
        if request.header(signature.SENDGRID_SIGNATURE) is not None:
            return WebhookResult(events=self._sendgrid(request))
        if content_type.startswith("application/json"):
            return self._mailgun_event(request)
        form = await read_form(content_type, request.body)
        once = self._verify_mailgun(
            *(form[f].text if f in form else None for f in ("timestamp", "token", "signature"))
        )
        # Only a verified request reaches the MIME parser, in a worker thread.
        event = await anyio.to_thread.run_sync(providers.mailgun_inbound, form, inbound)
        return WebhookResult(events=[event], once=once)

    def _verify_mailgun(
        self, timestamp: str | None, token: str | None, sig: str | None
    ) -> dict[str, timedelta]:
        """Check a Mailgun signature; returns its token as a one-time value. Mailgun
        signs only timestamp + token, not the body, so a token is good for one request
        (as Mailgun's "Securing webhooks" advises): the token is marked used in the same
        atomic step that stores the request's events, and a replay is refused."""
        if self.config.mailgun_signing_key is None:
            raise SignatureError("a Mailgun webhook arrived but no mailgun_signing_key is set")
        signature.verify_mailgun(
            self.config.mailgun_signing_key.get_secret_value(), timestamp, token, sig
        )
        signature.check_timestamp(timestamp, self.clock.now(), self.config.timestamp_tolerance)
        return {f"{self.name}:mailgun-token:{token}": 2 * self.config.timestamp_tolerance}

    def _mailgun_event(self, request: WebhookRequest) -> WebhookResult:
        document = load_json(request.body, "Mailgun event")
        signed = document.get("signature") if isinstance(document, dict) else None
        if not isinstance(signed, dict):
            raise SignatureError("Mailgun event has no signature object")
        once = self._verify_mailgun(
            *(_text(signed.get(f)) for f in ("timestamp", "token", "signature"))
        )
        data = document.get("event-data")
        if not isinstance(data, dict):
            raise PayloadError("Mailgun event has no event-data object")
        return WebhookResult(events=providers.mailgun_event(data, self.inbound()), once=once)

    def _sendgrid(self, request: WebhookRequest) -> list[Event]:
        if self._sendgrid_key is None:
            raise SignatureError(
                "a SendGrid webhook arrived but no sendgrid_verification_key is set"
            )
        timestamp = request.header(signature.SENDGRID_TIMESTAMP)
        signature.verify_sendgrid(
            self._sendgrid_key,
            request.body,
            request.header(signature.SENDGRID_SIGNATURE),
            timestamp,
        )
        signature.check_timestamp(timestamp, self.clock.now(), self.config.timestamp_tolerance)
        document = load_json(request.body, "SendGrid event batch")
        return providers.sendgrid_events(document, self.inbound())

    # -- outbound ---------------------------------------------------------------------

    def reply(self, inbound: Message, text: str, html: str | None = None) -> Message:
        """A reply to ``inbound`` that lands in the customer's thread."""
        subject = inbound.subject or ""
        if not subject.lower().startswith("re:"):
            subject = f"Re: {subject}".strip()
        return Message(
            contact=inbound.contact,
            subject=subject,
            text=text,
            html=html,
            reply_to=inbound.id,
            thread=inbound.thread,
        )

    def validate(self, message: Message) -> None:
        super().validate(message)
        if message.template or message.interactive or message.reaction or message.location:
            raise UnsupportedMessageError(f"email cannot send a {message.kind} message")
        if not (message.text or message.html or message.media):
            raise MessageInvalidError("an email needs text, html or attachments")
        if any(media.data is None for media in message.media):
            raise MessageInvalidError("email attachments need their bytes in media.data")
        mime.mailbox(message.contact.address)
        _check_header_values(message)

    async def _deliver(self, message: Message) -> Receipt:
        domain = self.config.message_id_domain or self.config.from_address.rpartition("@")[2]
        message_id = mime.new_message_id(domain)
        email = mime.build_email(
            message, self.config.from_address, self.config.from_name, message_id, self.clock.now()
        )
        await self.transport.send(email)
        return self._receipt(
            message.contact,
            message_id,
            {"subject": message.subject, "references": email.get("References")},
        )


def _check_header_values(message: Message) -> None:
    """Refuse CR/LF in what becomes a header (header injection) before any SMTP call."""
    values = {
        "subject": message.subject,
        "reply_to": message.reply_to,
        "thread": message.thread,
        **{f"media[{i}].filename": m.filename for i, m in enumerate(message.media)},
        **{f"media[{i}].mime_type": m.mime_type for i, m in enumerate(message.media)},
    }
    for name, value in values.items():
        if value and ("\r" in value or "\n" in value):
            raise MessageInvalidError(f"email {name} must not contain CR or LF")


def _text(value: object) -> str | None:
    return None if value is None else str(value)
