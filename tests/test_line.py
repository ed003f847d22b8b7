"""LINE specifics: reply vs push, reply tokens, friend rule, monthly quota, multicast,
retry keys, message objects, content download."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import respx
from hypothesis import given, settings

from chatbridge import (
    Button,
    Contact,
    FakeClock,
    Identity,
    Interactive,
    ListRow,
    ListSection,
    Media,
    MediaKind,
    Message,
    MessageInvalidError,
    PolicyRefusedError,
    ProviderPolicyError,
    RefusalReason,
    RemedyKind,
    UnsupportedMessageError,
)
from chatbridge.line import LineChannel, kit
from chatbridge.line.fake import FakeLineAPI
from chatbridge.line.fake_rules import line_error
from chatbridge.line.inbound import parse_webhook
from chatbridge.models import UnknownEvent
from chatbridge.plugin import Inbound
from tests.mutations import broken

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER


@dataclass
class Setup:
    channel: LineChannel
    api: FakeLineAPI
    clock: FakeClock
    router: respx.MockRouter

    async def receive(self, body: bytes) -> None:
        await self.channel.receive(kit.sign(kit.webhook(body)))

    async def befriend(self, user: str = CUSTOMER, *, reply_token: bool = True) -> None:
        """Follow + message from ``user``; without a usable reply token when asked, so
        that the next send is a push."""
        for body in kit.open_conversation(user, self.clock.now()):
            await self.receive(body)
        if not reply_token:
            self.clock.advance(kit.CONFIG.reply_token_ttl)


def make(quota: int | None = 3) -> tuple[LineChannel, FakeLineAPI, FakeClock]:
    config = kit.CONFIG.model_copy(update={"monthly_quota": quota})
    clock = FakeClock()
    return LineChannel(config, clock=clock), FakeLineAPI(config, quota=quota), clock


@pytest.fixture
async def line() -> AsyncIterator[Setup]:
    channel, api, clock = make()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        for host in api.hosts:
            router.route(host=host).mock(side_effect=api)
        yield Setup(channel, api, clock, router)
        await channel.aclose()


def to(user: str = CUSTOMER, **content: object) -> Message:
    return Message.model_validate({"contact": {"channel": "line", "address": user}, **content})


async def test_fresh_reply_token_is_used_once_then_push(line: Setup) -> None:
    await line.befriend()
    await line.channel.send(to(text="thanks for writing"))
    assert (
        line.api.replies[-1]["replyToken"] == f"rt-msg-{int(line.clock.now().timestamp() * 1000)}"
    )
    await line.channel.send(to(text="and one more thing"))
    assert len(line.api.replies) == 1 and len(line.api.pushes) == 1
    assert line.api.pushes[-1] == {
        "to": CUSTOMER,
        "messages": [{"type": "text", "text": "and one more thing"}],
    }
    assert line.router.calls[-1].request.headers["X-Line-Retry-Key"]


async def test_expired_reply_token_means_push(line: Setup) -> None:
    await line.befriend()
    line.clock.advance(timedelta(minutes=2))
    await line.channel.send(to(text="late"))
    assert not line.api.replies and len(line.api.pushes) == 1


async def test_rejected_reply_token_falls_back_to_push(line: Setup) -> None:
    await line.befriend()
    line.api.fail_next(line_error(400, "Invalid reply token"), path="/v2/bot/message/reply")
    receipt = await line.channel.send(to(text="hello"))
    assert receipt.message_id and len(line.api.pushes) == 1


async def test_strangers_and_blocked_users_are_refused(line: Setup) -> None:
    with pytest.raises(PolicyRefusedError) as refused:
        await line.channel.send(to(text="hi"))
    assert refused.value.decision.reason is RefusalReason.NOT_A_FOLLOWER
    await line.befriend()
    await line.receive(
        kit.webhook_body(
            kit.line_event("unfollow", "unf-1", at_ms=kit._T0_MS + 1, reply_token=None)
        )
    )
    with pytest.raises(PolicyRefusedError) as refused:
        await line.channel.send(to(text="hi"))
    assert refused.value.decision.reason is RefusalReason.UNFOLLOWED
    assert "blocked" in str(refused.value)
    assert not line.router.calls


async def test_monthly_quota_counts_pushes_not_replies(line: Setup) -> None:
    await line.befriend()
    await line.channel.send(to(text="reply is free"))
    for i in range(3):
        await line.channel.send(to(text=f"push {i}"))
    calls = len(line.router.calls)
    email = Identity(channel="email", address="c@example.com")
    with pytest.raises(PolicyRefusedError) as refused:
        await line.channel.send(to(text="over quota"), Contact(identities=[to().contact, email]))
    decision = refused.value.decision
    assert decision.reason is RefusalReason.QUOTA_SPENT
    kinds = [remedy.kind for remedy in decision.remedies]
    assert kinds == [RemedyKind.USE_REPLY, RemedyKind.WAIT_UNTIL, RemedyKind.USE_OTHER_CHANNEL]
    assert len(line.router.calls) == calls
    # A new customer message brings a free reply token even with the quota spent.
    line.clock.advance(timedelta(seconds=5))
    await line.befriend()
    await line.channel.send(to(text="reply still free"))
    # The quota resets with the month (in Tokyo time), on LINE's side too.
    line.clock.advance(timedelta(days=31))
    line.api.pushes.clear()
    await line.channel.send(to(text="new month"))


async def test_quota_status_and_sync(line: Setup) -> None:
    await line.befriend(reply_token=False)
    line.api.pushes.append({"to": "other tool"})  # sent by another tool on the account
    await line.channel.send(to(text="push"))
    status = await line.channel.quota_status()
    assert (status.limit, status.provider_used, status.local_used) == (3, 2, 1)
    synced = await line.channel.sync_quota()
    assert synced.local_used == 2


async def test_provider_monthly_limit_is_a_policy_error_and_refunds(line: Setup) -> None:
    await line.befriend(reply_token=False)
    line.api.fail_next(line_error(429, "You have reached your monthly limit."))
    with pytest.raises(ProviderPolicyError):
        await line.channel.send(to(text="x"))
    assert (await line.channel.quota_status()).local_used == 0


async def test_retry_key_conflict_counts_as_accepted(line: Setup) -> None:
    await line.befriend(reply_token=False)
    line.api.fail_next(line_error(409, "The retry key is already accepted"))
    receipt = await line.channel.send(to(text="x"))
    assert receipt.message_id is None


async def test_multicast_chunks_and_reports_refusals() -> None:
    channel, api, _ = make(quota=1000)
    with respx.mock(assert_all_called=False) as router:
        for host in api.hosts:
            router.route(host=host).mock(side_effect=api)
        users = [f"U{i:032d}" for i in range(501)]
        for user in users:
            await channel.store.update_contact_state(channel.identity(user), follower=True)
        recipients = [channel.identity(u) for u in [*users, "Ustranger"]]
        result = await channel.multicast(to(text="sale!"), recipients)
        assert len(result.sent) == 501
        assert [d.contact.address for d in result.refused] == ["Ustranger"]
        assert [len(body["to"]) for body in api.multicasts] == [500, 1]
        assert (await channel.quota_status()).local_used == 501
        with pytest.raises(PolicyRefusedError):
            await channel.multicast(to(text="again"), recipients)
        await channel.aclose()


async def test_send_all_limits_to_five_messages(line: Setup) -> None:
    await line.befriend()
    with pytest.raises(MessageInvalidError, match="1 to 5"):
        await line.channel.send_all([to(text=str(i)) for i in range(6)])
    await line.channel.send_all([to(text=str(i)) for i in range(5)])
    assert len(line.api.replies[-1]["messages"]) == 5


async def test_message_objects(line: Setup) -> None:
    await line.befriend(reply_token=False)
    buttons = Interactive(
        body="Rate us", header="Survey", buttons=[Button(id="r=5", title="Great")]
    )
    await line.channel.send(to(interactive=buttons))
    assert line.api.pushes[-1]["messages"] == [
        {
            "type": "template",
            "altText": "Rate us",
            "template": {
                "type": "buttons",
                "text": "Rate us",
                "title": "Survey",
                "actions": [
                    {"type": "postback", "label": "Great", "data": "r=5", "displayText": "Great"}
                ],
            },
        }
    ]
    rows = [ListRow(id="s", title="Small"), ListRow(id="m", title="Medium")]
    await line.channel.send(
        to(interactive=Interactive(body="Size?", sections=[ListSection(rows=rows)]))
    )
    quick = line.api.pushes[-1]["messages"][0]["quickReply"]["items"]  # type: ignore[index]
    assert [item["action"]["data"] for item in quick] == ["s", "m"]
    image = Media(kind=MediaKind.IMAGE, url="https://cdn.example.com/a.jpg")
    await line.channel.send(to(media=[image]))
    assert line.api.pushes[-1]["messages"][0]["previewImageUrl"] == "https://cdn.example.com/a.jpg"  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ({"media": [Media(kind=MediaKind.IMAGE, data=b"x")]}, MessageInvalidError),
        (
            {"media": [Media(kind=MediaKind.VIDEO, url="https://cdn.example.com/v.mp4")]},
            MessageInvalidError,
        ),
        ({"template": {"name": "t"}}, UnsupportedMessageError),
        ({"text": "x" * 5001}, MessageInvalidError),
        (
            {
                "interactive": Interactive(
                    body="b", buttons=[Button(id=str(i), title="t") for i in range(5)]
                )
            },
            MessageInvalidError,
        ),
    ],
)
async def test_invalid_messages_are_refused_locally(
    line: Setup, content: dict[str, object], error: type
) -> None:
    await line.befriend()
    with pytest.raises(error):
        await line.channel.send(to(**content))
    assert not line.api.replies and not line.api.pushes


async def test_content_download_and_no_upload(line: Setup) -> None:
    line.api.content["354718705033693859"] = b"jpeg bytes"
    await line.receive(kit.SAMPLES[1].body)
    state_media = Media(kind=MediaKind.IMAGE, provider_id="354718705033693859")
    assert await line.channel.download_media(state_media) == b"jpeg bytes"
    with pytest.raises(UnsupportedMessageError, match="no media upload"):
        await line.channel.upload_media(state_media)


async def test_verification_request_has_no_events(line: Setup) -> None:
    result = await line.channel.receive(
        kit.sign(kit.webhook(json.dumps({"destination": "U", "events": []}).encode()))
    )
    assert result.events == [] and result.response.status == 200


_EVENTS = [event for sample in kit.SAMPLES for event in json.loads(sample.body)["events"]]


@settings(max_examples=300, deadline=None)
@given(event=broken(_EVENTS))
def test_a_broken_event_is_kept_as_unknown_and_spares_its_batch(event: dict[str, Any]) -> None:
    good = _EVENTS[0]
    body = json.dumps({"destination": "U1", "events": [event, good]}).encode()
    events = parse_webhook(body, Inbound(LineChannel.name, FakeClock().now()))
    assert len(events) == 2 and not isinstance(events[1], UnknownEvent)
    assert events[0].raw == event
