"""The account features of the WeChat fake: QR codes, menus, user tags, user info and
the typing status, refusing what WeChat refuses with its errcode and errmsg
(docs/wechat.md, "The sandbox"). Mixed into :class:`~chatbridge.wechat.fake.FakeWeChatAPI`.
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from chatbridge.plugin.fake import FakeAPI, Handler, Refused, json_response
from chatbridge.wechat import fake_rules as wechat

_OPENID = re.compile(r"[A-Za-z0-9_-]+")
_OK = {"errcode": 0, "errmsg": "ok"}
#: Typing needs a message from the user this recently, and shows this long.
TYPING_AFTER_MESSAGE = timedelta(seconds=30)
TYPING_SHOWN = 15.0
#: The tag WeChat's own example lists (``tags/get``); ids the fake gives start here.
STAR_TAG = {2: "星标组"}
FIRST_TAG_ID = 100


def refused(errcode: int, errmsg: str) -> Refused:
    return Refused(json_response(200, {"errcode": errcode, "errmsg": errmsg}))


def ok(body: Mapping[str, Any] | None = None) -> httpx.Response:
    return json_response(200, dict(body) if body is not None else _OK)


class AccountFake(FakeAPI):
    """State of one account: QR codes (``qrcodes``: ticket -> scene), the menus
    (``menu``, ``conditional``), tags (``tags``, ``user_tags``), the users it knows
    (:meth:`follow`) and who is shown "typing"."""

    #: Followers per page of ``user/tag/get`` (WeChat: 10,000).
    tag_page_size = 10_000

    def _account_routes(self, authed: Callable[[Handler], Handler]) -> None:
        self.qrcodes: dict[str, int | str] = {}
        self.menu: dict[str, Any] | None = None
        self.conditional: dict[str, dict[str, Any]] = {}
        self.tags: dict[int, str] = dict(STAR_TAG)
        self.user_tags: dict[str, list[int]] = {}
        self.followers: dict[str, dict[str, Any]] = {}
        self.typing: dict[str, float] = {}
        self._tag_ids = itertools.count(FIRST_TAG_ID)
        self._menu_ids = itertools.count(208379533)
        routes: dict[tuple[str, str], Handler] = {
            ("POST", "/cgi-bin/qrcode/create"): self._qr_create,
            ("POST", "/cgi-bin/menu/create"): self._menu_create,
            ("GET", "/cgi-bin/menu/get"): self._menu_get,
            ("GET", "/cgi-bin/menu/delete"): self._menu_delete,
            ("POST", "/cgi-bin/menu/addconditional"): self._menu_add_conditional,
            ("POST", "/cgi-bin/menu/delconditional"): self._menu_del_conditional,
            ("POST", "/cgi-bin/menu/trymatch"): self._menu_try_match,
            ("GET", "/cgi-bin/tags/get"): self._tags_get,
            ("POST", "/cgi-bin/tags/create"): self._tags_create,
            ("POST", "/cgi-bin/tags/update"): self._tags_update,
            ("POST", "/cgi-bin/tags/delete"): self._tags_delete,
            ("POST", "/cgi-bin/tags/members/batchtagging"): self._tags_tag,
            ("POST", "/cgi-bin/tags/members/batchuntagging"): self._tags_untag,
            ("POST", "/cgi-bin/tags/getidlist"): self._tags_of_user,
            ("POST", "/cgi-bin/user/tag/get"): self._tag_members,
            ("GET", "/cgi-bin/user/info"): self._user_info,
            ("POST", "/cgi-bin/user/info/batchget"): self._user_info_batch,
            ("POST", "/cgi-bin/message/custom/typing"): self._typing,
        }
        for (method, path), handler in routes.items():
            self.route(method, path, authed(handler))

    def follow(self, openid: str, scene: int | str | None = None) -> None:
        """``openid`` follows the account now (through the QR code of ``scene``)."""
        self.followers[openid] = {
            "subscribe_time": int(time.time()),
            "subscribe_scene": "ADD_SCENE_QR_CODE" if scene is not None else "ADD_SCENE_SEARCH",
            "qr_scene": scene if isinstance(scene, int) else 0,
            "qr_scene_str": scene if isinstance(scene, str) else "",
        }

    # -- QR codes ---------------------------------------------------------------------

    def _qr_create(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        action = body.get("action_name")
        info = body.get("action_info")
        scene = info.get("scene") if isinstance(info, dict) else None
        if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
            raise refused(40053, "invalid action info")
        if not isinstance(scene, dict):
            raise refused(40053, "invalid action info")
        permanent = action.startswith("QR_LIMIT")
        value = scene.get("scene_str" if action.endswith("STR_SCENE") else "scene_id")
        if action.endswith("STR_SCENE"):
            if not isinstance(value, str) or not 1 <= len(value) <= wechat.QR_SCENE_STR_CHARACTERS:
                raise refused(40035, "invalid parameter: scene_str")
        else:
            top = wechat.QR_SCENE_IDS[permanent]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise refused(40035, "invalid parameter: scene_id")
        ticket = "gQ" + secrets.token_urlsafe(36)
        self.qrcodes[ticket] = value
        answer: dict[str, Any] = {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[-22:]}"}
        if not permanent:
            seconds = body.get("expire_seconds", 30)
            if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
                raise refused(40035, "invalid parameter: expire_seconds")
            answer["expire_seconds"] = min(seconds, wechat.QR_LONGEST_SECONDS)
        return ok(answer)

    # -- menus ------------------------------------------------------------------------

    def _menu_create(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if found := wechat.menu_refusal(body, conditional=False):
            raise refused(*found)
        self.menu = {"button": body["button"]}
        return ok()

    def _menu_get(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if self.menu is None:
            raise refused(46003, "menu no exist")
        answer: dict[str, Any] = {"menu": dict(self.menu)}
        if self.conditional:
            answer["conditionalmenu"] = list(self.conditional.values())
        return ok(answer)

    def _menu_delete(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self.menu = None
        self.conditional.clear()
        return ok()

    def _menu_add_conditional(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        if self.menu is None:
            raise refused(65303, "there is no selfmenu, please create selfmenu first")
        if found := wechat.menu_refusal(body, conditional=True):
            raise refused(*found)
        menuid = str(next(self._menu_ids))
        rule = body["matchrule"]
        self.conditional[menuid] = {"button": body["button"], "matchrule": rule, "menuid": menuid}
        return ok({"menuid": menuid})

    def _menu_del_conditional(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        menuid = self.json_body(request).get("menuid")
        if str(menuid) not in self.conditional:
            raise refused(46003, "menu no exist")
        del self.conditional[str(menuid)]
        return ok()

    def _menu_try_match(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        user = self.json_body(request).get("user_id")
        if not isinstance(user, str) or not user:
            raise refused(40003, "invalid openid")
        if not self._knows(user):
            raise refused(46004, "user not exist")
        if self.menu is None:
            raise refused(46003, "menu no exist")
        held = self.user_tags.get(user) or []
        last_tag = held[-1] if held else None
        for conditional in reversed(self.conditional.values()):  # newest first
            if str(conditional["matchrule"].get("tag_id", "")) == str(last_tag):
                return ok({"button": conditional["button"]})
        return ok({"button": self.menu["button"]})

    # -- tags -------------------------------------------------------------------------

    def _tags_get(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        listed = [{"id": i, "name": n, "count": self._tag_count(i)} for i, n in self.tags.items()]
        return ok({"tags": listed})

    def _tag_name(self, body: Mapping[str, Any], tag_id: int | None = None) -> str:
        tag = body.get("tag")
        name = tag.get("name") if isinstance(tag, dict) else None
        if not isinstance(name, str) or not name:
            raise refused(45157, "invalid tag name")
        if wechat.size(name) > wechat.TAG_NAME_BYTES:
            raise refused(45158, "tag name too long")
        if any(n == name and i != tag_id for i, n in self.tags.items()):
            raise refused(45157, "invalid tag name")
        return name

    def _tag_id(self, body: Mapping[str, Any], key: str = "tagid") -> int:
        tag = body.get("tag")
        tag_id = tag.get("id") if key == "tag" and isinstance(tag, dict) else body.get(key)
        if isinstance(tag_id, str) and tag_id.isdigit():
            tag_id = int(tag_id)
        if isinstance(tag_id, bool) or not isinstance(tag_id, int) or tag_id not in self.tags:
            if tag_id in wechat.SYSTEM_TAGS:
                raise refused(45058, "can't modify sys tag")
            raise refused(45159, "invalid tag id")
        return tag_id

    def _tags_create(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        name = self._tag_name(body)
        if len(self.tags) - len(STAR_TAG) >= wechat.ACCOUNT_TAGS:
            raise refused(45056, "too many tags")
        tag_id = next(self._tag_ids)
        self.tags[tag_id] = name
        return ok({"tag": {"id": tag_id, "name": name}})

    def _tags_update(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        tag_id = self._mutable(body)
        self.tags[tag_id] = self._tag_name(body, tag_id)
        return ok()

    def _tags_delete(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        tag_id = self._mutable(self.json_body(request))
        if self._tag_count(tag_id) > 100_000:
            raise refused(45057, "too many fans in this tag")
        del self.tags[tag_id]
        for held in self.user_tags.values():
            if tag_id in held:
                held.remove(tag_id)
        return ok()

    def _mutable(self, body: Mapping[str, Any]) -> int:
        tag = body.get("tag")
        if isinstance(tag, dict) and tag.get("id") in wechat.SYSTEM_TAGS:
            raise refused(45058, "can't modify sys tag")
        return self._tag_id(body, "tag")

    def _batch(self, body: Mapping[str, Any]) -> tuple[int, list[str]]:
        openids = body.get("openid_list")
        if not isinstance(openids, list) or not 1 <= len(openids) <= wechat.OPENIDS_PER_BATCH:
            raise refused(40032, "invalid openid list size")
        tag_id = self._tag_id(body)
        for openid in openids:
            if not isinstance(openid, str) or not _OPENID.fullmatch(openid):
                raise refused(40003, "invalid openid")
        return tag_id, openids

    def _tags_tag(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        tag_id, openids = self._batch(self.json_body(request))
        for openid in openids:
            held = self.user_tags.get(openid, [])
            if tag_id not in held and len(held) >= wechat.TAGS_PER_USER:
                raise refused(45059, "tag number of user exceed limit")
        for openid in openids:
            held = self.user_tags.setdefault(openid, [])
            if tag_id in held:
                held.remove(tag_id)
            held.append(tag_id)  # the last tag put on a user is last
        return ok()

    def _tags_untag(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        tag_id, openids = self._batch(self.json_body(request))
        for openid in openids:
            if tag_id in self.user_tags.get(openid, []):
                self.user_tags[openid].remove(tag_id)
        return ok()

    def _tags_of_user(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        openid = self._openid(self.json_body(request).get("openid"))
        return ok({"tagid_list": list(self.user_tags.get(openid, []))})

    def _tag_members(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        tag_id = self._tag_id(body)
        members = sorted(o for o, held in self.user_tags.items() if tag_id in held)
        after = body.get("next_openid") or ""
        start = members.index(after) + 1 if after in members else 0
        page = members[start : start + self.tag_page_size]
        if not page:
            return ok({"count": 0, "next_openid": ""})
        return ok({"count": len(page), "data": {"openid": page}, "next_openid": page[-1]})

    def _tag_count(self, tag_id: int) -> int:
        return sum(tag_id in held for held in self.user_tags.values())

    # -- users ------------------------------------------------------------------------

    def _openid(self, openid: object) -> str:
        if not isinstance(openid, str) or not _OPENID.fullmatch(openid):
            raise refused(40003, "invalid openid")
        return openid

    def _knows(self, openid: str) -> bool:
        return openid in self.followers or self.wrote(openid)

    def _user_info(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        params = request.url.params
        return ok(self._info(params.get("openid"), params.get("lang", "zh_CN")))

    def _user_info_batch(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        users = self.json_body(request).get("user_list")
        if not isinstance(users, list) or not 1 <= len(users) <= wechat.USERS_PER_BATCH:
            raise refused(40032, "invalid openid list size")
        if not all(isinstance(user, dict) for user in users):
            raise refused(40003, "invalid openid")
        found = [self._info(user.get("openid"), user.get("lang", "zh_CN")) for user in users]
        return ok({"user_info_list": found})

    def _info(self, openid: object, lang: object) -> dict[str, Any]:
        openid = self._openid(openid)
        if lang not in ("zh_CN", "zh_TW", "en"):
            raise refused(40035, "invalid parameter: lang")
        if not self._knows(openid):
            return {"subscribe": 0, "openid": openid}
        followed = self.followers.get(openid) or {
            "subscribe_time": int(time.time()),
            "subscribe_scene": "ADD_SCENE_SEARCH",
            "qr_scene": 0,
            "qr_scene_str": "",
        }
        info = {
            "subscribe": 1,
            "openid": openid,
            "remark": "",
            "groupid": 0,
            "tagid_list": list(self.user_tags.get(openid, [])),
            **followed,
        }
        return info

    # -- typing -----------------------------------------------------------------------

    def _typing(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        openid = self._openid(body.get("touser"))
        command = body.get("command")
        if command not in ("Typing", "CancelTyping"):
            raise refused(45072, "command invalid")
        if command == "CancelTyping":
            self.typing.pop(openid, None)
            return ok()
        if self.window is not None:
            wrote = self._last_customer_message.get(self.address(openid))
            if wrote is None or datetime.now(UTC) - wrote > TYPING_AFTER_MESSAGE:
                raise refused(45080, "need sending message to user first")
        if self.typing.get(openid, 0.0) > time.monotonic():
            raise refused(45081, "already in typing state")
        self.typing[openid] = time.monotonic() + TYPING_SHOWN
        return ok()
