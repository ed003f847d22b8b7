"""LINE rich menus and their aliases: the wire shapes (line-bot-sdk-python's
``RichMenuRequest``, ``RichMenuResponse``, ``CreateRichMenuAliasRequest``...), the
documented image limits, and :class:`RichMenus`, the API calls (docs/line.md,
"Rich menus"). The image goes to the data host (api-data.line.me)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatbridge.errors import MessageInvalidError, ProviderError

if TYPE_CHECKING:
    from chatbridge.line.channel import LineChannel

#: "Upload rich menu image": JPEG or PNG, 800 to 2500 pixels wide, at least 250 high,
#: width / height at least 1.45, at most 1 MB.
IMAGE_TYPES = {"image/jpeg", "image/png"}
IMAGE_MAX_BYTES = 1024 * 1024
IMAGE_WIDTH = (800, 2500)
IMAGE_MIN_HEIGHT = 250
IMAGE_MIN_RATIO = 1.45
#: Rich menu object limits (SDK models: name 300, chatBarText 14, areas 20; alias id
#: 1 to 32 characters); a channel holds at most 1,000 rich menus.
NAME_MAX = 300
CHAT_BAR_TEXT_MAX = 14
AREAS_MAX = 20
#: An alias id (line-bot-sdk-python ``CreateRichMenuAliasRequest``: ``^[a-z0-9_-]{1,32}$``).
ALIAS_ID = r"^[a-z0-9_-]{1,32}$"
RICH_MENUS_MAX = 1000


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class RichMenuSize(_Wire):
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class RichMenuBounds(_Wire):
    """A tappable area, relative to the image's top-left corner."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class RichMenuArea(_Wire):
    """``action`` is a LINE action object (``{"type": "postback", "data": ...}``,
    ``{"type": "richmenuswitch", "richMenuAliasId": ..., "data": ...}``...)."""

    bounds: RichMenuBounds
    action: dict[str, Any]


class RichMenu(_Wire):
    """A rich menu as created (``selected``: shown open by default)."""

    size: RichMenuSize
    selected: bool = False
    name: str = Field(min_length=1, max_length=NAME_MAX)
    chat_bar_text: str = Field(alias="chatBarText", min_length=1, max_length=CHAT_BAR_TEXT_MAX)
    areas: list[RichMenuArea] = Field(max_length=AREAS_MAX)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude={"rich_menu_id"})


class RichMenuInfo(RichMenu):
    """A rich menu as LINE returns it."""

    rich_menu_id: str = Field(alias="richMenuId")


class RichMenuAlias(_Wire):
    rich_menu_alias_id: str = Field(alias="richMenuAliasId", pattern=ALIAS_ID)
    rich_menu_id: str = Field(alias="richMenuId")


class _MenuId(_Wire):
    rich_menu_id: str = Field(alias="richMenuId")


class _Menus(_Wire):
    richmenus: list[RichMenuInfo]


class _Aliases(_Wire):
    aliases: list[RichMenuAlias]


def check_image(data: bytes, content_type: str) -> None:
    """Raise MessageInvalidError unless ``data`` is an image LINE accepts."""
    if content_type not in IMAGE_TYPES:
        raise MessageInvalidError(f"a rich menu image is JPEG or PNG, not {content_type}")
    if len(data) > IMAGE_MAX_BYTES:
        raise MessageInvalidError(f"a rich menu image is at most 1 MB; got {len(data)} bytes")
    size = image_size(data)
    if size is None:
        raise MessageInvalidError("the rich menu image is not a readable JPEG or PNG")
    width, height = size
    if not IMAGE_WIDTH[0] <= width <= IMAGE_WIDTH[1] or height < IMAGE_MIN_HEIGHT:
        raise MessageInvalidError(
            f"a rich menu image is 800 to 2500 pixels wide and at least 250 high; "
            f"got {width}x{height}"
        )
    if width / height < IMAGE_MIN_RATIO:
        raise MessageInvalidError(
            f"a rich menu image's width / height is at least 1.45; got {width}x{height}"
        )


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG, read from its header; None if unreadable."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if not data.startswith(b"\xff\xd8"):
        return None
    index = 2
    while index + 9 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


