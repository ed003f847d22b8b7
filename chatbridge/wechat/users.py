"""Follower information ("User management > Get user basic information").

What ``/cgi-bin/user/info`` returns today: ``subscribe`` (0: not a follower, and
nothing else is returned), ``openid``, ``subscribe_time``, ``unionid`` (only when the
account is bound to an Open Platform account), ``remark``, ``groupid``, ``tagid_list``,
``subscribe_scene`` and ``qr_scene`` / ``qr_scene_str`` (the QR code followed through).
Since 27 December 2021 no nickname or avatar is returned (empty or absent), and the
current reference marks ``language`` as no longer provided. Sources: docs/wechat.md,
"User info".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.clock import from_unix
from chatbridge.errors import ProviderError
from chatbridge.wechat.api import Api, read

Lang = Literal["zh_CN", "zh_TW", "en"]
#: Users per ``user/info/batchget`` call.
BATCH = 100


class UserInfo(BaseModel):
    """One user as the account sees them. ``nickname`` and ``headimgurl`` are kept for
    accounts that still get them; new ones get them empty or not at all."""

    model_config = ConfigDict(extra="allow", frozen=True)

    subscribe: int
    openid: str
    subscribe_time: int | None = None
    unionid: str | None = None
    remark: str | None = None
    groupid: int | None = None
    tagid_list: list[int] = Field(default_factory=list)
    subscribe_scene: str | None = None
    qr_scene: int | None = None
    qr_scene_str: str | None = None
    language: str | None = None
    nickname: str | None = None
    headimgurl: str | None = None

    @property
    def follows(self) -> bool:
        return self.subscribe == 1

    @property
    def followed_at(self) -> datetime | None:
        """When the user last followed."""
        return from_unix(self.subscribe_time) if self.subscribe_time else None

    @property
    def scene(self) -> str | None:
        """The scene of the QR code the user followed through (``subscribe_scene``
        ``ADD_SCENE_QR_CODE``), as a QR scan event gives it."""
        if self.qr_scene_str:
            return self.qr_scene_str
        return str(self.qr_scene) if self.qr_scene else None


class _Batch(BaseModel):
    user_info_list: list[UserInfo]


class Users:
    """The user information API (``channel.users``)."""

    def __init__(self, api: Api) -> None:
        self._api = api

    async def info(self, openid: str, lang: Lang | None = None) -> UserInfo:
        """What WeChat says of ``openid`` (``follows`` is False for a non-follower)."""
        params = {"openid": openid, **({"lang": lang} if lang else {})}
        return read(
            UserInfo, await self._api("GET", "/cgi-bin/user/info", params=params), "user info"
        )

    async def info_of(self, openids: Sequence[str], lang: Lang | None = None) -> list[UserInfo]:
        """What WeChat says of each of ``openids``, in their order (``user/info/batchget``,
        :data:`BATCH` a call; matched by OpenID, a ProviderError if one is missing)."""
        if isinstance(openids, str):
            raise TypeError("info_of takes a list of OpenIDs (info takes one)")
        found: dict[str, UserInfo] = {}
        for start in range(0, len(openids), BATCH):
            users = [
                {"openid": o, **({"lang": lang} if lang else {})}
                for o in openids[start : start + BATCH]
            ]
            body = await self._api("POST", "/cgi-bin/user/info/batchget", json={"user_list": users})
            found.update((i.openid, i) for i in read(_Batch, body, "user info list").user_info_list)
        if missing := [openid for openid in openids if openid not in found]:
            raise ProviderError(
                f"WeChat's user info list lacks {len(missing)} of the OpenIDs asked",
                provider="wechat",
            )
        return [found[openid] for openid in openids]
