"""QR codes with scene values ("Account management > Generating a parametric QR code")
and the scans that come back with them.

A QR code carries a scene: a number (``scene_id``) or a string (``scene_str``). A user
who scans it and does not follow yet follows the account through it (a ``subscribe``
push whose ``EventKey`` is ``qrscene_<scene>``, with the code's ``Ticket``); one who
follows already gets a ``SCAN`` push whose ``EventKey`` is the scene. chatbridge turns
both into a :class:`~chatbridge.models.ChannelEvent` named ``SCAN`` whose ``data`` has
``scene``, ``ticket`` and ``followed`` (after the ``Followed`` event, for a subscribe);
:meth:`QRScan.of` reads them back typed. Sources: docs/wechat.md, "QR codes".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from chatbridge.models import ChannelEvent, Event, Followed
from chatbridge.wechat.api import Api, read, refuse

#: A temporary code lives at most 30 days; one created without ``expire_seconds``
#: lives 30 seconds.
TEMPORARY_MAX = timedelta(seconds=2_592_000)
#: A temporary ``scene_id`` is a non-zero 32-bit integer (pushes call it unsigned).
TEMPORARY_SCENE_ID_MAX = 2**32 - 1
#: Permanent ``scene_id`` values are 1 to 100,000 (as many permanent codes as that).
PERMANENT_SCENE_ID_MAX = 100_000
#: ``scene_str``: 1 to 64 characters.
SCENE_STR_MAX = 64
#: Where a ticket is exchanged for the code's image (the ticket URL-encoded).
SHOW_URL = "https://mp.weixin.qq.com/cgi-bin/showqrcode"
#: The EventKey prefix of a subscribe through a QR code.
SUBSCRIBE_PREFIX = "qrscene_"

ActionName = Literal["QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"]


class QRCode(BaseModel):
    """A created QR code: ``ticket`` fetches its image (:attr:`image_url`), ``url`` is
    what the code encodes (draw it yourself if you like), ``expire_seconds`` is None for
    a permanent code."""

    model_config = ConfigDict(frozen=True)

    scene: int | str
    ticket: str
    url: str
    expire_seconds: int | None = None

    @property
    def permanent(self) -> bool:
        return self.expire_seconds is None

    @property
    def image_url(self) -> str:
        """The code's image (``GET``, no access token needed)."""
        return image_url(self.ticket)


class _Created(BaseModel):
    ticket: str
    url: str
    expire_seconds: int | None = None


def image_url(ticket: str) -> str:
    """The image of the code ``ticket`` belongs to."""
    return f"{SHOW_URL}?ticket={quote(ticket, safe='')}"


def create_body(scene: int | str, expires_in: timedelta | None) -> dict[str, Any]:
    """The body of ``/cgi-bin/qrcode/create``: a temporary code when ``expires_in`` is
    given, else a permanent one. MessageInvalidError for what WeChat does not allow."""
    permanent = expires_in is None
    if isinstance(scene, bool) or not isinstance(scene, int | str):
        raise refuse(f"a QR scene is an int or a str, not {type(scene).__name__}")
    if isinstance(scene, int):
        top = PERMANENT_SCENE_ID_MAX if permanent else TEMPORARY_SCENE_ID_MAX
        if not 1 <= scene <= top:
            kind = "permanent" if permanent else "temporary"
            raise refuse(f"a {kind} QR scene_id is 1 to {top}, not {scene}")
        action: ActionName = "QR_LIMIT_SCENE" if permanent else "QR_SCENE"
        info: dict[str, Any] = {"scene_id": scene}
    else:
        if not 1 <= len(scene) <= SCENE_STR_MAX:
            raise refuse(f"a QR scene_str is 1 to {SCENE_STR_MAX} characters, not {len(scene)}")
        action = "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE"
        info = {"scene_str": scene}
    body: dict[str, Any] = {"action_name": action, "action_info": {"scene": info}}
    if expires_in is not None:
        seconds = int(expires_in.total_seconds())
        if not 1 <= seconds <= TEMPORARY_MAX.total_seconds():
            raise refuse(f"a temporary QR code lives 1 s to 30 days, not {expires_in}")
        body["expire_seconds"] = seconds
    return body


class QRCodes:
    """Create QR codes (``channel.qrcodes``)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def temporary(self, scene: int | str, expires_in: timedelta) -> QRCode:
        """A code that expires after ``expires_in`` (at most 30 days)."""
        return await self._create(scene, expires_in)

    async def permanent(self, scene: int | str) -> QRCode:
        """A code that never expires (an account has at most 100,000)."""
        return await self._create(scene, None)

    async def _create(self, scene: int | str, expires_in: timedelta | None) -> QRCode:
        body = create_body(scene, expires_in)
        created = read(_Created, await self._api("POST", "/cgi-bin/qrcode/create", json=body), "QR")
        return QRCode(scene=scene, **created.model_dump())


class QRScan(BaseModel):
    """A scan of a code with a scene: ``scene`` as the push gives it (a ``scene_id`` in
    decimal), ``followed`` when the user followed through this scan."""

    model_config = ConfigDict(frozen=True)

    scene: str
    ticket: str | None = None
    followed: bool = False

    @classmethod
    def of(cls, event: Event) -> QRScan | None:
        """The scan ``event`` reports: a ``SCAN`` ChannelEvent, or a Followed through a
        code; None for any other event."""
        if isinstance(event, ChannelEvent) and event.name == "SCAN" and "scene" in event.data:
            data = event.data
            return cls(scene=data["scene"], ticket=data.get("ticket"), followed=data["followed"])
        if isinstance(event, Followed):
            return scan_of_push(event.raw)
        return None


def scan_of_push(push: dict[str, Any]) -> QRScan | None:
    """The scan a ``subscribe`` or ``SCAN`` push reports, if it carries a scene."""
    key, ticket = push.get("EventKey"), push.get("Ticket") or None
    if not isinstance(key, str) or not isinstance(ticket, str | None):
        return None
    match push.get("Event"):
        case "subscribe" if key.startswith(SUBSCRIBE_PREFIX) and len(key) > len(SUBSCRIBE_PREFIX):
            return QRScan(scene=key.removeprefix(SUBSCRIBE_PREFIX), ticket=ticket, followed=True)
        case "SCAN" if key:
            return QRScan(scene=key, ticket=ticket)
    return None
