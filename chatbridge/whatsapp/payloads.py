"""WhatsApp Cloud API wire shapes, validated with pydantic.

Webhook notifications: the envelope (object / entry / changes / value) is declared
here as TypedDicts and validated while the JSON is parsed. The items inside (messages,
statuses) are mapped straight to the common model, whose validation checks the fields
chatbridge uses (see ``inbound.py``); the provider's item is kept whole in ``raw``.

API responses: only the fields chatbridge reads are declared; the rest is allowed.
"""

from __future__ import annotations

from typing import Any, Generic, NotRequired, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts before 3.12

Value = TypeVar("Value")


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

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]  # raw keeps all

    contacts: list[WAContactInfo]
    messages: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    errors: list[dict[str, Any]]


class WAChange(TypedDict, Generic[Value]):
    field: str
    value: Value


class WAEntry(TypedDict, Generic[Value]):
    id: str
    time: NotRequired[int]  # unix seconds; account-level fields (templates) carry it
    changes: list[WAChange[Value]]


class WANotification(TypedDict, Generic[Value]):
    object: str
    entry: list[WAEntry[Value]]


#: Parses a webhook body and validates it, values included, in one pass.
NOTIFICATION = TypeAdapter(WANotification[WAValue])
#: Parses a webhook body and validates its envelope only, for when a value is malformed.
ENVELOPE = TypeAdapter(WANotification[dict[str, Any]])
#: Validates one ``messages`` change's value.
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
