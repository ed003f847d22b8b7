"""WhatsApp Cloud API wire shapes (webhook notifications), validated with pydantic.

Only the fields chatbridge maps are declared; every model keeps the rest
(``extra="allow"``) and the mapper puts the provider's object into ``raw``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WAError(_Wire):
    code: int
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None


class WAText(_Wire):
    body: str


class WAMedia(_Wire):
    id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None


class WALocation(_Wire):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class WAReplyItem(_Wire):
    id: str
    title: str | None = None
    description: str | None = None


class WAInteractive(_Wire):
    type: str
    button_reply: WAReplyItem | None = None
    list_reply: WAReplyItem | None = None
    nfm_reply: dict[str, Any] | None = None


class WAButton(_Wire):
    text: str
    payload: str | None = None


class WAReaction(_Wire):
    message_id: str
    emoji: str | None = None


class WAOrder(_Wire):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[dict[str, Any]] = Field(default_factory=list)


class WASystem(_Wire):
    body: str | None = None
    type: str | None = None


class WAContext(_Wire):
    id: str | None = None
    from_: str | None = Field(default=None, alias="from")


class WAMessage(_Wire):
    from_: str = Field(alias="from")
    id: str
    timestamp: str
    type: str
    text: WAText | None = None
    image: WAMedia | None = None
    audio: WAMedia | None = None
    video: WAMedia | None = None
    document: WAMedia | None = None
    sticker: WAMedia | None = None
    location: WALocation | None = None
    contacts: list[dict[str, Any]] | None = None
    interactive: WAInteractive | None = None
    button: WAButton | None = None
    reaction: WAReaction | None = None
    order: WAOrder | None = None
    system: WASystem | None = None
    context: WAContext | None = None
    errors: list[WAError] = Field(default_factory=list)


class WAStatus(_Wire):
    id: str
    status: str
    timestamp: str
    recipient_id: str
    errors: list[WAError] = Field(default_factory=list)


class WAProfile(_Wire):
    name: str | None = None


class WAContactInfo(_Wire):
    wa_id: str
    profile: WAProfile | None = None


class WAMetadata(_Wire):
    display_phone_number: str | None = None
    phone_number_id: str


class WAValue(_Wire):
    messaging_product: str | None = None
    metadata: WAMetadata | None = None
    contacts: list[WAContactInfo] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    statuses: list[dict[str, Any]] = Field(default_factory=list)
    errors: list[WAError] = Field(default_factory=list)


class WAChange(_Wire):
    field: str
    value: dict[str, Any]


class WAEntry(_Wire):
    id: str
    changes: list[WAChange]


class WANotification(_Wire):
    object: str
    entry: list[WAEntry]


class WAMediaInfo(_Wire):
    """``GET /{media-id}``: where to download a media item, and what it is."""

    url: str
    mime_type: str | None = None
    sha256: str | None = None
    file_size: int | None = None
    id: str


class WAMessageRef(_Wire):
    id: str


class WASendResult(_Wire):
    """``POST /{phone-number-id}/messages`` success body."""

    messages: list[WAMessageRef] = Field(min_length=1)


class WAUploadResult(_Wire):
    id: str
