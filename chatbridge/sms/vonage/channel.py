"""SMS through Vonage: the SMS API to send, signed SMS API and Messages API webhooks."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, NoReturn

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from chatbridge.errors import (
    PayloadError,
    SignatureError,
    UnsupportedMessageError,
    UnsupportedRequestError,
)
from chatbridge.models import Event, Identity, Message, Receipt
from chatbridge.plugin.formdata import parse_form
from chatbridge.plugin.parsing import load_json
from chatbridge.sms.channel import SmsChannel
from chatbridge.sms.segments import Encoding
from chatbridge.sms.vonage import inbound, signature
from chatbridge.sms.vonage.errors import error_for
from chatbridge.webhook import WebhookRequest, WebhookResponse


class VonageConfig(BaseModel):
    """A Vonage account: API key/secret to send, the signature secret (and method, as
    set in the dashboard) to verify webhooks, and the sender id or number."""

    model_config = ConfigDict(frozen=True)

    api_key: str
    api_secret: SecretStr
    signature_secret: SecretStr
    signature_method: signature.SignatureMethod = "md5hash"
    sender: str
    timestamp_tolerance: timedelta = timedelta(minutes=5)
    api_base: str = "https://rest.nexmo.com"


class VonageChannel(SmsChannel):
    """SMS through Vonage. A webhook must carry a valid ``sig`` (SMS API) or a signed
    JWT (Messages API); unsigned webhooks are refused."""

    config_type = VonageConfig
    content_types = frozenset(
        {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}
    )
    config: VonageConfig

    def __repr__(self) -> str:
        return f"VonageChannel(api_key={self.config.api_key!r})"

    # -- inbound ----------------------------------------------------------------------

    async def _parse(self, request: WebhookRequest) -> list[Event]:
        """Verify, then parse: a JWT signs the body, so it is checked before the body is
        read; ``sig`` signs the parameters, which must be parsed first."""
        secret = self.config.signature_secret.get_secret_value()
        received, tolerance = self.inbound(), self.config.timestamp_tolerance
        now = received.received_at
        authorization = request.header("authorization") or ""
        if authorization.startswith("Bearer "):
            signature.verify_jwt(authorization, request.body, secret, now, tolerance)
            return [inbound.parse(self._params(request), received)]
        params = self._params(request)
        if "sig" not in params:
            raise SignatureError("Vonage webhook carries neither sig nor a signed JWT")
        flat = {name: str(value) for name, value in params.items()}
        signature.verify_sms(flat, secret, self.config.signature_method, now, tolerance)
        return [inbound.parse(params, received)]

    @staticmethod
    def _params(request: WebhookRequest) -> dict[str, Any]:
        if request.method == "GET":
            return dict(request.query)
        if request.method != "POST":
            raise UnsupportedRequestError(f"Vonage webhooks are GET or POST, not {request.method}")
        content_type = request.header("content-type") or ""
        if content_type.startswith("application/json"):
            document = load_json(request.body, "Vonage webhook")
            if not isinstance(document, dict):
                raise PayloadError("Vonage webhook JSON is not an object")
            return document
        return {name: part.text for name, part in parse_form(content_type, request.body).items()}

    async def _auto_reply(self, contact: Identity, text: str) -> WebhookResponse:
        """Vonage webhooks cannot carry a reply: send it through the API (keyword
        answers are due even to opted-out numbers, so no policy check)."""
        await self._deliver(Message(contact=contact, text=text))
        return WebhookResponse()

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        if message.media:
            raise UnsupportedMessageError("the Vonage SMS API sends text only")

    async def _deliver(self, message: Message) -> Receipt:
        form = {
            "api_key": self.config.api_key,
            "api_secret": self.config.api_secret.get_secret_value(),
            "from": self.config.sender,
            "to": message.contact.address.removeprefix("+"),
            "text": message.text or "",
        }
        estimate = self.estimate(message)
        if estimate.encoding is Encoding.UCS2:
            form["type"] = "unicode"
        request = self.http.build_request("POST", f"{self.config.api_base}/sms/json", data=form)
        response = await self._request(request)
        try:
            body = json.loads(response.content)
            parts: list[dict[str, Any]] = body["messages"]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unexpected(response, "send") from exc
        for part in parts:
            if str(part.get("status")) != "0":
                raise error_for(str(part.get("status")), str(part.get("error-text", "")), body)
        return self._receipt(
            message.contact,
            str(parts[0].get("message-id")) if parts else None,
            body | {"estimate": estimate.model_dump(mode="json")},
        )

    # -- HTTP -------------------------------------------------------------------------

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise error_for(str(response.status_code), response.text[:500], {}, response.status_code)
