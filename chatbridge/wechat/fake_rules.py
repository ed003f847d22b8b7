"""The limits the WeChat fake refuses by, stated here apart from the client's (menu.py,
qrcode.py, tags.py): the sandbox is a second reading of WeChat's pages (sourced in
docs/wechat.md), so that a wrong limit in the client shows up as a refusal in the tests
rather than being agreed with."""

from __future__ import annotations

from typing import Any

#: QR codes: temporary codes live at most 30 days; scene ids and strings.
QR_LONGEST_SECONDS = 30 * 24 * 3600
QR_SCENE_IDS = {False: 2**32 - 1, True: 100_000}  # by "permanent"
QR_SCENE_STR_CHARACTERS = 64

#: User tags: per account, name bytes, WeChat's own ids, OpenIDs per batch, per user.
ACCOUNT_TAGS = 100
TAG_NAME_BYTES = 30
SYSTEM_TAGS = {0, 1, 2}
OPENIDS_PER_BATCH = 50
TAGS_PER_USER = 20
#: Users per ``user/info/batchget``.
USERS_PER_BATCH = 100

#: Menus: (buttons allowed, name bytes) at the top and in a submenu; what each
#: button type needs (field, bytes) and the errcode pairs (top, sub) WeChat answers.
MENU_LEVELS = ((3, 16), (5, 60))
_KEY, _URL = ("key", 128), ("url", 1024)
BUTTON_NEEDS: dict[str, tuple[str, int] | None] = {
    "click": _KEY,
    "scancode_push": _KEY,
    "scancode_waitmsg": _KEY,
    "pic_sysphoto": _KEY,
    "pic_photo_or_album": _KEY,
    "pic_weixin": _KEY,
    "location_select": _KEY,
    "view": _URL,
    "miniprogram": _URL,
    "media_id": ("media_id", 0),
    "view_limited": ("media_id", 0),
    "article_id": None,
    "article_view_limited": None,
}
MENU_ERRORS = {
    "size": ((40016, "invalid button size"), (40023, "invalid sub button size")),
    "type": ((40017, "invalid button type"), (40024, "invalid sub button type")),
    "name": ((40018, "invalid button name size"), (40025, "invalid sub button name size")),
    "key": ((40019, "invalid button key size"), (40026, "invalid sub button key size")),
    "url": ((40020, "invalid button url size"), (40027, "invalid sub button url size")),
    "media_id": ((40007, "invalid media_id"), (40007, "invalid media_id")),
}
PRIVATE_MATCH_FIELDS = {"sex", "country", "province", "city", "language"}


def size(text: str) -> int:
    """WeChat counts names, keys and URLs in UTF-8 bytes."""
    return len(text.encode())


def menu_refusal(body: Any, conditional: bool) -> tuple[int, str] | None:
    """The (errcode, errmsg) WeChat answers a menu it refuses, or None."""
    refusal = _buttons(body.get("button") if isinstance(body, dict) else None, 0)
    if refusal or not conditional:
        return refusal
    rule = body.get("matchrule")
    given = rule.items() if isinstance(rule, dict) else ()
    fields = {field for field, value in given if value not in ("", None)}
    if not fields:
        return 65304, "match rule empty"
    if fields & PRIVATE_MATCH_FIELDS:
        return 65320, "invalid match rule: privacy data is no longer supported"
    return None


def _buttons(buttons: Any, level: int) -> tuple[int, str] | None:
    most, name_bytes = MENU_LEVELS[level]
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= most:
        return MENU_ERRORS["size"][level]
    for button in buttons:
        if not isinstance(button, dict):
            return MENU_ERRORS["type"][level]
        name = button.get("name")
        if not isinstance(name, str) or not 0 < size(name) <= name_bytes:
            return MENU_ERRORS["name"][level]
        if button.get("sub_button"):
            if level == 1:
                return 40022, "invalid sub button level"
            refusal = _buttons(button["sub_button"], 1)
        else:
            refusal = _action(button, level)
        if refusal:
            return refusal
    return None


def _action(button: dict[str, Any], level: int) -> tuple[int, str] | None:
    kind = button.get("type")
    if kind not in BUTTON_NEEDS:
        return MENU_ERRORS["type"][level]
    need = BUTTON_NEEDS[kind]
    if need is None:
        return None
    field, most = need
    value = button.get(field)
    if not isinstance(value, str) or not value or (most and size(value) > most):
        return MENU_ERRORS[field][level]
    return None
