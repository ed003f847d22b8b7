"""The WhatsApp Cloud API channel."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import NoReturn

import httpx

from chatbridge.channel import Channel
from chatbridge.errors import MediaError, MessageInvalidError
from chatbridge.models import Media, Message, Receipt
from chatbridge.plugin import graph
from chatbridge.policy import PolicyRules
from chatbridge.webhook import WebhookRequest, WebhookResult
from chatbridge.whatsapp import outbound
from chatbridge.whatsapp.errors import error_for
from chatbridge.whatsapp.inbound import parse_notification
from chatbridge.whatsapp.payloads import WAMediaInfo, WASendResult, WAUploadResult


class WhatsAppConfig(graph.GraphConfig):
    """Credentials and endpoint of one WhatsApp business phone number."""

    phone_number_id: str
    api_version: str = "v21.0"


class WhatsAppChannel(Channel):
    """WhatsApp through Meta's Cloud API.

    Policy: free-form messages only within 24 hours of the customer's last message;
    outside that window only approved templates.
    """

    name = "whatsapp"
    config_type = WhatsAppConfig
    config: WhatsAppConfig
    rules = PolicyRules(window=timedelta(hours=24))
    max_body_bytes = 3 * 1024 * 1024
    content_types = frozenset({"application/json"})

    def __repr__(self) -> str:
        return f"WhatsAppChannel(phone_number_id={self.config.phone_number_id!r})"

    # -- inbound ----------------------------------------------------------------------

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        return graph.receive(
            request,
            provider=self.name,
            verify_token=self.config.verify_token,
            app_secret=self.config.app_secret,
            parse=lambda body: parse_notification(body, self.inbound()),
        )

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        outbound.validate(message, self.lengths)

    async def _deliver(self, message: Message) -> Receipt:
        if message.media and not (message.media[0].provider_id or message.media[0].url):
            uploaded = await self.upload_media(message.media[0])
            message = message.model_copy(update={"media": [uploaded]})
        response = await self._post_json("messages", outbound.message_body(message))
        result = self._read(response, WASendResult, "send")
        return self._receipt(message.contact, result.messages[0].id, result.model_dump())

    async def mark_read(self, message_id: str) -> None:
        """Mark an inbound message as read (no policy applies: it is not a message)."""
        await self._post_json("messages", outbound.mark_read_body(message_id))

    # -- media ------------------------------------------------------------------------

    async def upload_media(self, media: Media) -> Media:
        if media.data is None or not media.mime_type:
            raise MessageInvalidError("uploading media needs data and a mime_type")
        kind = outbound.wire_media_type(media)
        self.lengths.upload(kind, media.data, outbound.MEDIA_MAX_BYTES[kind])
        request = self.http.build_request(
            "POST",
            self._url("media"),
            headers=self._auth(),
            data={"messaging_product": "whatsapp", "type": media.mime_type},
            files={"file": (media.filename or "upload", media.data, media.mime_type)},
        )
        response = await self._request(request)
        uploaded = self._read(response, WAUploadResult, "media upload")
        return media.model_copy(update={"provider_id": uploaded.id, "size": len(media.data)})

    async def download_media(self, media: Media) -> bytes:
        """Two steps: ``GET /{media-id}`` for a short-lived URL, then ``GET`` that URL with
        the same bearer token. The sha256 Meta reports is checked."""
        if not media.provider_id:
            raise MessageInvalidError("downloading WhatsApp media needs its provider_id")
        info_url = f"{self.config.base_url}/{self.config.api_version}/{media.provider_id}"
        response = await self._request(
            self.http.build_request("GET", info_url, headers=self._auth())
        )
        info = self._read(response, WAMediaInfo, "media lookup")
        content = await self._request(
            self.http.build_request("GET", info.url, headers=self._auth())
        )
        data = content.content
        expected = info.sha256 or media.sha256
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise MediaError(f"WhatsApp media {media.provider_id} failed its sha256 check")
        return data

    # -- HTTP -------------------------------------------------------------------------

    def _url(self, edge: str) -> str:
        config = self.config
        return f"{config.base_url}/{config.api_version}/{config.phone_number_id}/{edge}"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.access_token.get_secret_value()}"}

    async def _post_json(self, edge: str, body: dict[str, object]) -> httpx.Response:
        request = self.http.build_request("POST", self._url(edge), headers=self._auth(), json=body)
        return await self._request(request)

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise error_for(response)
