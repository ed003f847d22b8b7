"""LINE Messaging API wire shapes: webhook events and API responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class LineSource(_Wire):
    type: str
    user_id: str | None = Field(default=None, alias="userId")
    group_id: str | None = Field(default=None, alias="groupId")
    room_id: str | None = Field(default=None, alias="roomId")

    @property
    def address(self) -> str | None:
        """Where replies go: the group or room for group chats, else the user."""
        return self.group_id or self.room_id or self.user_id


class LineContentProvider(_Wire):
    type: str
    original_content_url: str | None = Field(default=None, alias="originalContentUrl")
    preview_image_url: str | None = Field(default=None, alias="previewImageUrl")


class LineMessage(_Wire):
    id: str
    type: str
    text: str | None = None
    quoted_message_id: str | None = Field(default=None, alias="quotedMessageId")
    content_provider: LineContentProvider | None = Field(default=None, alias="contentProvider")
    duration: int | None = None
    file_name: str | None = Field(default=None, alias="fileName")
    file_size: int | None = Field(default=None, alias="fileSize")
    title: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    package_id: str | None = Field(default=None, alias="packageId")
    sticker_id: str | None = Field(default=None, alias="stickerId")


class LinePostback(_Wire):
    data: str
    params: dict[str, Any] | None = None


class LineEvent(_Wire):
    type: str
    timestamp: int
    webhook_event_id: str = Field(alias="webhookEventId")
    mode: str | None = None
    source: LineSource | None = None
    reply_token: str | None = Field(default=None, alias="replyToken")
    delivery_context: dict[str, Any] | None = Field(default=None, alias="deliveryContext")
    message: LineMessage | None = None
    postback: LinePostback | None = None
    beacon: dict[str, Any] | None = None
    follow: dict[str, Any] | None = None


class LineWebhook(_Wire):
    destination: str | None = None
    events: list[dict[str, Any]]


class LineSentMessage(_Wire):
    id: str


class LineSendResult(_Wire):
    sent_messages: list[LineSentMessage] = Field(default_factory=list, alias="sentMessages")


class LineQuota(_Wire):
    type: str
    value: int | None = None


class LineConsumption(_Wire):
    total_usage: int = Field(alias="totalUsage")
