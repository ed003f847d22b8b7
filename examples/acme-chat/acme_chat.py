"""Acme Chat for chatbridge: a whole channel plugin in one module."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr

from chatbridge import Event, Message, MessageReceived, Receipt, UnknownEvent
from chatbridge.plugin import (
    Channel,
    ChannelKit,
    Facts,
    FakeAPI,
    Inbound,
    PayloadError,
    PolicyRules,
    Sample,
    UnsupportedMessageError,
    WebhookRequest,
    WebhookResult,
    hmac_hex,
    json_response,
    load_json,
    require_match,
)

SIGNATURE_HEADER = "Acme-Signature"


class AcmeConfig(BaseModel):
    """What the Acme dashboard gives you."""

    api_token: SecretStr
    signing_secret: SecretStr
    api_base: str = "https://api.acme.example"


class AcmeChannel(Channel):
    """Acme Chat: text messages, sent only within 24 hours of the customer's last."""

    name = "acme"
    config_type = AcmeConfig
    config: AcmeConfig
    rules = PolicyRules(window=timedelta(hours=24), outside_window=frozenset())

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        secret = self.config.signing_secret.get_secret_value()
        signature = request.header(SIGNATURE_HEADER)
        require_match(hmac_hex(secret, request.body), signature, what=SIGNATURE_HEADER)
        body = load_json(request.body)
        items = body.get("events") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise PayloadError('an Acme webhook body is {"events": [{...}, ...]}')
        inbound = self.inbound()
        events = [inbound.item("event", item, lambda i: _event(inbound, i)) for item in items]
        return WebhookResult(events=events)

    def validate(self, message: Message) -> None:
        super().validate(message)
        if message.text is None or message.kind != "text":
            raise UnsupportedMessageError("Acme carries text messages only")
        self.lengths.text("a message", message.text, 1000)

    async def _deliver(self, message: Message) -> Receipt:
        request = self.http.build_request(
            "POST",
            f"{self.config.api_base}/v1/messages",
            headers={"Authorization": f"Bearer {self.config.api_token.get_secret_value()}"},
            json={"to": message.contact.address, "text": message.text},
        )
        response = await self._request(request)
        try:
            answer = response.json()
            return self._receipt(message.contact, str(answer["id"]), answer)
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unexpected(response, "send") from exc


def _event(inbound: Inbound, item: dict[str, Any]) -> Event:
    """One Acme event in the common model (``inbound.item`` turns a malformed one into
    an UnknownEvent that keeps it)."""
    if item["type"] != "message":
        return inbound.unknown(str(item["type"]), "not a message", item, event_id=item["id"])
    sent_at = datetime.fromtimestamp(item["sent_at"], UTC)
    return inbound.message(item["id"], item["from"], sent_at, item, text=item["text"])


class FakeAcmeAPI(FakeAPI):
    """The Acme send API on loopback: checks the token, refuses a closed window."""

    hosts = ("api.acme.example",)

    def __init__(self, config: AcmeConfig) -> None:
        super().__init__()
        self.token = f"Bearer {config.api_token.get_secret_value()}"
        self.sent: list[dict[str, Any]] = []
        self.route("POST", r"/v1/messages", self._messages)

    def _messages(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if request.headers.get("authorization") != self.token:
            return json_response(401, {"error": "invalid token"})
        body = self.json_body(request)
        if self.window_closed(str(body.get("to"))):
            return json_response(403, {"error": "the customer has not written for 24 hours"})
        self.sent.append(body)
        return json_response(200, {"id": f"msg_{len(self.sent)}"})


CONFIG = AcmeConfig(api_token="acme-test-token", signing_secret="acme-test-secret")


def acme_event(text: str, sender: str = "u-42", at: int = 1767225600, **item: Any) -> bytes:
    """A webhook body with one event (a message unless ``type`` says otherwise)."""
    event = {"id": f"ev-{sender}-{at}", "type": "message", "from": sender, "sent_at": at}
    return json.dumps({"events": [{**event, "text": text, **item}]}).encode()


def webhook(body: bytes) -> WebhookRequest:
    url = "https://support.example.com/webhooks/acme"
    return WebhookRequest("POST", url, {"content-type": "application/json"}, body)


def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
    key = secret or CONFIG.signing_secret.get_secret_value()
    return request.with_headers(**{SIGNATURE_HEADER: hmac_hex(key, request.body)})


def _is_text(events: list[Event]) -> None:
    event = events[0]
    assert isinstance(event, MessageReceived) and event.message.text == "Where is my order?"


kit = ChannelKit(
    channel=AcmeChannel,
    config=CONFIG,
    fake_api=lambda: FakeAcmeAPI(CONFIG),
    api_bases=("api_base",),
    webhook=webhook,
    sign=sign,
    samples=[
        Sample("text", acme_event("Where is my order?"), (MessageReceived,), _is_text),
        Sample("malformed_kept", acme_event("hi", sent_at="noon"), (UnknownEvent,)),
    ],
    unknown_body=acme_event("", type="typing"),
    open_conversation=lambda address, now: [acme_event("hi", address, int(now.timestamp()))],
    customer="u-42",
    outside_window=None,
    media=None,
    facts=Facts(
        window=timedelta(hours=24),
        sources={"window": "https://docs.acme.example/messaging#window"},
    ),
)
