"""A loopback imitation of the WhatsApp Cloud API send and media endpoints."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass

import httpx

from chatbridge.plugin import graph
from chatbridge.plugin.fake import FakeAPI, json_response, parse_multipart
from chatbridge.whatsapp.channel import WhatsAppConfig


@dataclass
class StoredMedia:
    """An uploaded file; ``sha256`` is computed at upload, as Meta reports it."""

    data: bytes
    mime_type: str
    sha256: str


class FakeWhatsAppAPI(FakeAPI):
    """Accepts messages, stores uploaded media and serves it back, checks the bearer token.

    ``sent`` holds every message body accepted; ``media`` every uploaded file.
    """

    hosts = ("graph.facebook.com",)

    def __init__(self, config: WhatsAppConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, object]] = []
        self.media: dict[str, StoredMedia] = {}
        self._ids = itertools.count(1)
        prefix = f"/{re.escape(config.api_version)}"
        number = re.escape(config.phone_number_id)
        self.route("POST", rf"{prefix}/{number}/messages", self._messages)
        self.route("POST", rf"{prefix}/{number}/media", self._upload)
        self.route("GET", rf"{prefix}/(?P<media_id>[\w.-]+)", self._media_info)
        self.route("GET", r"/fake-media/(?P<media_id>[\w.-]+)", self._media_bytes)

    def _authorized(self, request: httpx.Request) -> bool:
        expected = f"Bearer {self.config.access_token.get_secret_value()}"
        return bool(request.headers.get("authorization") == expected)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            self.requests.append(request)
            return graph.error_response(401, 190, "Error validating access token")
        return super().__call__(request)

    def _messages(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if body.get("messaging_product") != "whatsapp" or (
            not body.get("to") and not body.get("message_id")
        ):
            return graph.error_response(400, 100, "(#100) Invalid parameter")
        if body.get("status") == "read":
            return json_response(200, {"success": True})
        if body.get("type") != "template" and self.window_closed(str(body["to"])):
            message = "(#131047) Re-engagement message: more than 24 hours have passed"
            return graph.error_response(400, 131047, message)
        self.sent.append(body)
        to = str(body["to"])
        message_id = f"wamid.FAKE{next(self._ids):08d}"
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": message_id}],
            },
        )

    def _upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        parts = parse_multipart(request)
        if "file" not in parts or "type" not in parts:
            return graph.error_response(400, 100, "(#100) The parameter file is required")
        media_id = f"{next(self._ids):016d}"
        data = parts["file"].data
        self.media[media_id] = StoredMedia(
            data, parts["type"].data.decode(), hashlib.sha256(data).hexdigest()
        )
        return json_response(200, {"id": media_id})

    def _media_info(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        media_id = match["media_id"]
        if media_id not in self.media:
            return graph.error_response(404, 100, "(#100) Unsupported get request")
        stored = self.media[media_id]
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "url": str(request.url.copy_with(path=f"{self.prefix}/fake-media/{media_id}")),
                "mime_type": stored.mime_type,
                "sha256": stored.sha256,
                "file_size": len(stored.data),
                "id": media_id,
            },
        )

    def _media_bytes(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        stored = self.media.get(match["media_id"])
        if stored is None:
            return httpx.Response(404)
        return httpx.Response(200, content=stored.data, headers={"content-type": stored.mime_type})
