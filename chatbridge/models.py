"""The common model every channel maps to and from (pydantic v2).

Provider wire shapes live in each channel's ``payloads.py``; this module is what users
see. Timestamps are always aware datetimes. Anything a provider sent that the common
model has no field for is kept in ``raw``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class Identity(BaseModel):
    """One address of a person on one channel (a wa_id, an openid, an email address...)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    address: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"


class Contact(BaseModel):
    """One person, with at most one identity per channel."""

    name: str | None = None
    identities: list[Identity] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_identity_per_channel(self) -> Contact:
        channels = [identity.channel for identity in self.identities]
        if len(channels) != len(set(channels)):
            raise ValueError("a contact has at most one identity per channel")
        return self

    def on(self, channel: str) -> Identity | None:
        """This contact's identity on ``channel``, if any."""
        return next((i for i in self.identities if i.channel == channel), None)

    def others(self, channel: str) -> list[Identity]:
        """This contact's identities on every channel but ``channel``."""
        return [i for i in self.identities if i.channel != channel]


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    FILE = "file"


class Media(BaseModel):
    """A media attachment: by provider id, by URL, or by bytes (Base64 in JSON, so any
    media survives a JSON round trip)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    kind: MediaKind
    mime_type: str | None = None
    size: int | None = None
    url: str | None = None
    data: bytes | None = Field(default=None, repr=False)
    provider_id: str | None = None
    caption: str | None = None
    filename: str | None = None
    sha256: str | None = None
    preview_url: str | None = None
    duration_ms: int | None = None


class Location(BaseModel):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class Template(BaseModel):
    """A provider-approved template message, the only thing most channels allow outside
    their service window.

    ``parameters`` fill positional placeholders, ``named_parameters`` named ones.
    ``components`` passes provider-native components through unchanged when the simple
    fields are not enough (headers, buttons).
    """

    name: str
    language: str | None = None
    parameters: list[str] = Field(default_factory=list)
    named_parameters: dict[str, str] = Field(default_factory=dict)
    components: list[dict[str, Any]] | None = None


class Card(BaseModel):
    """A link preview card (title, description, link, picture)."""

    title: str
    url: str
    description: str | None = None
    image_url: str | None = None


class Button(BaseModel):
    id: str
    title: str


class ListRow(BaseModel):
    id: str
    title: str
    description: str | None = None


class ListSection(BaseModel):
    title: str | None = None
    rows: list[ListRow]


class Interactive(BaseModel):
    """Quick-reply buttons or a list picker. Give ``buttons`` or ``sections``, not both."""

    body: str
    buttons: list[Button] = Field(default_factory=list)
    sections: list[ListSection] = Field(default_factory=list)
    button_label: str | None = None
    header: str | None = None
    footer: str | None = None

    @model_validator(mode="after")
    def _buttons_or_sections(self) -> Interactive:
        if bool(self.buttons) == bool(self.sections):
            raise ValueError("an interactive message has either buttons or list sections")
        return self


class InteractiveReply(BaseModel):
    """A customer's answer to an interactive message (button tap, list pick, postback)."""

    id: str
    title: str | None = None
    description: str | None = None


class Reaction(BaseModel):
    """An emoji reaction to a message; an empty emoji removes the reaction."""

    message_id: str
    emoji: str


class MessageKind(StrEnum):
    TEXT = "text"
    MEDIA = "media"
    LOCATION = "location"
    CONTACTS = "contacts"
    TEMPLATE = "template"
    CARD = "card"
    INTERACTIVE = "interactive"
    INTERACTIVE_REPLY = "interactive_reply"
    REACTION = "reaction"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"


#: Which content field makes a message of which kind, first match wins; else TEXT.
_KIND_BY_CONTENT = (
    ("template", MessageKind.TEMPLATE),
    ("card", MessageKind.CARD),
    ("interactive", MessageKind.INTERACTIVE),
    ("interactive_reply", MessageKind.INTERACTIVE_REPLY),
    ("reaction", MessageKind.REACTION),
    ("location", MessageKind.LOCATION),
    ("media", MessageKind.MEDIA),
)


