"""WhatsApp Cloud API wire shapes, validated with pydantic.

Webhook notifications: the envelope (object / entry / changes / value) is declared
here as TypedDicts and validated while the JSON is parsed. The items inside (messages,
statuses) are mapped straight to the common model, whose validation checks the fields
chatbridge uses (see ``inbound.py``); the provider's item is kept whole in ``raw``.

API responses: only the fields chatbridge reads are declared; the rest is allowed.
"""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts before 3.12


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class WAProfile(TypedDict, total=False):
    name: str


class WAContactInfo(TypedDict):
    wa_id: str
    profile: NotRequired[WAProfile]


class WAValue(TypedDict, total=False):
    """A ``messages`` change's value. Messages, statuses and errors stay plain objects
    here: each is mapped on its own, so one malformed item cannot fail the batch."""

    contacts: list[WAContactInfo]
    messages: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class WAChange(TypedDict):
    field: str
    value: dict[str, Any]


class WAEntry(TypedDict):
    id: str
    changes: list[WAChange]


class WANotification(TypedDict):
    object: str
    entry: list[WAEntry]


#: Parses and validates a webhook body's envelope in one pass.
NOTIFICATION = TypeAdapter(WANotification)
#: Validates a ``messages`` change's value.
VALUE = TypeAdapter(WAValue)


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
