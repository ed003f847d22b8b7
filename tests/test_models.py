from typing import Any

import pytest

from chatbridge import Card, Identity, Location, Media, MediaKind, Message, Reaction, Template
from chatbridge.models import Button, Interactive, InteractiveReply, MessageKind

CUSTOMER = Identity(channel="whatsapp", address="15550001111")


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"text": "hi"}, MessageKind.TEXT),
        ({"media": [Media(kind=MediaKind.IMAGE, url="https://x.test/a.png")]}, MessageKind.MEDIA),
        ({"location": Location(latitude=1, longitude=2)}, MessageKind.LOCATION),
        ({"reaction": Reaction(message_id="m", emoji="👍")}, MessageKind.REACTION),
        ({"interactive_reply": InteractiveReply(id="yes")}, MessageKind.INTERACTIVE_REPLY),
        (
            {"interactive": Interactive(body="?", buttons=[Button(id="y", title="Yes")])},
            MessageKind.INTERACTIVE,
        ),
        ({"card": Card(title="t", url="https://x.test")}, MessageKind.CARD),
        ({"template": Template(name="t"), "text": "fallback"}, MessageKind.TEMPLATE),
    ],
)
def test_kind_is_derived_from_the_content(content: dict[str, Any], kind: MessageKind) -> None:
    assert Message(contact=CUSTOMER, **content).kind is kind
    assert Message.model_validate({"contact": CUSTOMER, **content}).kind is kind


def test_a_given_kind_is_kept() -> None:
    message = Message(contact=CUSTOMER, kind=MessageKind.SYSTEM, text="joined")
    assert message.kind is MessageKind.SYSTEM
