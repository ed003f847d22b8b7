import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import chatbridge
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


def test_the_root_exports_what_it_imports_for_type_checkers() -> None:
    tree = ast.parse(Path(chatbridge.__file__).read_text())
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    typed = {
        (node.module, alias.name)
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    exported = {(module, name) for module, names in chatbridge._EXPORTS.items() for name in names}
    assert typed == exported
    assert all(getattr(chatbridge, name) is not None for name in chatbridge.__all__)
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, chatbridge; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "'httpx'" not in loaded and "'pydantic'" not in loaded  # import chatbridge is cheap
