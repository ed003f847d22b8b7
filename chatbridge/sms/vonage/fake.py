"""A loopback imitation of the Vonage SMS API send endpoint."""

from __future__ import annotations

import itertools
import re
from urllib.parse import parse_qsl

import httpx

from chatbridge.plugin.fake import FakeAPI, json_response
from chatbridge.sms.vonage.channel import VonageConfig


def vonage_status(status: str, error_text: str) -> httpx.Response:
    """A send refused the way Vonage refuses it: HTTP 200, a non-zero status."""
    return json_response(
        200, {"message-count": "1", "messages": [{"status": status, "error-text": error_text}]}
    )


class FakeVonageAPI(FakeAPI):
    """Accepts texts into ``sent`` after checking the key/secret and parameters."""

    hosts = ("rest.nexmo.com",)

    def __init__(self, config: VonageConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self.route("POST", "/sms/json", self._send)

    def _send(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        credentials = (self.config.api_key, self.config.api_secret.get_secret_value())
        if (form.get("api_key"), form.get("api_secret")) != credentials:
            return vonage_status("4", "Bad Credentials")
        if not all(form.get(name) for name in ("from", "to", "text")):
            return vonage_status("2", "Missing from, to or text")
        if not form["to"].isdigit():
            return vonage_status("3", "Invalid to")
        self.sent.append(form)
        message = {
            "to": form["to"],
            "message-id": f"{next(self._ids):016X}",
            "status": "0",
            "remaining-balance": "15.53590000",
            "message-price": "0.03330000",
            "network": "23410",
        }
        return json_response(200, {"message-count": "1", "messages": [message]})
