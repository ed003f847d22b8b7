"""The Messenger Platform channel: Facebook Messenger, and the base of Instagram's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn

import httpx
from pydantic import BaseModel, ConfigDict

from chatbridge.messenger import outbound
from chatbridge.messenger.errors import MESSENGER_CODES
from chatbridge.messenger.inbound import parse_notification
from chatbridge.messenger.outbound import SavedAttachment, SenderAction, TextLimit
from chatbridge.models import Identity, Media, Message, Receipt
from chatbridge.plugin import (
    Channel,
    ErrorCodes,
    MessageInvalidError,
    PolicyRules,
    WebhookRequest,
    WebhookResult,
    graph,
)

_MB = 1024 * 1024


class MessengerConfig(graph.GraphConfig):
    """Credentials and endpoint of one Facebook Page (Messenger) or Instagram
    professional account (``page_id``: the id the Send API is called on)."""

    page_id: str
    api_version: str = "v25.0"


class _SendResult(BaseModel):
    """``POST /{page-id}/messages`` success body (sender actions have no message_id)."""

    model_config = ConfigDict(extra="allow")

    recipient_id: str | None = None
    message_id: str | None = None


class _UploadResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    attachment_id: str


class MessengerChannel(Channel):
    """Facebook Messenger through the Messenger Platform (Graph API).

    Policy: free-form messages within 24 hours of the customer's last message; outside
    it only messages sent with a message tag (``Message.tag``), HUMAN_AGENT only within
    7 days of that message (``rules.tags``). Subclasses for the platform's other
    products (Instagram) declare what differs in the class attributes below.
    """

    name = "messenger"
    config_type: ClassVar[type[BaseModel]] = MessengerConfig
    config: MessengerConfig
    rules = PolicyRules(
        window=timedelta(hours=24),
        outside_window=frozenset(),
        tags={
            "HUMAN_AGENT": timedelta(days=7),
            "ACCOUNT_UPDATE": None,
            "CONFIRMED_EVENT_UPDATE": None,
            "POST_PURCHASE_UPDATE": None,
        },
    )
    max_body_bytes = 3 * _MB
    error_codes: ClassVar[ErrorCodes] = MESSENGER_CODES

    #: The webhook body's ``object``.
    webhook_object: ClassVar[str] = "page"
    #: "text ... Must be UTF-8 and less than 2000 characters."
    text_limit: ClassVar[TextLimit] = TextLimit(1999)
    #: Largest upload per attachment type, in bytes.
    upload_max_bytes: ClassVar[Mapping[str, int]] = MappingProxyType(
        {"image": 25 * _MB, "video": 25 * _MB, "audio": 25 * _MB, "file": 25 * _MB}
    )
    #: Fields the Attachment Upload API needs besides ``message`` and ``filedata``.
    upload_fields: ClassVar[Mapping[str, str]] = MappingProxyType({})
    #: How a message refers to an uploaded attachment.
    saved_attachment: ClassVar[SavedAttachment] = "attachment_id"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(page_id={self.config.page_id!r})"

    # -- inbound ----------------------------------------------------------------------

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        return graph.receive(
            request,
            provider=self.name,
            verify_token=self.config.verify_token,
            app_secret=self.config.app_secret,
            parse=lambda body: parse_notification(body, self.inbound(), self.webhook_object),
        )

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        outbound.validate(
            message, self.lengths, self.text_limit, self.rules.tags, self.upload_max_bytes
        )

    async def _deliver(self, message: Message) -> Receipt:
        if message.media and not (message.media[0].provider_id or message.media[0].url):
            uploaded = await self.upload_media(message.media[0])
            message = message.model_copy(update={"media": [uploaded]})
        body = outbound.message_body(message, self.saved_attachment)
        response = await self._request(
            self.http.build_request("POST", self._url("messages"), json=self._signed_in(body))
        )
        result = self._read(response, _SendResult, "send")
        return self._receipt(message.contact, result.message_id, result.model_dump())

    # -- presence ---------------------------------------------------------------------

    async def typing(self, contact: Identity) -> None:
        """Show ``contact`` the typing bubble (sender action ``typing_on``) until the
        page's next message, :meth:`cancel_typing`, or about 20 seconds. Not a message:
        no policy is applied here; a provider refusal is typed as a send's is."""
        await self._sender_action(contact, "typing_on")

    async def cancel_typing(self, contact: Identity) -> None:
        """Take the typing bubble back (``typing_off``)."""
        await self._sender_action(contact, "typing_off")

    async def mark_seen(self, contact: Identity) -> None:
        """Show ``contact`` their latest message as seen (``mark_seen``)."""
        await self._sender_action(contact, "mark_seen")

    async def _sender_action(self, contact: Identity, action: SenderAction) -> None:
        self._check_identity(contact)
        body = outbound.sender_action_body(contact.address, action)
        response = await self._request(
            self.http.build_request("POST", self._url("messages"), json=self._signed_in(body))
        )
        self._read(response, _SendResult, f"{action} sender action")

    # -- media ------------------------------------------------------------------------

    async def upload_media(self, media: Media) -> Media:
        """Upload ``media.data`` with the Attachment Upload API (multipart ``message``
        + ``filedata``) as a reusable attachment; its ``attachment_id`` becomes the
        media's ``provider_id``. The bytes stay on the returned media."""
        if media.data is None or not media.mime_type:
            raise MessageInvalidError("uploading media needs data and a mime_type")
        wire = outbound.wire_media_type(media)
        self.lengths.upload(wire, media.data, self.upload_max_bytes[wire])
        attachment = {"attachment": {"type": wire, "payload": {"is_reusable": True}}}
        fields = self._signed_in({"message": json.dumps(attachment), **self.upload_fields})
        request = self.http.build_request(
            "POST",
            self._url("message_attachments"),
            data=fields,
            files={"filedata": (media.filename or "upload", media.data, media.mime_type)},
        )
        response = await self._request(request)
        uploaded = self._read(response, _UploadResult, "attachment upload")
        return media.model_copy(
            update={"provider_id": uploaded.attachment_id, "size": len(media.data)}
        )

    async def download_media(self, media: Media) -> bytes:
        """The bytes behind an inbound attachment's CDN ``url``: a plain GET, without
        the page token. Media without a url (an upload) gives the bytes it carries."""
        if media.url is None:
            return await super().download_media(media)
        response = await self._request(
            self.http.build_request("GET", media.url), follow_redirects=True
        )
        return response.content

    # -- HTTP -------------------------------------------------------------------------

    def _url(self, edge: str) -> str:
        config = self.config
        return f"{config.base_url}/{config.api_version}/{config.page_id}/{edge}"

    def _signed_in(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with the page access token, as the body parameter Graph reads
        (kept out of URLs, which HTTP clients log)."""
        return {**params, "access_token": self.config.access_token.get_secret_value()}

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise graph.error_for(response, self.error_codes, provider=self.name)