def _content_kind(content: dict[str, Any]) -> MessageKind:
    """The kind of a message with these (validated) fields, when it is not given."""
    return next((kind for field, kind in _KIND_BY_CONTENT if content[field]), MessageKind.TEXT)


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Message(BaseModel):
    """A message to or from a customer.

    ``contact`` is always the customer's identity, whichever the direction. ``kind`` is
    derived from the content when not given. ``stripped_text`` is an inbound reply's new
    text without the quoted history; ``thread`` is the conversation key (email).
    """

    contact: Identity
    direction: Direction = Direction.OUTBOUND
    id: str | None = None
    timestamp: AwareDatetime | None = None
    text: str | None = None
    stripped_text: str | None = None
    html: str | None = None
    subject: str | None = None
    media: list[Media] = Field(default_factory=list)
    location: Location | None = None
    template: Template | None = None
    interactive: Interactive | None = None
    interactive_reply: InteractiveReply | None = None
    reaction: Reaction | None = None
    card: Card | None = None
    reply_to: str | None = None
    thread: str | None = None
    #: A provider's message tag (Messenger's HUMAN_AGENT...): sends the message under the
    #: tag's own window, where the channel's ``PolicyRules.tags`` declares one.
    tag: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    # Last, so that its default sees the validated content.
    kind: MessageKind = Field(default_factory=_content_kind)

    @property
    def channel(self) -> str:
        return self.contact.channel


class ProviderErrorInfo(BaseModel):
    """An error a provider reported asynchronously (for example on a failed delivery)."""

    code: str
    message: str
    details: str | None = None


class _Event(BaseModel):
    """Fields every inbound event has. ``event_id`` is the deduplication key;
    ``contact_name`` is the display name the provider gave, if any; ``reply_token`` is a
    provider token that allows one free reply to this event (LINE)."""

    channel: str
    event_id: str
    contact: Identity | None = None
    contact_name: str | None = None
    reply_token: str | None = Field(default=None, repr=False)
    timestamp: AwareDatetime
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class MessageReceived(_Event):
    """A customer sent a message."""

    type: Literal["message"] = "message"
    message: Message


class DeliveryState(StrEnum):
    """How far a sent message got, in order; PLAYED: a voice message was played."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"
    FAILED = "failed"


class StatusUpdate(_Event):
    """The provider reports progress (or failure) of a message we sent."""

    type: Literal["status"] = "status"
    message_id: str
    state: DeliveryState
    errors: list[ProviderErrorInfo] = Field(default_factory=list)


class Followed(_Event):
    """The customer followed / added / subscribed to the business account."""

    type: Literal["follow"] = "follow"


class Unfollowed(_Event):
    """The customer unfollowed, blocked or unsubscribed."""

    type: Literal["unfollow"] = "unfollow"


class OptedOut(_Event):
    """The customer asked not to be messaged again (STOP, unsubscribe, complaint)."""

    type: Literal["opt_out"] = "opt_out"
    reason: str


class Suppressed(_Event):
    """The address must not be sent to any more (hard bounce, spam complaint)."""

    type: Literal["suppressed"] = "suppressed"
    reason: str


class OptedIn(_Event):
    """The customer asked to be messaged again (START)."""

    type: Literal["opt_in"] = "opt_in"


class ChannelEvent(_Event):
    """A provider-specific interaction that is neither a message nor a state change
    (a menu click, a QR scan, a beacon). ``name`` is the provider's event name;
    ``opens_window`` says whether the provider counts it as a customer interaction that
    opens the service window."""

    type: Literal["channel_event"] = "channel_event"
    name: str
    data: dict[str, Any] = Field(default_factory=dict)
    opens_window: bool = False


class TemplateUpdate(_Event):
    """The provider changed one of the account's message templates: its review status,
    quality rating or category (WhatsApp's template webhooks). Values are the provider's
    own words (``status`` "APPROVED", "REJECTED"...); ``contact`` is None."""

    type: Literal["template_update"] = "template_update"
    template_id: str
    name: str | None = None
    language: str | None = None
    status: str | None = None
    reason: str | None = None
    quality: str | None = None
    category: str | None = None
    previous_category: str | None = None


class UnknownEvent(_Event):
    """Something the provider sent that this version of chatbridge does not understand.
    Nothing is dropped: the provider's payload is in ``raw``."""

    type: Literal["unknown"] = "unknown"
    name: str
    reason: str


Event = Annotated[
    MessageReceived
    | StatusUpdate
    | Followed
    | Unfollowed
    | OptedOut
    | OptedIn
    | Suppressed
    | ChannelEvent
    | TemplateUpdate
    | UnknownEvent,
    Field(discriminator="type"),
]


class WindowState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    NOT_APPLICABLE = "not_applicable"


class Window(BaseModel):
    """The customer-service window of one contact on one channel, as of ``checked_at``."""

    channel: str
    contact: Identity
    state: WindowState
    checked_at: AwareDatetime
    opened_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    allowed: list[MessageKind]


class Receipt(BaseModel):
    """The provider accepted a message for delivery. ``warnings``: what the policy
    allowed with a warning (a paid plan's overage and its projected cost)."""

    channel: str
    contact: Identity
    message_id: str | None
    accepted_at: AwareDatetime
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)
    warnings: list[str] = Field(default_factory=list)
