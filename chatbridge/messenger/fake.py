"""A loopback imitation of the Messenger Platform Send and Attachment Upload APIs
(Messenger and Instagram), with a CDN serving uploads back."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass

import httpx

from chatbridge.messenger.channel import MessengerConfig
from chatbridge.plugin import FakeAPI, Refused, graph, json_response, parse_multipart


@dataclass(frozen=True)
class GraphError:
    """A Graph error the fake answers with."""

    code: int
    subcode: int | None
    message: str

    def response(self, status: int = 400) -> httpx.Response:
        return graph.error_response(status, self.code, self.message, self.subcode)


MESSENGER_OUTSIDE_WINDOW = GraphError(
    10, 2018278, "(#10) This message is sent outside of allowed window."
)
_BAD_TOKEN = GraphError(190, None, "Invalid OAuth access token.")
#: Meta's "Common Error Codes" (100 - 2018014).
MESSAGE_AND_STATE = GraphError(
    100, 2018014, "(#100) Cannot send both message and state at the same time."
)
#: Neither: third-party report of Meta's answer (docs/messenger.md, UNCONFIRMED).
NO_MESSAGE_OR_STATE = GraphError(100, 2018015, "(#100) Must send either message or state")
#: The Graph reference's ``sender_action`` enum (the wording is unconfirmed).
SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen", "react", "unreact")
BAD_SENDER_ACTION = GraphError(
    100, None, "(#100) Param sender_action must be one of {" + ", ".join(SENDER_ACTIONS) + "}"
)


class FakeMessengerAPI(FakeAPI):
    """Accepts messages and sender actions, stores uploaded attachments and serves them
    at ``https://lookaside.fbsbx.com/fake-cdn/{id}``; checks the page access token
    (query or body parameter ``access_token``).

    ``sent`` holds every accepted message body, ``actions`` every accepted sender
    action body (typing, seen, reactions); ``uploads`` every uploaded file. A body with
    both ``message`` and ``sender_action``, neither, or an unknown action is refused as
    Graph does. With a ``window`` set, untagged messages to a customer who has not
    written within it get ``outside_window``, the provider's refusal (sender actions
    are not held to it: Meta documents no window for them).
    """

    hosts = ("graph.facebook.com", "lookaside.fbsbx.com")

    def __init__(
        self, config: MessengerConfig, outside_window: GraphError = MESSENGER_OUTSIDE_WINDOW
    ) -> None:
        super().__init__()
        self.config = config
        self.outside_window = outside_window
        self.sent: list[dict[str, object]] = []
        self.actions: list[dict[str, object]] = []
        self.uploads: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        page = rf"/{re.escape(config.api_version)}/{re.escape(config.page_id)}"
        self.route("POST", rf"{page}/messages", self._messages)
        self.route("POST", rf"{page}/message_attachments", self._upload)
        self.route("GET", r"/fake-cdn/(?P<attachment_id>\d+)", self._cdn)

    def authorize(self, request: httpx.Request) -> None:
        is_cdn = request.url.path.removeprefix(self.prefix).startswith("/fake-cdn/")
        if not is_cdn and self._token(request) != self.config.access_token.get_secret_value():
            raise Refused(_BAD_TOKEN.response(401))

    def unknown(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(self.prefix)
        return graph.no_such_object(request, path.rstrip("/").rpartition("/")[2])

    def unreadable(self, request: httpx.Request) -> httpx.Response:
        return GraphError(100, None, "(#100) The parameter recipient is required").response()

    @staticmethod
    def _token(request: httpx.Request) -> str | None:
        if "access_token" in request.url.params:
            return request.url.params["access_token"]
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            part = parse_multipart(request).get("access_token")
            return part.data.decode() if part else None
        try:
            token = json.loads(request.content).get("access_token")
        except (ValueError, AttributeError):
            return None
        return token if isinstance(token, str) else None

    def cdn_url(self, attachment_id: str) -> str:
        """Where an uploaded attachment's bytes are served (as an inbound URL)."""
        return f"https://lookaside.fbsbx.com{self.prefix}/fake-cdn/{attachment_id}"

    def _messages(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        body.pop("access_token", None)
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not recipient.get("id"):
            return graph.error_response(400, 100, "(#100) The parameter recipient is required")
        address = str(recipient["id"])
        if "sender_action" in body:
            return self._sender_action(body, address)
        if not isinstance(body.get("message"), dict):
            return NO_MESSAGE_OR_STATE.response()
        if body.get("messaging_type") != "MESSAGE_TAG" and self.window_closed(address):
            return self.outside_window.response()
        self.sent.append(body)
        message_id = f"m_FAKE{next(self._ids):08d}"
        return json_response(200, {"recipient_id": address, "message_id": message_id})

    def _sender_action(self, body: dict[str, object], address: str) -> httpx.Response:
        """Sender actions answer ``{"recipient_id"}`` only (no ``message_id``)."""
        if "message" in body:
            return MESSAGE_AND_STATE.response()
        if body["sender_action"] not in SENDER_ACTIONS:
            return BAD_SENDER_ACTION.response()
        self.actions.append(body)
        return json_response(200, {"recipient_id": address})

    def _upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        parts = parse_multipart(request)
        if "filedata" not in parts or "message" not in parts:
            return graph.error_response(400, 100, "(#100) Upload attachment failure", 2018047)
        attachment_id = f"{next(self._ids):016d}"
        self.uploads[attachment_id] = parts["filedata"].data
        return json_response(200, {"attachment_id": attachment_id})

    def _cdn(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.uploads.get(match["attachment_id"])
        if data is None:
            return httpx.Response(404)
        return httpx.Response(200, content=data)
