"""A loopback imitation of the WeChat Official Account APIs chatbridge calls: access
token, customer-service and template messages, temporary media, and the account
features of ``fake_account.py`` (QR codes, menus, tags, user info, typing); refused
with WeChat's errcodes (HTTP 200, ``{"errcode", "errmsg"}``; docs/wechat.md, "The
sandbox")."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from chatbridge.plugin.fake import Handler, Refused, json_response, parse_multipart
from chatbridge.wechat.channel import WeChatChannel, WeChatConfig
from chatbridge.wechat.fake_account import AccountFake

TOKEN_LIFETIME = 7200  # seconds ("expires_in": 7200)
CLIENT_MSG_ID_TTL = WeChatChannel.idempotency_ttl.total_seconds()
#: Customer-service message types (msgtype), and those that carry an uploaded media_id
CUSTOM_TYPES = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "music",
        "news",
        "mpnews",
        "mpnewsarticle",
        "msgmenu",
        "wxcard",
        "miniprogrampage",
    }
)
MEDIA_TYPES = frozenset({"image", "voice", "video"})
_OPENID = re.compile(r"[A-Za-z0-9_-]+")


def wechat_error(errcode: int, errmsg: str) -> httpx.Response:
    """A WeChat error: HTTP 200 with a non-zero errcode, as the real API answers."""
    return json_response(200, {"errcode": errcode, "errmsg": errmsg})


def refused(errcode: int, errmsg: str) -> Refused:
    return Refused(wechat_error(errcode, errmsg))


class FakeWeChatAPI(AccountFake):
    """Issues access tokens for the configured appid/secret (valid for two hours),
    accepts messages (``sent``, ``templates``) and stores media. :meth:`expire_tokens`
    expires the tokens issued so far.

    With a window (the sandbox), messages go only to customers who wrote (WeChat's
    43004 "require subscribe" for templates, 45015 past the window for the rest)."""

    hosts = ("api.weixin.qq.com",)

    def __init__(self, config: WeChatConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, object]] = []
        self.templates: list[dict[str, object]] = []
        self.media: dict[str, bytes] = {}
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}  # token -> when it expires (monotonic)
        self._ids = itertools.count(1)
        self._once: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.route("GET", "/cgi-bin/token", self._token)
        self.route("POST", "/cgi-bin/message/custom/send", self._authed(self._custom))
        self.route("POST", "/cgi-bin/message/template/send", self._authed(self._template))
        self.route("POST", "/cgi-bin/media/upload", self._authed(self._upload))
        self.route("GET", "/cgi-bin/media/get", self._authed(self._download))
        self._account_routes(self._authed)

    def expire_tokens(self) -> None:
        self._tokens = dict.fromkeys(self._tokens, 0.0)

    def unreadable(self, request: httpx.Request) -> httpx.Response:
        return wechat_error(47001, "data format error")

    def _authed(self, handler: Handler) -> Handler:
        def check(request: httpx.Request, match: re.Match[str]) -> httpx.Response:
            token = request.url.params.get("access_token")
            if not token:
                raise refused(41001, "access_token missing")
            if token not in self._tokens:
                raise refused(40001, "invalid credential, access_token is invalid or not latest")
            if self._tokens[token] <= time.monotonic():
                raise refused(42001, "access_token expired")
            return handler(request, match)

        return check

    def _token(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        params = request.url.params
        if params.get("grant_type") != "client_credential":
            raise refused(40002, "invalid grant_type")
        if params.get("appid") != self.config.app_id:
            raise refused(40013, "invalid appid")
        if params.get("secret") != self.config.app_secret.get_secret_value():
            raise refused(40125, "invalid appsecret")
        self.tokens_issued += 1
        token = f"FAKE-TOKEN-{self.tokens_issued}"
        self._tokens[token] = time.monotonic() + TOKEN_LIFETIME
        return json_response(200, {"access_token": token, "expires_in": TOKEN_LIFETIME})

    def _recipient(self, body: Mapping[str, Any]) -> str:
        touser = body.get("touser")
        if not isinstance(touser, str) or not _OPENID.fullmatch(touser):
            raise refused(40003, "invalid openid")
        return touser

    def _custom(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        touser = self._recipient(body)
        kind = body.get("msgtype")
        content = body.get(str(kind))
        if kind not in CUSTOM_TYPES or not isinstance(content, dict):
            raise refused(40008, "invalid message type")
        if kind == "text" and not content.get("content"):
            raise refused(44004, "empty content")
        if kind in MEDIA_TYPES and content.get("media_id") not in self.media:
            raise refused(40007, "invalid media_id")
        if self.window_closed(touser):
            raise refused(45015, "response out of time limit or subscription is canceled")
        self.sent.append(body)
        return json_response(200, {"errcode": 0, "errmsg": "ok"})

    def _template(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        touser = self._recipient(body)
        if not body.get("template_id"):
            raise refused(40037, "invalid template_id")
        if not isinstance(body.get("data"), dict):
            raise refused(47003, "argument invalid! data is empty")
        if self.window is not None and not self.wrote(touser):
            raise refused(43004, "require subscribe")
        key = (touser, str(body.get("client_msg_id") or ""))
        if key[1] and key in self._once and time.monotonic() < self._once[key][0]:
            return json_response(200, self._once[key][1])  # sent once already
        self.templates.append(body)
        msgid = 200000 + next(self._ids)
        self.accepted(str(msgid), touser)
        answer = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        if key[1]:
            self._once[key] = (time.monotonic() + CLIENT_MSG_ID_TTL, answer)
        return json_response(200, answer)

    def _upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        part = parse_multipart(request).get("media")
        if part is None:
            raise refused(41005, "media data missing")
        media_id = f"FAKE_MEDIA_{next(self._ids)}"
        self.media[media_id] = part.data
        kind = request.url.params.get("type")
        return json_response(200, {"type": kind, "media_id": media_id, "created_at": 1767225600})

    def _download(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.media.get(request.url.params.get("media_id", ""))
        if data is None:
            raise refused(40007, "invalid media_id")
        return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
