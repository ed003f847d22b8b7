"""A loopback imitation of Twilio's Messages API (and of its media URLs)."""

from __future__ import annotations

import base64
import itertools
import re
from urllib.parse import parse_qsl

import httpx

from chatbridge.plugin.fake import FakeAPI, json_response
from chatbridge.sms.segments import count_segments
from chatbridge.sms.twilio.channel import TwilioConfig


def twilio_error(status: int, code: int, message: str) -> httpx.Response:
    return json_response(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class FakeTwilioAPI(FakeAPI):
    """Accepts messages (``sent``), refuses numbers in ``unsubscribed`` with 21610 as
    Twilio does after a STOP, and serves ``media`` at ``/fake-media/<id>``."""

    hosts = ("api.twilio.com",)

    def __init__(self, config: TwilioConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, list[str]]] = []
        self.unsubscribed: set[str] = set()
        self.media: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        account = re.escape(config.account_sid)
        self.route("POST", rf"/2010-04-01/Accounts/{account}/Messages\.json", self._create)
        self.route("GET", r"/fake-media/(?P<id>\w+)", self._media)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        pair = f"{self.config.account_sid}:{self.config.auth_token.get_secret_value()}"
        if (
            request.headers.get("authorization")
            != "Basic " + base64.b64encode(pair.encode()).decode()
        ):
            self.requests.append(request)
            return twilio_error(401, 20003, "Authenticate")
        return super().__call__(request)

    def _create(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.content.decode(), keep_blank_values=True):
            form.setdefault(name, []).append(value)
        to = form.get("To", [""])[0]
        if not re.fullmatch(r"\+[1-9]\d{1,14}", to):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in self.unsubscribed:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        if not (form.get("Body") or form.get("MediaUrl")):
            return twilio_error(400, 21602, "Message body is required.")
        self.sent.append(form)
        segments = count_segments(form.get("Body", [""])[0]).segments
        sid = f"SM{next(self._ids):032x}"
        return json_response(
            201, {"sid": sid, "status": "queued", "num_segments": str(segments), "to": to}
        )

    def _media(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.media.get(match["id"])
        if data is None:
            return twilio_error(404, 20404, "The requested resource was not found")
        return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