class RichMenus:
    """The rich menu API of one LINE channel (``LineChannel.rich_menus``)."""

    def __init__(self, channel: LineChannel) -> None:
        self._channel = channel

    # -- menus ------------------------------------------------------------------------

    async def create(self, menu: RichMenu) -> str:
        """Create ``menu``; returns its ``richMenuId``."""
        answer = await self._channel._api("POST", "/v2/bot/richmenu", menu.wire())
        return self._channel._read(answer, _MenuId, "rich menu creation").rich_menu_id

    async def get(self, rich_menu_id: str) -> RichMenuInfo:
        answer = await self._channel._api("GET", f"/v2/bot/richmenu/{_id(rich_menu_id)}")
        return self._channel._read(answer, RichMenuInfo, "rich menu")

    async def menus(self) -> list[RichMenuInfo]:
        """Every rich menu of the channel."""
        answer = await self._channel._api("GET", "/v2/bot/richmenu/list")
        return self._channel._read(answer, _Menus, "rich menu list").richmenus

    async def delete(self, rich_menu_id: str) -> None:
        await self._channel._api("DELETE", f"/v2/bot/richmenu/{_id(rich_menu_id)}")

    async def upload_image(self, rich_menu_id: str, data: bytes, content_type: str) -> None:
        """Attach the image (once: LINE does not replace it; create a new menu)."""
        check_image(data, content_type)
        path = f"/v2/bot/richmenu/{_id(rich_menu_id)}/content"
        await self._channel._api("POST", path, content=data, content_type=content_type)

    async def download_image(self, rich_menu_id: str) -> bytes:
        path = f"/v2/bot/richmenu/{_id(rich_menu_id)}/content"
        return (await self._channel._api("GET", path, data_host=True)).content

    # -- who sees which ---------------------------------------------------------------

    async def set_default(self, rich_menu_id: str) -> None:
        """Show the menu to every user who has none linked."""
        await self._channel._api("POST", f"/v2/bot/user/all/richmenu/{_id(rich_menu_id)}")

    async def default(self) -> str | None:
        """The default rich menu's id (None: no default)."""
        return await self._id_or_none("/v2/bot/user/all/richmenu")

    async def clear_default(self) -> None:
        await self._channel._api("DELETE", "/v2/bot/user/all/richmenu")

    async def link(self, user_id: str, rich_menu_id: str) -> None:
        """Show the menu to one user (it takes precedence over the default)."""
        path = f"/v2/bot/user/{_id(user_id)}/richmenu/{_id(rich_menu_id)}"
        await self._channel._api("POST", path)

    async def unlink(self, user_id: str) -> None:
        await self._channel._api("DELETE", f"/v2/bot/user/{_id(user_id)}/richmenu")

    async def of_user(self, user_id: str) -> str | None:
        """The id of the menu linked to ``user_id`` (None: none linked)."""
        return await self._id_or_none(f"/v2/bot/user/{_id(user_id)}/richmenu")

    # -- aliases ----------------------------------------------------------------------

    async def create_alias(self, alias_id: str, rich_menu_id: str) -> None:
        """Name ``rich_menu_id`` ``alias_id`` (for ``richmenuswitch`` actions)."""
        try:
            alias = RichMenuAlias(rich_menu_alias_id=alias_id, rich_menu_id=rich_menu_id)
        except ValidationError as exc:
            raise MessageInvalidError(f"not a LINE rich menu alias id: {alias_id!r}") from exc
        await self._channel._api("POST", "/v2/bot/richmenu/alias", alias.model_dump(by_alias=True))

    async def update_alias(self, alias_id: str, rich_menu_id: str) -> None:
        path = f"/v2/bot/richmenu/alias/{_id(alias_id)}"
        await self._channel._api("POST", path, {"richMenuId": rich_menu_id})

    async def delete_alias(self, alias_id: str) -> None:
        await self._channel._api("DELETE", f"/v2/bot/richmenu/alias/{_id(alias_id)}")

    async def get_alias(self, alias_id: str) -> RichMenuAlias:
        answer = await self._channel._api("GET", f"/v2/bot/richmenu/alias/{_id(alias_id)}")
        return self._channel._read(answer, RichMenuAlias, "rich menu alias")

    async def aliases(self) -> list[RichMenuAlias]:
        answer = await self._channel._api("GET", "/v2/bot/richmenu/alias/list")
        return self._channel._read(answer, _Aliases, "rich menu alias list").aliases

    async def _id_or_none(self, path: str) -> str | None:
        try:
            answer = await self._channel._api("GET", path)
        except ProviderError as exc:
            if exc.http_status == 404:
                return None
            raise
        return self._channel._read(answer, _MenuId, "rich menu id").rich_menu_id


def _id(value: str) -> str:
    """``value`` checked to be one path segment (ids are letters, digits, - and _)."""
    if not value or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise MessageInvalidError(f"not a LINE id: {value!r}")
    return value
