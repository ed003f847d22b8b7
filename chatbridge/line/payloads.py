"""LINE Messaging API wire shapes: webhook bodies and API responses.

Webhook events are mapped straight to the common model, whose validation checks the
fields chatbridge uses; the provider's event is kept whole in ``raw``.
"""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts before 3.12


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class LineWebhook(TypedDict):
    """A webhook body. Its events stay plain objects: each is mapped on its own (see
    ``inbound.py``), so one malformed event cannot fail the batch."""

    destination: NotRequired[str]
    events: list[dict[str, Any]]


#: Parses and validates a webhook body in one pass.
WEBHOOK = TypeAdapter(LineWebhook)


class LineSentMessage(_Wire):
    id: str


class LineSendResult(_Wire):
    sent_messages: list[LineSentMessage] = Field(default_factory=list, alias="sentMessages")


class LineQuota(_Wire):
    type: str
    value: int | None = None


class LineConsumption(_Wire):
    total_usage: int = Field(alias="totalUsage")
