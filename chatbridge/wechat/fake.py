"""A loopback imitation of the WeChat Official Account APIs chatbridge calls: access
token, customer-service and template messages, temporary media."""

from __future__ import annotations

import itertools
import re

import httpx

from chatbridge.plugin.fake import FakeAPI, Handler, json_response, parse_multipart
from chatbridge.wechat.channel import WeChatConfig


def wechat_error(errcode: int, errmsg: str) -> httpx.Response:
    """A WeChat error: HTTP 200 with a non-zero errcode, as the real API answers."""
    return json_response(200, {"errcode": errcode, "errmsg": errmsg})


class FakeWeChatAPI(FakeAPI):
    """Issues access tokens for the configured appid/secret, accepts messages (``sent``,
    ``templates``) and stores media. :meth:`expire_tokens` invalidates issued tokens."""

    hosts = ("api.weixin.qq.com",)

    def __init__(self, config: WeChatConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, object]] = []
        self.templates: list[dict[str, object]] = []
        self.media: dict[str, bytes] = {}
        self.tokens_issued = 0
        self._valid_tokens: set[str] = set()
        self._ids = itertools.count(1)
        self.route("GET", "/cgi-bin/token", self._token)
        self.route("POST", "/cgi-bin/message/custom/send", self._authed(self._custom))
        self.route("POST", "/cgi-bin/message/template/send", self._authed(self._template))
        self.route("POST", "/cgi-bin/media/upload", self._authed(self._upload))
        self.route("GET", "/cgi-bin/media/get", self._authed(self._download))

    def expire_tokens(self) -> None:
        self._valid_tokens.clear()

    def _authed(self, handler: Handler) -> Handler:
        def check(request: httpx.Request, match: re.Match[str]) -> httpx.Response:
            if request.url.params.get("access_token") not in self._valid_tokens:
                return wechat_error(40001, "invalid credential, access_token is invalid")
            return handler(request, match)

        return check

    def _token(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        params = request.url.params
        if (params.get("appid"), params.get("secret")) != (
            self.config.app_id,
            self.config.app_secret.get_secret_value(),
        ):
            return wechat_error(40125, "invalid appsecret")
        self.tokens_issued += 1
        token = f"FAKE-TOKEN-{self.tokens_issued}"
        self._valid_tokens.add(token)
        return json_response(200, {"access_token": token, "expires_in": 7200})

    def _custom(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if not body.get("touser") or body.get("msgtype") not in body:
            return wechat_error(44002, "empty post data")
        if self.window_closed(str(body["touser"])):
            return wechat_error(45015, "response out of time limit or subscription is canceled")
        self.sent.append(body)
        return json_response(200, {"errcode": 0, "errmsg": "ok"})

    def _template(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if not body.get("touser") or not body.get("template_id"):
            return wechat_error(40037, "invalid template_id")
        self.templates.append(body)
        return json_response(200, {"errcode": 0, "errmsg": "ok", "msgid": 200000 + next(self._ids)})

    def _upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        part = parse_multipart(request).get("media")
        if part is None:
            return wechat_error(41005, "media data missing")
        media_id = f"FAKE_MEDIA_{next(self._ids)}"
        self.media[media_id] = part.data
        kind = request.url.params.get("type")
        return json_response(200, {"type": kind, "media_id": media_id, "created_at": 1767225600})

    def _download(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.media.get(request.url.params.get("media_id", ""))
        if data is None:
            return wechat_error(40007, "invalid media_id")
        return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
