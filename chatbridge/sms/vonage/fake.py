"""A loopback imitation of Vonage's SMS API (``POST /sms/json``: key and secret in the
form or a Basic header, or a signed request) and of the Messages API's SMS sends
(``POST /v1/messages``), refused the way Vonage refuses (docs/sms.md, "The Vonage
sandbox")."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl

import httpx

from chatbridge.http import basic_authorization
from chatbridge.plugin.fake import FakeAPI, Refused, json_response
from chatbridge.sms.vonage.channel import VonageConfig
from chatbridge.sms.vonage.signature import sms_signature

_NUMBER = re.compile(r"\d{7,15}")  # E.164 without the "+"


def vonage_status(status: str, error_text: str) -> httpx.Response:
    """A send refused the way Vonage refuses it: HTTP 200, a non-zero status."""
    return json_response(
        200, {"message-count": "1", "messages": [{"status": status, "error-text": error_text}]}
    )


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    """A Messages API error: an RFC 7807 problem body."""
    body = {
        "type": f"https://developer.vonage.com/api-errors#{title.lower().replace(' ', '-')}",
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
        **extra,
    }
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


class FakeVonageAPI(FakeAPI):
    """Accepts SMS API texts into ``sent`` (forms) and Messages API texts into
    ``messages`` (JSON bodies) after checking the credentials and parameters."""

    hosts = ("rest.nexmo.com", "api.nexmo.com")

    def __init__(self, config: VonageConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.route("POST", "/sms/json", self._send)
        self.route("POST", "/v1/messages", self._message)

    @property
    def _basic(self) -> str:
        return basic_authorization(self.config.api_key, self.config.api_secret.get_secret_value())

    def unknown(self, request: httpx.Request) -> httpx.Response:
        return problem(404, "Not Found", f"{request.url.path} is not a Vonage API path.")

    def unreadable(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sms/json"):
            return vonage_status("3", "Invalid parameters: the form cannot be read")
        return problem(400, "Bad Request", "The request body could not be parsed as JSON.")

    # -- the SMS API ------------------------------------------------------------------

    def _send(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if refusal := self._credentials(request, form):
            return vonage_status(*refusal)
        for name in ("from", "to", "text"):
            if not form.get(name):
                return vonage_status("2", f"Missing {name} param")
        if not _NUMBER.fullmatch(form["to"]):
            return vonage_status("3", "Invalid to param: a number in E.164 format without +")
        self.sent.append(form)
        message = {
            "to": form["to"],
            "message-id": f"{next(self._ids):016X}",
            "status": "0",
            "remaining-balance": "15.53590000",
            "message-price": "0.03330000",
            "network": "23410",
        }
        self.accepted(message["message-id"], form["to"])
        return json_response(200, {"message-count": "1", "messages": [message]})

    def _credentials(self, request: httpx.Request, form: dict[str, str]) -> tuple[str, str] | None:
        """The status and error text for the form's credentials, if they are refused:
        the key and secret (in the form or a Basic header), or the key and a ``sig``
        made with the signature secret."""
        if request.headers.get("authorization") == self._basic:
            return None
        if form.get("api_key") is None and "authorization" not in request.headers:
            return "2", "Missing api_key"
        if form.get("api_key") != self.config.api_key:
            return "4", "Bad Credentials"
        if "sig" in form:
            if "api_secret" in form:
                return "32", "Signature And API Secret Disallowed"
            secret = self.config.signature_secret.get_secret_value()
            expected = sms_signature(form, secret, self.config.signature_method)
            return None if form["sig"].lower() == expected else ("14", "Invalid Signature")
        if form.get("api_secret") != self.config.api_secret.get_secret_value():
            return "4", "Bad Credentials"
        return None

    def address(self, given: str) -> str:
        return given.removeprefix("+")  # Vonage's numbers have no +

    # -- the Messages API -------------------------------------------------------------

    def _message(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if request.headers.get("authorization") != self._basic:
            raise Refused(problem(401, "Unauthorized", "You did not provide correct credentials."))
        body = self.json_body(request)
        invalid = [{"name": name, "reason": reason} for name, reason in _message_problems(body)]
        if invalid:
            detail = "The value of one or more parameters is invalid."
            raise Refused(problem(422, "Invalid params", detail, invalid_parameters=invalid))
        self.messages.append(body)
        return json_response(202, {"message_uuid": str(uuid.uuid4())})


def _message_problems(body: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong with a Messages API SMS send, by parameter."""
    problems = []
    if body.get("channel") != "sms":
        problems.append(("channel", "must be sms"))
    if body.get("message_type") != "text":
        problems.append(("message_type", "must be text"))
    if not isinstance(body.get("to"), str) or not _NUMBER.fullmatch(body["to"]):
        problems.append(("to", "must be a number in E.164 format without +"))
    if not body.get("from"):
        problems.append(("from", "is required"))
    if not isinstance(body.get("text"), str) or not body["text"]:
        problems.append(("text", "is required"))
    return problems
