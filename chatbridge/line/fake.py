"""A loopback imitation of the LINE Messaging API: reply, push and multicast (their
message objects, recipients, limits, single-use reply tokens and X-Line-Retry-Key),
profiles, the loading animation, rich menus and their aliases, quota endpoints, and
message content and rich menu images on the data host; refused with LINE's statuses
and error bodies (docs/line.md, "The sandbox")."""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

import httpx

from chatbridge.line.channel import LineConfig
from chatbridge.line.fake_rules import (
    ALIAS_ID,
    ALIASES_MAX,
    MENU_ID,
    MULTICAST_MAX,
    NO_IMAGE,
    NOT_A_USER,
    RECIPIENT,
    RICH_MENUS_MAX,
    USER,
    UUID,
    check_image,
    check_loading,
    check_messages,
    detail,
    invalid,
    invalid_property,
    line_error,
    menu_errors,
    missing,
    refused,
)
from chatbridge.plugin.fake import FakeAPI, Refused, json_response


class FakeLineAPI(FakeAPI):
    """``replies``, ``pushes`` and ``multicasts`` hold accepted bodies; ``content`` maps a
    message id to the bytes the data API serves; ``quota`` is the plan's limit.

    Every response carries ``X-Line-Request-Id`` (``req-1``, ``req-2``...). Users who
    wrote (:meth:`customer_wrote`, or a webhook event from them) have a profile, with
    the fields of ``profiles[user]`` when set. ``loading`` holds accepted loading
    animation bodies; ``rich_menus``, ``rich_menu_images``, ``default_rich_menu``,
    ``user_rich_menus`` and ``aliases`` the rich menu state."""

    hosts = ("api.line.me", "api-data.line.me")

    def __init__(
        self,
        config: LineConfig,
        quota: int | None = 200,
        content: Mapping[str, bytes] | None = None,
        *,
        issued_tokens_only: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.quota = quota
        #: Refuse reply tokens no webhook issued (:meth:`webhook_sent`), as LINE does;
        #: off, any unused token is accepted (tests that make up their own).
        self.issued_tokens_only = issued_tokens_only
        self.issued_reply_tokens: set[str] = set()
        self.replies: list[dict[str, Any]] = []
        self.pushes: list[dict[str, Any]] = []
        self.multicasts: list[dict[str, Any]] = []
        self.content: dict[str, bytes] = dict(content or {})
        self.used_reply_tokens: set[str] = set()
        self._retry_keys: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> id, answer
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self._request_id = ""  # the one being answered
        self.profiles: dict[str, dict[str, str]] = {}
        self.loading: list[dict[str, Any]] = []
        self.rich_menus: dict[str, dict[str, Any]] = {}
        self.rich_menu_images: dict[str, tuple[bytes, str]] = {}
        self.default_rich_menu: str | None = None
        self.user_rich_menus: dict[str, str] = {}
        self.aliases: dict[str, str] = {}
        self.route("POST", "/v2/bot/message/reply", self._reply)
        self.route("POST", "/v2/bot/message/push", self._push)
        self.route("POST", "/v2/bot/message/multicast", self._multicast)
        self.route("GET", "/v2/bot/message/quota", self._quota)
        self.route("GET", "/v2/bot/message/quota/consumption", self._consumption)
        self.route("GET", r"/v2/bot/message/(?P<id>\w+)/content", self._content)
        self.route("GET", r"/v2/bot/profile/(?P<user>\w+)", self._profile)
        self.route("POST", "/v2/bot/chat/loading/start", self._loading)
        self._rich_menu_routes()

    @property
    def consumption(self) -> int:
        pushed = sum(len(body["to"]) for body in self.multicasts)
        return len(self.pushes) + pushed

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self._request_id = f"req-{next(self._request_ids)}"
        response = super().__call__(request)
        response.headers["x-line-request-id"] = self._request_id
        return response

    def authorize(self, request: httpx.Request) -> None:
        expected = f"Bearer {self.config.channel_access_token.get_secret_value()}"
        if request.headers.get("authorization") != expected:
            message = (
                "Authentication failed due to the following reason: invalid token. "
                "Confirm that the access token in the authorization header is valid."
            )
            raise refused(401, message)

    def unknown(self, request: httpx.Request) -> httpx.Response:
        return line_error(404, "Not found")

    def unreadable(self, request: httpx.Request) -> httpx.Response:
        return line_error(400, "The request body could not be parsed as JSON (line: 1, column: 1)")

    # -- sends ------------------------------------------------------------------------

    def _sent(self, count: int) -> dict[str, Any]:
        ids = (f"{next(self._ids):018d}" for _ in range(count))
        return {"sentMessages": [{"id": i, "quoteToken": f"q{i}"} for i in ids]}

    def _check_quota(self, recipients: int) -> None:
        """Refused with 429 when sending to ``recipients`` more would pass the quota."""
        if self.quota is not None and self.consumption + recipients > self.quota:
            raise refused(429, "You have reached your monthly limit.")

    def _retry_key(self, request: httpx.Request) -> str | None:
        """The request's X-Line-Retry-Key; Refused with 409 and the first answer when
        that key was accepted before, or 400 when it is no UUID."""
        key: str | None = request.headers.get("x-line-retry-key")
        if key is None:
            return None
        if not UUID.fullmatch(key):
            raise refused(400, "The retry key is not a UUID")
        key = key.lower()
        if key in self._retry_keys:
            request_id, answer = self._retry_keys[key]
            conflict = line_error(409, "The retry key is already accepted", **answer)
            conflict.headers["x-line-accepted-request-id"] = request_id
            raise Refused(conflict)
        return key

    def _accept(self, key: str | None, answer: dict[str, Any]) -> httpx.Response:
        if key is not None:
            self._retry_keys[key] = (self._request_id, answer)
        return json_response(200, answer)

    def _reply(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if "x-line-retry-key" in request.headers:
            raise refused(400, "X-Line-Retry-Key is not supported by this API")
        body = self.json_body(request)
        check_messages(body)
        token = str(body.get("replyToken", ""))
        unknown = self.issued_tokens_only and token not in self.issued_reply_tokens
        if not token or unknown or token in self.used_reply_tokens:
            raise refused(400, "Invalid reply token")
        self.used_reply_tokens.add(token)
        self.replies.append(body)
        return json_response(200, self._sent(len(body["messages"])))

    def _push(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if empty := missing(body, "to"):
            raise invalid([empty])
        if not RECIPIENT.fullmatch(body["to"]):
            raise invalid_property("to")
        check_messages(body)
        key = self._retry_key(request)
        self._check_quota(1)
        self.pushes.append(body)
        return self._accept(key, self._sent(len(body["messages"])))

    def _multicast(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        recipients = body.get("to")
        if not isinstance(recipients, list) or not 1 <= len(recipients) <= MULTICAST_MAX:
            raise invalid([detail(f"Size must be between 1 and {MULTICAST_MAX}", "to")])
        for index, recipient in enumerate(recipients):  # user ids only
            if not isinstance(recipient, str) or not USER.fullmatch(recipient):
                raise invalid_property(f"to[{index}]")
        check_messages(body)
        key = self._retry_key(request)
        self._check_quota(len(recipients))
        self.multicasts.append(body)
        return self._accept(key, {})

    def webhook_sent(self, body: bytes) -> None:
        """Note the reply tokens LINE issued with a webhook, and who wrote."""
        try:
            events = json.loads(body).get("events", [])
        except (ValueError, AttributeError, RecursionError):
            return
        for event in events if isinstance(events, list) else []:
            if not isinstance(event, dict):
                continue
            if isinstance(token := event.get("replyToken"), str):
                self.issued_reply_tokens.add(token)
            source = event.get("source")
            if isinstance(source, dict) and isinstance(user := source.get("userId"), str):
                self.customer_wrote(user)

    # -- reads ------------------------------------------------------------------------

    def _profile(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        user = self._user(match["user"])
        if not self.wrote(user):
            raise refused(404, "Not found")
        profile = {"displayName": f"Customer {user[-4:]}", **self.profiles.get(user, {})}
        return json_response(200, {**profile, "userId": user})

    def _quota(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if self.quota is None:
            return json_response(200, {"type": "none"})
        return json_response(200, {"type": "limited", "value": self.quota})

    def _consumption(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return json_response(200, {"totalUsage": self.consumption})

    def _loading(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        check_loading(body)
        self.loading.append(body)
        return json_response(202, {})

    # -- rich menus -------------------------------------------------------------------

    def _rich_menu_routes(self) -> None:
        menu, user, alias = r"(?P<id>[\w-]+)", r"(?P<user>\w+)", r"(?P<alias>[\w-]+)"
        self.route("POST", "/v2/bot/richmenu", self._create_menu)
        self.route("GET", "/v2/bot/richmenu/list", self._list_menus)
        self.route("POST", "/v2/bot/richmenu/alias", self._create_alias)
        self.route("GET", "/v2/bot/richmenu/alias/list", self._list_aliases)
        self.route("GET", f"/v2/bot/richmenu/alias/{alias}", self._get_alias)
        self.route("POST", f"/v2/bot/richmenu/alias/{alias}", self._update_alias)
        self.route("DELETE", f"/v2/bot/richmenu/alias/{alias}", self._delete_alias)
        self.route("GET", f"/v2/bot/richmenu/{menu}", self._get_menu)
        self.route("DELETE", f"/v2/bot/richmenu/{menu}", self._delete_menu)
        self.route("POST", f"/v2/bot/richmenu/{menu}/content", self._upload_image)
        self.route("GET", f"/v2/bot/richmenu/{menu}/content", self._download_image)
        self.route("POST", f"/v2/bot/user/all/richmenu/{menu}", self._set_default)
        self.route("GET", "/v2/bot/user/all/richmenu", self._get_default)
        self.route("DELETE", "/v2/bot/user/all/richmenu", self._clear_default)
        self.route("POST", f"/v2/bot/user/{user}/richmenu/{menu}", self._link)
        self.route("GET", f"/v2/bot/user/{user}/richmenu", self._user_menu)
        self.route("DELETE", f"/v2/bot/user/{user}/richmenu", self._unlink)

    def _menu(self, rich_menu_id: str) -> dict[str, Any]:
        if rich_menu_id not in self.rich_menus:
            raise refused(404, "Not found")
        return self.rich_menus[rich_menu_id]

    def _create_menu(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        details = menu_errors(body)
        if details:
            raise invalid(details)
        if len(self.rich_menus) >= RICH_MENUS_MAX:
            raise refused(400, "The number of rich menus has reached the upper limit")
        rich_menu_id = f"richmenu-{secrets.token_hex(16)}"
        self.rich_menus[rich_menu_id] = {"richMenuId": rich_menu_id, **body}
        return json_response(200, {"richMenuId": rich_menu_id})

    def _list_menus(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return json_response(200, {"richmenus": list(self.rich_menus.values())})

    def _get_menu(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return json_response(200, self._menu(match["id"]))

    def _delete_menu(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._menu(match["id"])
        del self.rich_menus[match["id"]]
        self.rich_menu_images.pop(match["id"], None)
        if self.default_rich_menu == match["id"]:
            self.default_rich_menu = None
        self.user_rich_menus = {u: m for u, m in self.user_rich_menus.items() if m != match["id"]}
        return json_response(200, {})

    def _upload_image(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if request.url.host == "api.line.me":  # uploads go to api-data.line.me
            raise refused(404, "Not found")
        self._menu(match["id"])
        if match["id"] in self.rich_menu_images:
            raise refused(400, "An image has already been uploaded to the richmenu")
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        check_image(request.content, content_type)
        self.rich_menu_images[match["id"]] = (request.content, content_type)
        return json_response(200, {})

    def _download_image(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._menu(match["id"])
        if match["id"] not in self.rich_menu_images:
            raise refused(404, "Not found")
        data, content_type = self.rich_menu_images[match["id"]]
        return httpx.Response(200, content=data, headers={"content-type": content_type})

    def _applicable(self, rich_menu_id: str) -> None:
        self._menu(rich_menu_id)
        if rich_menu_id not in self.rich_menu_images:
            raise refused(400, NO_IMAGE, details=[])

    def _set_default(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._applicable(match["id"])
        self.default_rich_menu = match["id"]
        return json_response(200, {})

    def _get_default(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if self.default_rich_menu is None:
            raise refused(404, "no default richmenu", details=[])
        return json_response(200, {"richMenuId": self.default_rich_menu})

    def _clear_default(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self.default_rich_menu = None
        return json_response(200, {})

    def _user(self, user: str) -> str:
        if not USER.fullmatch(user):
            raise refused(400, NOT_A_USER)
        return user

    def _link(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        user = self._user(match["user"])
        self._applicable(match["id"])
        self.user_rich_menus[user] = match["id"]
        return json_response(200, {})

    def _user_menu(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        user = self._user(match["user"])
        if user not in self.user_rich_menus:
            raise refused(404, "the user has no richmenu", details=[])
        return json_response(200, {"richMenuId": self.user_rich_menus[user]})

    def _unlink(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self.user_rich_menus.pop(self._user(match["user"]), None)
        return json_response(200, {})

    def _create_alias(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        alias = body.get("richMenuAliasId")
        details = []
        if not isinstance(alias, str) or not ALIAS_ID.fullmatch(alias):
            shape = "must be 1 to 32 characters of a-z, 0-9, _ and -"
            details.append(detail(shape, "richMenuAliasId"))
        menu = self._alias_target(body, details)
        assert isinstance(alias, str)
        if alias in self.aliases:
            raise refused(400, "conflict richmenu alias id", details=[])
        if len(self.aliases) >= ALIASES_MAX:
            raise refused(400, "The number of rich menu aliases has reached the upper limit")
        self.aliases[alias] = menu
        return json_response(200, {})

    def _alias_target(self, body: Mapping[str, Any], details: list[dict[str, str]]) -> str:
        """The rich menu an alias request names, refused as "Create rich menu alias"
        says: a malformed id in the details, an unknown or imageless menu "not found"."""
        menu = body.get("richMenuId")
        if not isinstance(menu, str) or not MENU_ID.fullmatch(menu):
            details.append(detail("invalid richMenuId", "richMenuId"))
        if details:
            raise invalid(details)
        assert isinstance(menu, str)
        if menu not in self.rich_menu_images:  # unknown, or without its image
            raise refused(400, "richmenu not found", details=[])
        return menu

    def _alias(self, alias: str) -> str:
        if alias not in self.aliases:
            raise refused(404, "richmenu alias not found", details=[])
        return self.aliases[alias]

    def _get_alias(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        menu = self._alias(match["alias"])
        return json_response(200, {"richMenuAliasId": match["alias"], "richMenuId": menu})

    def _update_alias(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._alias(match["alias"])
        self.aliases[match["alias"]] = self._alias_target(self.json_body(request), [])
        return json_response(200, {})

    def _delete_alias(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._alias(match["alias"])
        del self.aliases[match["alias"]]
        return json_response(200, {})

    def _list_aliases(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        aliases = [{"richMenuAliasId": a, "richMenuId": m} for a, m in self.aliases.items()]
        return json_response(200, {"aliases": aliases})

    def _content(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        data = self.content.get(match["id"])
        if data is None:
            raise refused(404, "not found")
        return httpx.Response(200, content=data, headers={"content-type": "image/jpeg"})
