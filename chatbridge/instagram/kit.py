"""The Instagram conformance kit: Messenger's shared samples plus Instagram's own
(story mentions and replies, reels, seen-by-mid, deletions, unsupported media), from
Meta's "Webhooks for Instagram Messaging" reference; sources in docs/instagram.md."""

from __future__ import annotations

from datetime import timedelta

from chatbridge.instagram.channel import InstagramChannel, InstagramConfig
from chatbridge.instagram.fake import fake_instagram_api
from chatbridge.messenger.kit import (
    Bodies,
    build_kit,
    facts,
    received,
    shared_samples,
    statuses,
)
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MediaKind,
    MessageKind,
    MessageReceived,
    StatusUpdate,
)
from chatbridge.plugin import Sample

CONFIG = InstagramConfig(
    page_id="17841405822304914",
    access_token="IGAA-instagram-test-token",
    app_secret="instagram-test-app-secret",
    verify_token="instagram-test-verify-token",
)
CUSTOMER = "1254459154682919"  # an Instagram-scoped id (IGSID)
BODIES = Bodies("instagram", CONFIG.page_id, CUSTOMER)
_CDN = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1&signature=x"
_MSG = (MessageReceived,)


def _deleted(events: list[Event]) -> None:
    [event] = events
    assert isinstance(event, ChannelEvent)
    assert (event.name, event.data, event.opens_window) == (
        "message_deleted",
        {"mid": "m_gone"},
        False,
    )


SAMPLES = [
    *shared_samples(BODIES),
    Sample(
        "story_mention",
        BODIES.message(
            "m_mention", attachments=[{"type": "story_mention", "payload": {"url": _CDN}}]
        ),
        _MSG,
        received(lambda m: m.kind is MessageKind.MEDIA and m.media[0].url == _CDN),
    ),
    Sample(
        "story_reply",
        BODIES.message("m_story", text="Love it", reply_to={"story": {"url": _CDN, "id": "1798"}}),
        _MSG,
        received(lambda m: m.reply_to == "story:1798" and m.text == "Love it"),
    ),
    Sample(
        "reel",
        BODIES.message("m_reel", attachments=[{"type": "ig_reel", "payload": {"url": _CDN}}]),
        _MSG,
        received(lambda m: m.media[0].kind is MediaKind.VIDEO),
    ),
    Sample(
        "unsupported",
        BODIES.message("m_unsupported", is_unsupported=True),
        _MSG,
        received(lambda m: m.kind is MessageKind.UNSUPPORTED),
    ),
    Sample(
        "seen",
        BODIES.notification(BODIES.item(read={"mid": "m_out"})),
        (StatusUpdate,),
        statuses(DeliveryState.READ, "m_out"),
    ),
    Sample(
        "deleted",
        BODIES.message("m_gone", is_deleted=True),
        (ChannelEvent,),
        _deleted,
    ),
]

kit = build_kit(
    InstagramChannel,
    CONFIG,
    BODIES,
    SAMPLES,
    lambda: fake_instagram_api(CONFIG),
    facts(
        {"seen": DeliveryState.READ},
        {"HUMAN_AGENT": timedelta(days=7)},
        "https://developers.facebook.com/docs/messenger-platform/instagram/features/send-message",
    ),
    lambda _: BODIES.notification(BODIES.item(read={"mid": "m_out_seen"})),
)
