"""A loopback imitation of the LINE Messaging API: reply, push and multicast (with
their limits, single-use reply tokens and X-Line-Retry-Key), quota endpoints, and
message content on the data host."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx

from chatbridge.line.channel import LineConfig
from chatbridge.plugin.fake import FakeAPI, json_response


def line_error(status: int, message: str) -> httpx.Response:
    return json_response(status, {"message": message})


class FakeLineAPI(FakeAPI):
    """``replies``, ``pushes`` and ``multicasts`` hold accepted bodies; ``content`` maps a
    message id to the bytes the data API serves; ``quota`` is the plan's limit."""

    hosts = ("api.line.me", "api-data.line.me")

    def __init__(self, config: LineConfig, quota: int | None = 200) -> None:
        super().__init__()
        self.config = config
        self.quota = quota
        self.replies: list[dict[str, Any]] = []
        self.pushes: list[dict[str, Any]] = []
        self.multicasts: list[dict[str, Any]] = []
        self.content: dict[str, bytes] = {}
        self.used_reply_tokens: set[str] = set()
        self._retry_keys: dict[str, str] = {}  # accepted retry key -> its request id
        self._ids = itertools.count(1)
        self.route("POST", "/v2/bot/message/reply", self._reply)
        self.route("POST", "/v2/bot/message/push", self._push)
        self.route("POST", "/v2/bot/message/multicast", self._multicast)
        self.route("GET", "/v2/bot/message/quota", self._quota)
        self.route("GET", "/v2/bot/message/quota/consumption", self._consumption)
        self.route("GET", r"/v2/bot/message/(?P<id>\w+)/content", self._content)

    @property
    def consumption(self) -> int:
        pushed = sum(len(body["to"]) for body in self.multicasts)
        return len(self.pushes) + pushed

    def __call__(self, request: httpx.Request) -> httpx.Response:
        expected = f"Bearer {self.config.channel_access_token.get_secret_value()}"
        if request.headers.get("authorization") != expected:
            self.requests.append(request)
            return line_error(401, "Authentication failed. Confirm that the access token is valid.")
        return super().__call__(request)

    def _sent(self, count: int) -> httpx.Response:
        messages = [{"id": f"{next(self._ids):018d}", "quoteToken": "q"} for _ in range(count)]
        return json_response(200, {"sentMessages": messages})

    def _check_messages(self, body: dict[str, Any]) -> httpx.Response | None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
            return line_error(400, "The request body has 1 error(s)")
        return None

    def _over_quota(self, recipients: int) -> bool:
        return self.quota is not None and self.consumption + recipients > self.quota

    def _retried(self, request: httpx.Request) -> httpx.Response | None:
        """The 409 answer to a retry key accepted before; else None (the key is kept)."""
        key = request.headers.get("x-line-retry-key")
        if key is None:
            return None
        if key in self._retry_keys:
            accepted = {"x-line-accepted-request-id": self._retry_keys[key]}
            return json_response(409, {"message": "The retry key is already accepted"}, **accepted)
        self._retry_keys[key] = f"req-{len(self._retry_keys) + 1}"
        return None

    def _reply(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        token = str(body.get("replyToken", ""))
        if not token or token in self.used_reply_tokens:
            return line_error(400, "Invalid reply token")
        if error := self._check_messages(body):
            return error
        self.used_reply_tokens.add(token)
        self.replies.append(body)
        return self._sent(len(body["messages"]))

    def _push(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if error := self._check_messages(body):
            return error
        if conflict := self._retried(request):
            return conflict
        if self._over_quota(1):
            return line_error(429, "You have reached your monthly limit.")
        self.pushes.append(body)
        return self._sent(len(body["messages"]))

    def _multicast(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        recipients = body.get("to")
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= 500:
            return line_error(400, "The request body has 1 error(s)")
        if error := self._check_messages(body):
            return error
        if conflict := self._retried(request):
            return conflict
        if self._over_quota(len(recipients)):
            return line_error(429, "You have reached your monthly limit.")
        self.multicasts.append(body)
        return json_response(200, {})

    def _quota(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if self.quota is None:
            return json_response(200, {"type": "none"})
        return json_response(200, {"type": "limited", "value": self.quota})

    def _consumption(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return json_response(200, {"totalUsage": self.consumption})

    def _content(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.content.get(match["id"])
        if data is None:
            return line_error(404, "Not found")
        return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
