"""A LINE user's profile ("Get profile", line-bot-sdk-python ``UserProfileResponse``)
and the loading animation ("Display a loading animation", ``ShowLoadingAnimationRequest``)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.errors import InvalidAddressError, MessageInvalidError

#: A user id: "U" and 32 hex digits ("Get user IDs").
USER_ID = re.compile(r"U[0-9a-f]{32}")
#: Loading animation seconds: 5 to 60, a multiple of 5.
LOADING_SECONDS = range(5, 61, 5)


class LineProfile(BaseModel):
    """What LINE tells of a user. ``picture_url``, ``status_message`` and ``language``
    (BCP 47) are absent when the user has none (``language``: until the user accepts
    LINE's privacy policy)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="allow")

    display_name: str = Field(alias="displayName")
    user_id: str = Field(alias="userId")
    picture_url: str | None = Field(default=None, alias="pictureUrl")
    status_message: str | None = Field(default=None, alias="statusMessage")
    language: str | None = None


def user_id(address: str) -> str:
    """``address`` checked to be a LINE user id (not a group or room)."""
    if not USER_ID.fullmatch(address):
        raise InvalidAddressError(f"not a LINE user id: {address!r}")
    return address


def loading_body(address: str, seconds: int) -> dict[str, object]:
    """The "Display a loading animation" body for one user's one-on-one chat."""
    if seconds not in LOADING_SECONDS:
        raise MessageInvalidError(
            f"LINE shows the loading animation 5 to 60 seconds, a multiple of 5; got {seconds}"
        )
    return {"chatId": user_id(address), "loadingSeconds": seconds}
