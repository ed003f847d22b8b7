"""The account's custom menu and conditional (personalised) menus ("Custom menus").

One default menu (``menu/create``, ``menu/get``, ``menu/delete``) and any number of
conditional menus shown to the users a ``matchrule`` selects (``menu/addconditional``,
``menu/delconditional``, ``menu/trymatch``); a conditional menu needs the default menu
first, and deleting the menu deletes them all. :func:`problem` holds WeChat's limits,
checked before sending (the sandbox has its own reading, ``fake_rules.py``); the limits
and errcodes are sourced in docs/wechat.md, "Custom menus".
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.errors import ProviderError
from chatbridge.wechat.api import Api, read, refuse, utf8_length

ButtonType = Literal[
    "click",
    "view",
    "miniprogram",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "media_id",
    "view_limited",
    "article_id",
    "article_view_limited",
]
BUTTON_TYPES: frozenset[str] = frozenset(get_args(ButtonType))
#: Types that push an event with the button's ``key``, and what the others need.
KEYED = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
LINKED = frozenset({"view", "miniprogram"})
MEDIA = frozenset({"media_id", "view_limited"})
TOP_BUTTONS, SUB_BUTTONS = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES = 16, 60
KEY_BYTES, URL_BYTES = 128, 1024
#: Matchrule fields WeChat refuses since it stopped matching on private data (65320).
PRIVATE_RULES = frozenset({"sex", "country", "province", "city", "language"})
#: (errcode, errmsg) for a button on the top level and in a submenu.
_CODES = {
    "count": ((40016, "invalid button size"), (40023, "invalid sub button size")),
    "type": ((40017, "invalid button type"), (40024, "invalid sub button type")),
    "name": ((40018, "invalid button name size"), (40025, "invalid sub button name size")),
    "key": ((40019, "invalid button key size"), (40026, "invalid sub button key size")),
    "url": ((40020, "invalid button url size"), (40027, "invalid sub button url size")),
}
Problem = tuple[int, str]


class Button(BaseModel):
    """A menu button: a submenu (``sub_button``, no type) or an action of ``type``
    with what that type needs (``key``, ``url``, ``media_id``, ``appid`` and
    ``pagepath``, ``article_id``)."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: ButtonType | None = None
    key: str | None = None
    url: str | None = None
    media_id: str | None = None
    appid: str | None = None
    pagepath: str | None = None
    article_id: str | None = None
    sub_button: list[Button] = Field(default_factory=list)


class MatchRule(BaseModel):
    """Who sees a conditional menu: users with tag ``tag_id`` (the tag last put on
    them), or on ``client_platform_type`` "1" iOS, "2" Android, "3" others. Rules on
    sex, region and language are shown as WeChat returns them, but refused on create."""

    model_config = ConfigDict(extra="allow")

    tag_id: str | None = None
    client_platform_type: str | None = None


class Menu(BaseModel):
    """A default menu, or a conditional one (``matchrule``, ``menuid``)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    button: list[Button]
    matchrule: MatchRule | None = None
    menuid: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"menuid"})


class MenuSet(BaseModel):
    """The default menu (None when the account has none) and the conditional ones."""

    menu: Menu | None = None
    conditionalmenu: list[Menu] = Field(default_factory=list)


class _Added(BaseModel):
    model_config = ConfigDict(coerce_numbers_to_str=True)

    menuid: str


def problem(body: Any, conditional: bool = False) -> Problem | None:
    """What WeChat answers a menu ``body`` it refuses, or None."""
    buttons = body.get("button") if isinstance(body, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= TOP_BUTTONS:
        return _CODES["count"][0]
    for button in buttons:
        if found := _button_problem(button, sub=False):
            return found
    if conditional:
        rule = body.get("matchrule")
        given = (
            {k for k, v in rule.items() if v not in ("", None)} if isinstance(rule, dict) else ()
        )
        if not given:
            return 65304, "match rule empty"
        if PRIVATE_RULES.intersection(given):
            return 65320, "invalid match rule: privacy data is no longer supported"
    return None


def _button_problem(button: Any, sub: bool) -> Problem | None:
    level = 1 if sub else 0
    if not isinstance(button, dict):
        return _CODES["type"][level]
    name = button.get("name")
    if not isinstance(name, str) or not name:
        return _CODES["name"][level]
    if utf8_length(name) > (SUB_NAME_BYTES if sub else TOP_NAME_BYTES):
        return _CODES["name"][level]
    children = button.get("sub_button") or []
    if not isinstance(children, list):
        return _CODES["count"][1]
    if children:
        if sub:
            return 40022, "invalid sub button level"
        if len(children) > SUB_BUTTONS:
            return _CODES["count"][1]
        for child in children:
            if found := _button_problem(child, sub=True):
                return found
        return None
    return _action_problem(button, level)


def _action_problem(button: dict[str, Any], level: int) -> Problem | None:
    kind = button.get("type")
    if kind not in BUTTON_TYPES:
        return _CODES["type"][level]
    key, url = button.get("key"), button.get("url")
    if kind in KEYED and not (isinstance(key, str) and 0 < utf8_length(key) <= KEY_BYTES):
        return _CODES["key"][level]
    if kind in LINKED and not (isinstance(url, str) and 0 < utf8_length(url) <= URL_BYTES):
        return _CODES["url"][level]
    if kind in MEDIA and not button.get("media_id"):
        return 40007, "invalid media_id"
    return None


def _checked(menu: Menu, conditional: bool) -> dict[str, Any]:
    body = menu.body()
    if found := problem(body, conditional):
        raise refuse(f"WeChat refuses this menu: {found[1]}", found[0])
    return body


class MenuApi:
    """The custom menu API (``channel.menus``)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def create(self, menu: Menu) -> None:
        """Replace the default menu."""
        await self._api("POST", "/cgi-bin/menu/create", json=_checked(menu, False))

    async def get(self) -> MenuSet:
        """The default and conditional menus; an empty :class:`MenuSet` when the account
        has none (WeChat's errcode 46003)."""
        try:
            body = await self._api("GET", "/cgi-bin/menu/get")
        except ProviderError as exc:
            if exc.code == 46003:
                return MenuSet()
            raise
        return read(MenuSet, body, "menu")

    async def delete(self) -> None:
        """Delete the default menu and every conditional menu."""
        await self._api("GET", "/cgi-bin/menu/delete")

    async def add_conditional(self, menu: Menu) -> str:
        """Add a conditional menu (``menu.matchrule`` is required); its menuid."""
        body = _checked(menu, True)
        added = await self._api("POST", "/cgi-bin/menu/addconditional", json=body)
        return read(_Added, added, "conditional menu").menuid

    async def delete_conditional(self, menuid: str) -> None:
        await self._api("POST", "/cgi-bin/menu/delconditional", json={"menuid": menuid})

    async def try_match(self, user_id: str) -> list[Button]:
        """The buttons the user ``user_id`` (an OpenID or WeChat ID) would see."""
        body = await self._api("POST", "/cgi-bin/menu/trymatch", json={"user_id": user_id})
        return read(Menu, body, "menu match").button
