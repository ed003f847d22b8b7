"""SMS and MMS through Twilio's Programmable Messaging API."""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from xml.etree.ElementTree import Element, SubElement, tostring

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from chatbridge.errors import (
    MessageInvalidError,
    PayloadError,
    ProviderPolicyError,
    UnsupportedRequestError,
)
from chatbridge.http import basic_authorization
from chatbridge.models import Event, Identity, Media, Message, Receipt
from chatbridge.plugin.parsing import load_json
from chatbridge.sms.channel import SmsChannel
from chatbridge.sms.twilio import inbound, signature
from chatbridge.sms.twilio.errors import UNSUBSCRIBED_RECIPIENT, error_for
from chatbridge.webhook import WebhookRequest, WebhookResponse


class TwilioConfig(BaseModel):
    """A Twilio account and the sender: ``from_number`` or ``messaging_service_sid``.

    ``public_url`` is the webhook URL as Twilio calls it, when a proxy changes the URL the
    application sees (Twilio signs the URL it requested).
    """

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)  # URLs may hold passwords

    account_sid: str
    auth_token: SecretStr
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    public_url: str | None = None
    api_base: str = "https://api.twilio.com"

    @field_validator("public_url")
    @classmethod
    def _parsable(cls, url: str | None) -> str | None:
        if url is not None:
            urlsplit(url).port  # noqa: B018 (raises ValueError for a port that is no number)
        return url

    @model_validator(mode="after")
    def _one_sender(self) -> TwilioConfig:
        if bool(self.from_number) == bool(self.messaging_service_sid):
            raise ValueError("give exactly one of from_number and messaging_service_sid")
        return self


class TwilioSid(BaseModel):
    sid: str
    num_segments: str | None = None
    status: str | None = None


class TwilioChannel(SmsChannel):
    """SMS/MMS through Twilio. Webhooks: incoming messages and status callbacks."""

    config_type = TwilioConfig
    content_types = frozenset({"application/x-www-form-urlencoded", "application/json"})
    config: TwilioConfig

    def __repr__(self) -> str:
        return f"TwilioChannel(account_sid={self.config.account_sid!r})"

    # -- inbound ----------------------------------------------------------------------

    async def _parse(self, request: WebhookRequest) -> list[Event]:
        url, received = self._signed_url(request), self.inbound()
        token = self.config.auth_token.get_secret_value()
        header = request.header(signature.SIGNATURE_HEADER)
        if request.method == "GET":
            signature.verify(url, [], header, token)
            return [inbound.parse_params(dict(request.query), received)]
        if request.method != "POST":
            raise UnsupportedRequestError(f"Twilio webhooks are POST or GET, not {request.method}")
        if _media_type(request) == "application/json":
            signature.verify_json(url, request.body, header, token)
            return [inbound.parse_json(load_json(request.body, "Twilio JSON webhook"), received)]
        try:
            params = parse_qsl(request.body.decode(), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise PayloadError(f"malformed Twilio form: {exc}") from exc
        signature.verify(url, params, header, token)
        return [inbound.parse_params(dict(params), received)]

    def _signed_url(self, request: WebhookRequest) -> str:
        """The URL Twilio signed: ``public_url`` when set, with the request's query
        string when it has one (the public URL's own query, passed on by the proxy,
        and for JSON webhooks ``bodySHA256``, which Twilio adds to each request)."""
        public = self.config.public_url
        if not public:
            return request.url
        query = urlsplit(request.url).query
        return urlunsplit(urlsplit(public)._replace(query=query)) if query else public

    async def _auto_reply(self, contact: Identity, text: str) -> WebhookResponse:
        """Answer in the webhook response with TwiML ``<Message>``."""
        return _twiml(text)

    def _acknowledgement(self) -> WebhookResponse:
        return _EMPTY_TWIML

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        if len(message.media) > 10 or any(not m.url for m in message.media):
            raise MessageInvalidError("Twilio MMS takes up to 10 media items by public URL")

    async def _deliver(self, message: Message) -> Receipt:
        form: list[tuple[str, str]] = [("To", message.contact.address)]
        if self.config.messaging_service_sid:
            form.append(("MessagingServiceSid", self.config.messaging_service_sid))
        else:
            form.append(("From", str(self.config.from_number)))
        if message.text:
            form.append(("Body", message.text))
        form += [("MediaUrl", str(media.url)) for media in message.media]
        if self.config.status_callback:
            form.append(("StatusCallback", self.config.status_callback))
        url = f"{self.config.api_base}/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        headers = {"content-type": "application/x-www-form-urlencoded", **self._auth()}
        # urlencode keeps repeated MediaUrl fields, which a dict could not.
        request = self.http.build_request(
            "POST", url, content=urlencode(form).encode(), headers=headers
        )
        try:
            response = await self._request(request)
        except ProviderPolicyError as exc:
            if exc.code == UNSUBSCRIBED_RECIPIENT:  # Twilio knew of a STOP we did not
                await self.store.update_contact_state(message.contact, opted_out=True)
            raise
        sent = self._read(response, TwilioSid, "send")
        return self._receipt(
            message.contact,
            sent.sid,
            sent.model_dump() | {"estimate": self.estimate(message).model_dump(mode="json")},
        )

    # -- media ------------------------------------------------------------------------

    async def download_media(self, media: Media) -> bytes:
        """Fetch inbound MMS media (Twilio may require the account's basic auth and
        redirects to its media store)."""
        if not media.url:
            raise MessageInvalidError("downloading Twilio media needs its MediaUrl")
        request = self.http.build_request("GET", media.url, headers=self._auth())
        return (await self._request(request, follow_redirects=True)).content

    def _auth(self) -> dict[str, str]:
        """HTTP basic auth with the account SID and auth token."""
        token = self.config.auth_token.get_secret_value()
        return {"Authorization": basic_authorization(self.config.account_sid, token)}

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise error_for(response)


def _media_type(request: WebhookRequest) -> str:
    return (request.header("content-type") or "").split(";")[0].strip().lower()


def _twiml(text: str | None) -> WebhookResponse:
    root = Element("Response")
    if text:
        SubElement(root, "Message").text = text
    body = b'<?xml version="1.0" encoding="UTF-8"?>' + tostring(root, encoding="unicode").encode()
    return WebhookResponse(body=body, media_type="application/xml")


_EMPTY_TWIML = _twiml(None)
