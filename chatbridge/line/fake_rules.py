"""LINE's request rules and error bodies as the sandbox (:mod:`chatbridge.line.fake`)
reads them from the Messaging API reference (docs/line.md, "The sandbox").

Written apart from the client's constants (``outbound``, ``profile``, ``richmenu``), so
that a client constant read wrong is refused here, in the tests, not by LINE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from chatbridge.line.richmenu import image_size
from chatbridge.plugin.fake import Refused, json_response

#: Message object types ("Message objects"; an unknown one is refused).
TYPES = ("text", "sticker", "image", "video", "audio", "location", "imagemap", "template", "flex")
TEXT_MAX = 5000
#: Message objects per request, and user ids per multicast ("Send multicast message").
MESSAGES_MAX = 5
MULTICAST_MAX = 500
#: A user (U), group (C) or room (R) id: a letter and 32 hex digits.
RECIPIENT = re.compile(r"[UCR][0-9a-f]{32}")
USER = re.compile(r"U[0-9a-f]{32}")
#: X-Line-Retry-Key: "a hexadecimal UUID", e.g. 123e4567-e89b-12d3-a456-426614174000
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: "Display a loading animation": 5, 10, ... 60 seconds.
LOADING_MIN, LOADING_MAX, LOADING_STEP = 5, 60, 5
#: "Rich menu object" and "Create rich menu" / "Create rich menu alias" (per account).
NAME_MAX, CHAT_BAR_TEXT_MAX, AREAS_MAX = 300, 14, 20
RICH_MENUS_MAX = ALIASES_MAX = 1000
#: "Create rich menu alias": "a-z, 0-9, _ and -", at most 32 characters.
ALIAS_ID = re.compile(r"[a-z0-9_-]{1,32}")
#: The ids the sandbox gives rich menus ("richmenu-" and 32 hex digits, as LINE's).
MENU_ID = re.compile(r"richmenu-[0-9a-f]{32}")
#: "Upload rich menu image": JPEG or PNG, 800 to 2500 pixels wide, at least 250 high,
#: width / height at least 1.45, at most 1 MB. (The size is read from the file's header
#: with the client's reader: a file format, not a LINE rule.)
IMAGE_TYPES = ("image/jpeg", "image/png")
IMAGE_WIDTH_MIN, IMAGE_WIDTH_MAX, IMAGE_HEIGHT_MIN, IMAGE_RATIO_MIN = 800, 2500, 250, 1.45
IMAGE_BYTES_MAX = 1024 * 1024
IMAGE_REFUSED = "The image size is not allowed for richmenu"
NO_IMAGE = "must upload richmenu image before applying it to user"
NOT_A_USER = "The value for the 'userId' parameter is invalid"
ONLY_USERS = (
    "Only user id is acceptable, please confirm if there are any group/room ids or illegal ids."
)


def line_error(status: int, message: str, **extra: Any) -> httpx.Response:
    """LINE's error body ("Error responses")."""
    return json_response(status, {"message": message, **extra})


def refused(status: int, message: str, **extra: Any) -> Refused:
    return Refused(line_error(status, message, **extra))


def invalid(details: list[dict[str, str]]) -> Refused:
    """400 "The request body has N error(s)" with a detail per wrong property."""
    return refused(400, f"The request body has {len(details)} error(s)", details=details)


def invalid_property(name: str) -> Refused:
    text = f"The property, {name}, in the request body is invalid (line: -, column: -)"
    return refused(400, text)


def detail(message: str, name: str) -> dict[str, str]:
    return {"message": message, "property": name}


def missing(body: Mapping[str, Any], name: str) -> dict[str, str] | None:
    """The detail of a required string property absent ("must be specified") or
    empty ("May not be empty"); None when it is there."""
    value = body.get(name)
    if value is None:
        return detail("must be specified", name)
    return None if isinstance(value, str) and value else detail("May not be empty", name)


def check_messages(body: Mapping[str, Any]) -> None:
    """Refused unless ``body["messages"]`` holds 1 to 5 well-formed message objects."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MESSAGES_MAX:
        raise invalid([detail(f"Size must be between 1 and {MESSAGES_MAX}", "messages")])
    details = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in TYPES:
            values = f"Must be one of the following values: [{', '.join(TYPES)}]"
            details.append(detail(values, f"{where}.type"))
        elif kind == "text" and (empty := missing(message, "text")):
            details.append(detail(empty["message"], f"{where}.text"))
        elif kind == "text" and len(message["text"]) > TEXT_MAX:
            details.append(detail(f"Length must be between 0 and {TEXT_MAX}", f"{where}.text"))
    if details:
        raise invalid(details)


def check_loading(body: Mapping[str, Any]) -> None:
    """Refused unless ``body`` is a loading animation request for one user."""
    details = []
    if empty := missing(body, "chatId"):
        details.append(empty)
    elif not USER.fullmatch(body["chatId"]):  # a group, a room or no id at all
        details.append(detail(ONLY_USERS, "chatId"))
    seconds = body.get("loadingSeconds")  # optional
    if seconds is not None:
        number = type(seconds) is int
        if not number or not LOADING_MIN <= seconds <= LOADING_MAX:
            between = f"Must be between {LOADING_MIN} and {LOADING_MAX}"
            details.append(detail(between, "loadingSeconds"))
        if number and seconds % LOADING_STEP:
            details.append(detail("must be a multiple of five", "loadingSeconds"))
    if details:
        raise invalid(details)


def menu_errors(body: Mapping[str, Any]) -> list[dict[str, str]]:
    """The details LINE gives for a rich menu object breaking its documented limits."""
    details = []
    size = body.get("size")
    if not isinstance(size, dict) or not all(
        type(size.get(k)) is int and size[k] >= 1 for k in ("width", "height")
    ):
        details.append(detail("must be specified", "size"))
    if not isinstance(body.get("selected"), bool):
        details.append(detail("must be specified", "selected"))
    for name, most in (("name", NAME_MAX), ("chatBarText", CHAT_BAR_TEXT_MAX)):
        if empty := missing(body, name):
            details.append(empty)
        elif len(body[name]) > most:
            details.append(detail(f"Length must be between 1 and {most}", name))
    areas = body.get("areas")
    if areas is None:
        details.append(detail("must be specified", "areas"))
    elif not isinstance(areas, list) or len(areas) > AREAS_MAX:
        details.append(detail(f"Size must be between 0 and {AREAS_MAX}", "areas"))
    else:
        for index, area in enumerate(areas):
            for key in ("bounds", "action"):
                value = area.get(key) if isinstance(area, dict) else None
                if not isinstance(value, dict) or (key == "action" and "type" not in value):
                    details.append(detail("must be specified", f"areas[{index}].{key}"))
    return details


def check_image(data: bytes, content_type: str) -> None:
    """Refused unless ``data`` is a rich menu image LINE takes."""
    if content_type not in IMAGE_TYPES:
        raise refused(415, "Unsupported media type")
    size = image_size(data)
    if len(data) > IMAGE_BYTES_MAX or size is None:
        raise refused(400, IMAGE_REFUSED)
    width, height = size
    fits = IMAGE_WIDTH_MIN <= width <= IMAGE_WIDTH_MAX and height >= IMAGE_HEIGHT_MIN
    if not fits or width / height < IMAGE_RATIO_MIN:
        raise refused(400, IMAGE_REFUSED)
