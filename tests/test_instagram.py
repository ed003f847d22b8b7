"""Instagram messaging: what differs from Messenger (tests/test_messenger.py covers the
shared Messenger Platform behaviour)."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from chatbridge import (
    MediaKind,
    Message,
    MessageInvalidError,
    PayloadError,
    PolicyRefusedError,
    ProviderAuthError,
    ProviderPolicyError,
)
from chatbridge.instagram import InstagramChannel, kit
from chatbridge.messenger import kit as messenger_kit
from chatbridge.models import Media, MessageReceived
from chatbridge.plugin import parse_multipart
from chatbridge.plugin.graph import error_response as graph_error
from chatbridge.policy import RemedyKind
from tests.test_messenger import Setup, running

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER


@pytest.fixture
async def ig() -> AsyncIterator[Setup]:
    async with running(kit.kit) as setup:
        yield setup


def to(**content: object) -> Message:
    return Message.model_validate(
        {"contact": {"channel": "instagram", "address": CUSTOMER}, **content}
    )


async def test_a_messenger_notification_is_not_an_instagram_one(ig: Setup) -> None:
    body = messenger_kit.BODIES.message("m_1", text="hi")
    with pytest.raises(PayloadError, match="'page'"):
        await ig.channel.receive(kit.kit.sign(kit.kit.webhook(body), None))


async def test_story_reply_and_mention_keep_the_story(ig: Setup) -> None:
    sample = next(s for s in kit.SAMPLES if s.name == "story_reply")
    result = await ig.channel.receive(kit.kit.sign(kit.kit.webhook(sample.body), None))
    [event] = result.events
    assert isinstance(event, MessageReceived)
    assert event.message.raw["message"]["reply_to"]["story"]["url"].startswith("https://")


async def test_text_is_limited_to_1000_utf8_bytes(ig: Setup) -> None:
    await ig.open_window()
    await ig.channel.send(to(text="é" * 500))  # 1000 bytes
    with pytest.raises(MessageInvalidError, match="1000 UTF-8 bytes"):
        await ig.channel.send(to(text="é" * 500 + "x"))


async def test_only_the_human_agent_tag_exists(ig: Setup) -> None:
    await ig.open_window()
    with pytest.raises(MessageInvalidError, match="not a message tag of instagram"):
        await ig.channel.send(to(text="t", tag="ACCOUNT_UPDATE"))
    ig.clock.advance(timedelta(days=2))
    with pytest.raises(PolicyRefusedError) as refused:
        await ig.channel.send(to(text="late"))
    [tag] = [r for r in refused.value.decision.remedies if r.kind is RemedyKind.USE_TAG]
    assert "HUMAN_AGENT" in tag.description
    await ig.channel.send(to(text="A person here", tag="HUMAN_AGENT"))
    assert ig.api.sent[-1]["tag"] == "HUMAN_AGENT"


async def test_provider_window_refusal_uses_instagrams_subcode(ig: Setup) -> None:
    ig.api.window = timedelta(hours=24)
    await ig.open_window()
    with pytest.raises(ProviderPolicyError) as refused:
        await ig.channel.send(to(text="hi"))
    assert refused.value.details["error_subcode"] == 2534022  # type: ignore[index]


@pytest.mark.parametrize(
    ("code", "subcode", "error"),
    [
        (10, 2534022, ProviderPolicyError),
        (100, 2534029, ProviderPolicyError),
        (200, 2534041, ProviderPolicyError),
        (10, 2534077, ProviderAuthError),
    ],
)
async def test_instagram_error_codes(
    ig: Setup, code: int, subcode: int, error: type[Exception]
) -> None:
    await ig.open_window()
    ig.api.fail_next(graph_error(400, code, "refused", subcode))
    with pytest.raises(error):
        await ig.channel.send(to(text="hi"))


async def test_upload_names_the_platform_and_sends_a_media_share(ig: Setup) -> None:
    await ig.open_window()
    audio = Media(kind=MediaKind.AUDIO, mime_type="audio/mp4", data=b"m4a", filename="a.m4a")
    await ig.channel.send(to(media=[audio]))
    upload = next(r for r in ig.api.requests if r.url.path.endswith("/message_attachments"))
    assert parse_multipart(upload)["platform"].data == b"instagram"
    [attachment_id] = ig.api.uploads
    assert ig.api.sent[-1]["message"] == {
        "attachment": {"type": "MEDIA_SHARE", "payload": {"id": attachment_id}}
    }


async def test_images_over_8_mb_are_refused_locally(ig: Setup) -> None:
    image = Media(kind=MediaKind.IMAGE, mime_type="image/png", data=b"x" * (8 * 1024 * 1024 + 1))
    with pytest.raises(MessageInvalidError, match="image uploads are limited"):
        await ig.channel.upload_media(image)
    assert not ig.router.calls


def test_instagram_states_only_its_differences() -> None:
    own = {k for k in vars(InstagramChannel) if not k.startswith("__")}
    assert own <= {
        "name",
        "error_codes",
        "webhook_object",
        "text_limit",
        "rules",
        "upload_max_bytes",
        "upload_fields",
        "saved_attachment",
        "_abc_impl",
    }
    assert json.loads(kit.kit.unknown_body)["object"] == "instagram"
