"""A loopback imitation of Twilio's Messages API: create, fetch and list (the full
Message resource), and its media URLs; refused with Twilio's codes and error bodies
(docs/sms.md, "The Twilio sandbox")."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx

from chatbridge.http import basic_authorization
from chatbridge.plugin.fake import FakeAPI, Refused, json_response
from chatbridge.sms.segments import count_segments
from chatbridge.sms.twilio.channel import TwilioConfig

API_VERSION = "2010-04-01"
BODY_MAX = 1600
PAGE_MAX = 1000  # Twilio error 20007 "Page size too large"
_E164 = re.compile(r"\+[1-9]\d{1,14}")
_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")


def twilio_error(status: int, code: int, message: str) -> httpx.Response:
    """Twilio's error body: ``{code, message, more_info, status}``."""
    return json_response(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def refused(code: int, message: str, status: int = 400) -> Refused:
    return Refused(twilio_error(status, code, message))


class FakeTwilioAPI(FakeAPI):
    """Accepts messages from the account's number or messaging service (``sent``:
    their forms; ``messages``: the Message resources by sid), refuses numbers in
    ``unsubscribed`` with 21610 as Twilio does after a STOP, and serves ``media`` at
    ``/fake-media/<id>``."""

    hosts = ("api.twilio.com",)

    def __init__(self, config: TwilioConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, list[str]]] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.unsubscribed: set[str] = set()
        self.media: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._base = f"/{API_VERSION}/Accounts/{config.account_sid}/Messages"
        messages = re.escape(self._base)
        self.route("POST", rf"{messages}\.json", self._create)
        self.route("GET", rf"{messages}\.json", self._list)
        self.route("GET", rf"{messages}/(?P<sid>\w+)\.json", self._fetch)
        self.route("GET", r"/fake-media/(?P<id>\w+)", self._media)

    def authorize(self, request: httpx.Request) -> None:
        token = self.config.auth_token.get_secret_value()
        if request.headers.get("authorization") != basic_authorization(
            self.config.account_sid, token
        ):
            raise refused(20003, "Authenticate", 401)

    def unknown(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(self.prefix)
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def _create(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.content.decode(), keep_blank_values=True):
            form.setdefault(name, []).append(value)
        to, sender, service, body = (
            form.get(name, [""])[0] for name in ("To", "From", "MessagingServiceSid", "Body")
        )
        self._check(to, sender, service, body, media=bool(form.get("MediaUrl")))
        self.sent.append(form)
        sid = f"SM{next(self._ids):032x}"
        self.accepted(sid, to)
        now = format_datetime(datetime.now(UTC))
        self.messages[sid] = {
            "account_sid": self.config.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": now,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service or None,
            "num_media": str(len(form.get("MediaUrl", []))),
            "num_segments": str(count_segments(body).segments),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{self._base}/{sid}/Media.json"},
            "to": to,
            "uri": f"{self._base}/{sid}.json",
        }
        return json_response(201, self.messages[sid])

    def address(self, given: str) -> str:
        return f"+{given}" if given.isdigit() else given  # E.164 with its +

    def _check(self, to: str, sender: str, service: str, body: str, *, media: bool) -> None:
        """Refused the way Twilio refuses a create (docs/sms.md)."""
        if not to:
            raise refused(21604, "A 'To' phone number is required.")
        if not _E164.fullmatch(to):
            raise refused(21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:
            raise refused(21603, "A 'From' phone number is required.")
        if sender and sender != self.config.from_number:
            message = (
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone "
                "number or short code for your account."
            )
            raise refused(21606, message)
        if service and not _SERVICE.fullmatch(service):
            raise refused(21705, "The Messaging Service is invalid")
        if service and service != self.config.messaging_service_sid:
            raise refused(21701, "The Messaging Service does not exist")
        if to == sender:
            raise refused(21266, "'To' and 'From' number cannot be the same.")
        if not body and not media:
            raise refused(21602, "Message body is required.")
        if len(body) > BODY_MAX:
            message = f"The concatenated message body exceeds the {BODY_MAX} character limit."
            raise refused(21617, message)
        if to in self.unsubscribed:
            raise refused(21610, "Attempt to send to unsubscribed recipient")

    def _fetch(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        message = self.messages.get(match["sid"])
        if message is None:
            return self.unknown(request)
        return json_response(200, message)

    def _list(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        """One page of the messages, newest first, filtered by ``To`` and ``From``."""
        query = request.url.params
        found = [
            message
            for message in reversed(self.messages.values())
            if query.get("To", message["to"]) == message["to"]
            and query.get("From", message["from"]) == message["from"]
        ]
        size, page = int(query.get("PageSize", 50)), int(query.get("Page", 0))
        if size > PAGE_MAX:
            raise refused(20007, "Page size too large")
        if size < 1 or page < 0:
            return self.unreadable(request)
        start = page * size
        shown = found[start : start + size]

        def uri(number: int) -> str:
            return f"{self._base}.json?PageSize={size}&Page={number}"

        more = start + size < len(found)
        return json_response(
            200,
            {
                "messages": shown,
                "start": start,
                "end": start + max(len(shown) - 1, 0),
                "page": page,
                "page_size": size,
                "uri": uri(page),
                "first_page_uri": uri(0),
                "next_page_uri": uri(page + 1) if more else None,
                "previous_page_uri": uri(page - 1) if page else None,
            },
        )

    def _media(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.media.get(match["id"])
        if data is None:
            return self.unknown(request)
        return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
