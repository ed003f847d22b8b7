"""The conversation history (chatbridge.conversations): one behavioural suite, run on
SQLite and on a real PostgreSQL server, plus a channel recording into a history."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatbridge.clock import FakeClock
from chatbridge.conversations import Conversation, ConversationState, EntryKind, History, Note
from chatbridge.errors import HistoryError, PolicyRefusedError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Direction,
    Event,
    Followed,
    Identity,
    Message,
    MessageKind,
    MessageReceived,
    OptedOut,
    ProviderErrorInfo,
    Receipt,
    StatusUpdate,
)
from chatbridge.policy import Decision, RefusalReason
from chatbridge.recorder import Recorder, SendOutcome, SendRecord
from chatbridge.whatsapp import kit as whatsapp_kit
from chatbridge.whatsapp.channel import WhatsAppChannel
from chatbridge.whatsapp.fake import FakeWhatsAppAPI

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)  # a Tuesday, ISO week 49
WA = Identity(channel="whatsapp", address="15551234567")
SMS = Identity(channel="sms", address="+15551234567")
EMAIL = Identity(channel="email", address="ana@example.com")
LINE = Identity(channel="line", address="U4af4980629")
OTHER = Identity(channel="whatsapp", address="4915112345678")

_ids = itertools.count()


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def received(who: Identity, text: str, at: datetime, **message: Any) -> MessageReceived:
    return MessageReceived(
        channel=who.channel,
        event_id=f"in{next(_ids)}",
        contact=who,
        timestamp=at,
        message=Message(contact=who, direction=Direction.INBOUND, text=text, **message),
    )


def status(
    who: Identity, message_id: str, state: str, at: datetime, *errors: ProviderErrorInfo
) -> StatusUpdate:
    return StatusUpdate(
        channel=who.channel,
        event_id=f"st{next(_ids)}",
        contact=who,
        timestamp=at,
        message_id=message_id,
        state=DeliveryState(state),
        errors=list(errors),
    )


def send(
    who: Identity,
    key: str,
    outcome: SendOutcome,
    at: datetime,
    *,
    text: str = "It ships today",
    message_id: str | None = None,
    decision: Decision | None = None,
    error: str | None = None,
) -> SendRecord:
    receipt = None
    if message_id is not None:
        receipt = Receipt(channel=who.channel, contact=who, message_id=message_id, accepted_at=at)
    message = Message(contact=who, text=text)
    return SendRecord(key, [message], None, outcome, at, receipt, decision, error)


def refusal(who: Identity, reason: RefusalReason = RefusalReason.WINDOW_CLOSED) -> Decision:
    return Decision(
        allowed=False, channel=who.channel, contact=who, kind=MessageKind.TEXT, reason=reason
    )


@dataclass
class Desk:
    """A history and its clock, with the customer's and the team's moves at a time."""

    history: History
    clock: FakeClock

    async def inbound(self, who: Identity, text: str, at: datetime, **message: Any) -> None:
        self.clock.set(at)
        await self.history.record_events([received(who, text, at, **message)])

    async def reply(
        self, who: Identity, text: str, at: datetime, message_id: str | None = None
    ) -> str:
        """A send recorded the way a channel does: pending, then sent; its provider id."""
        self.clock.set(at)
        key = f"k{next(_ids)}"
        message_id = message_id or f"mid{next(_ids)}"
        await self.history.record_send(send(who, key, SendOutcome.PENDING, at, text=text))
        await self.history.record_send(
            send(who, key, SendOutcome.SENT, at, text=text, message_id=message_id)
        )
        return message_id

    async def texts(self, who: Identity) -> list[str | None]:
        return [entry.text for entry in (await self.history.timeline(who)).entries]


async def reread(history: History, conversation_id: str) -> Conversation:
    found = await history.conversation(conversation_id)
    assert found is not None
    return found


async def identities(history: History, who: Identity) -> set[Identity]:
    customer = await history.customer(who)
    assert customer is not None
    return set(customer.identities)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def desk(history: History, clock: FakeClock) -> Desk:
    return Desk(history, clock)


# -- inbound ----------------------------------------------------------------------------


async def test_a_message_makes_a_customer_and_an_open_conversation_once(history: History) -> None:
    event = received(WA, "Where is my order?", T0).model_copy(update={"contact_name": "Ana"})
    await history.record_events([event])
    await history.record_events([event])  # a redelivered webhook

    customer = await history.customer(WA)
    assert customer is not None
    assert (customer.name, customer.identities) == ("Ana", [WA])
    [conversation] = await history.conversations(customer=WA)
    assert conversation.state is ConversationState.OPEN
    assert (conversation.channel, conversation.opened_at) == ("whatsapp", T0)
    [entry] = (await history.timeline(WA)).entries
    assert (entry.kind, entry.direction, entry.channel) == (
        EntryKind.MESSAGE,
        "inbound",
        "whatsapp",
    )
    assert entry.message is not None and entry.message.text == "Where is my order?"
    assert (entry.customer_id, entry.conversation_id) == (customer.id, conversation.id)


async def test_the_same_event_id_on_another_channel_is_another_event(history: History) -> None:
    event = received(WA, "hi", T0)
    on_line = received(LINE, "hi", T0).model_copy(update={"event_id": event.event_id})
    await history.record_events([event, on_line])
    assert len((await history.timeline(WA)).entries) == 1
    assert len((await history.timeline(LINE)).entries) == 1


async def test_an_event_without_contact_is_not_recorded(history: History) -> None:
    nobody = received(WA, "hi", T0).model_copy(update={"contact": None})
    await history.record_events([nobody, Followed(channel="line", event_id="f", timestamp=T0)])
    assert await history.customer(WA) is None
    assert await history.conversations() == []
    assert (await history.timeline(WA)).entries == []


async def test_a_message_dated_after_now_counts_as_now(history: History) -> None:
    """A sender's clock ahead of ours (as for the service window)."""
    await history.record_events([received(WA, "from the future", minutes(5))])
    [entry] = (await history.timeline(WA)).entries
    assert entry.at == T0


async def test_other_events_are_timeline_events(desk: Desk, history: History) -> None:
    await history.record_events(
        [Followed(channel="line", event_id="f1", contact=LINE, timestamp=T0)]
    )
    await desk.inbound(LINE, "hello", minutes(1))
    desk.clock.set(minutes(3))
    await history.record_events(
        [
            ChannelEvent(
                channel="line", event_id="p1", contact=LINE, timestamp=minutes(2), name="postback"
            ),
            OptedOut(channel="line", event_id="o1", contact=LINE, timestamp=minutes(3), reason="x"),
        ]
    )
    entries = (await history.timeline(LINE)).entries
    assert [e.kind for e in entries] == ["event", "message", "event", "event"]
    assert [e.event and e.event.type for e in entries] == [
        "follow",
        None,
        "channel_event",
        "opt_out",
    ]
    [conversation] = await history.conversations(customer=LINE)
    # an event joins the conversation under way, if any
    assert [e.conversation_id for e in entries] == [None, *[conversation.id] * 3]


# -- outbound ---------------------------------------------------------------------------


async def test_a_send_pending_then_sent_is_one_entry(history: History) -> None:
    await history.record_send(send(WA, "k1", SendOutcome.PENDING, T0))
    [pending] = (await history.timeline(WA)).entries
    assert (pending.outcome, pending.message_id) == (SendOutcome.PENDING, None)

    await history.record_send(send(WA, "k1", SendOutcome.SENT, T0, message_id="wamid.1"))
    [sent] = (await history.timeline(WA)).entries
    assert (sent.id, sent.outcome, sent.message_id) == (pending.id, SendOutcome.SENT, "wamid.1")
    assert (sent.direction, sent.text) == (Direction.OUTBOUND, "It ships today")
    assert sent.message == Message(contact=WA, text="It ships today")
    # the team wrote first: a conversation waiting for the customer
    [conversation] = await history.conversations(customer=WA)
    assert conversation.state is ConversationState.PENDING
    assert not conversation.opened_by_customer and conversation.first_response_at is None


async def test_a_refusal_is_recorded_without_a_pending_record(history: History) -> None:
    refused = send(WA, "k1", SendOutcome.REFUSED, T0, decision=refusal(WA))
    await history.record_send(refused)
    [entry] = (await history.timeline(WA)).entries
    assert (entry.outcome, entry.reason) == (SendOutcome.REFUSED, "window_closed")
    assert entry.conversation_id is None and await history.conversations() == []


async def test_a_retry_with_the_same_key_is_the_same_entry(history: History) -> None:
    await history.record_send(send(WA, "k1", SendOutcome.PENDING, T0))
    timeout = "DeliveryUnknownError: read timeout"
    await history.record_send(send(WA, "k1", SendOutcome.UNKNOWN, T0, error=timeout))
    [unknown] = (await history.timeline(WA)).entries
    assert (unknown.outcome, unknown.reason) == (SendOutcome.UNKNOWN, timeout)

    await history.record_send(send(WA, "k1", SendOutcome.PENDING, minutes(1)))
    await history.record_send(send(WA, "k1", SendOutcome.SENT, minutes(1), message_id="w1"))
    [entry] = (await history.timeline(WA)).entries
    assert (entry.id, entry.outcome, entry.reason, entry.message_id) == (
        unknown.id,
        SendOutcome.SENT,
        None,
        "w1",
    )
    # A message once sent stays sent, whatever a later retry with its key records.
    await history.record_send(send(WA, "k1", SendOutcome.PENDING, minutes(2)))
    await history.record_send(send(WA, "k1", SendOutcome.UNKNOWN, minutes(2), error=timeout))
    [again] = (await history.timeline(WA)).entries
    assert (again.outcome, again.message_id) == (SendOutcome.SENT, "w1")


# -- delivery ---------------------------------------------------------------------------


async def delivery_of(history: History, who: Identity) -> Any:
    [entry] = (await history.timeline(who)).entries
    return entry.delivery


async def test_statuses_update_the_delivery_with_a_time_per_state(
    desk: Desk, history: History
) -> None:
    sent = await desk.reply(WA, "hi", T0)
    assert await delivery_of(history, WA) is None  # nothing reported yet
    for state, minute in (("sent", 1), ("delivered", 2), ("read", 3)):
        await history.record_events([status(WA, sent, state, minutes(minute))])
    delivery = await delivery_of(history, WA)
    assert delivery.state is DeliveryState.READ
    assert (delivery.sent_at, delivery.delivered_at, delivery.read_at) == (
        minutes(1),
        minutes(2),
        minutes(3),
    )
    assert delivery.played_at is None and delivery.failed_at is None


async def test_read_before_delivered_stays_read(desk: Desk, history: History) -> None:
    sent = await desk.reply(WA, "hi", T0)
    await history.record_events([status(WA, sent, "read", minutes(3))])
    await history.record_events([status(WA, sent, "delivered", minutes(2))])
    await history.record_events([status(WA, sent, "delivered", minutes(9))])  # a repeat
    delivery = await delivery_of(history, WA)
    assert delivery.state is DeliveryState.READ
    assert (delivery.delivered_at, delivery.read_at) == (minutes(2), minutes(3))


async def test_a_voice_message_played(desk: Desk, history: History) -> None:
    sent = await desk.reply(WA, "hi", T0)
    await history.record_events([status(WA, sent, "played", minutes(4))])
    delivery = await delivery_of(history, WA)
    assert (delivery.state, delivery.played_at) == (DeliveryState.PLAYED, minutes(4))


async def test_a_failure_keeps_the_providers_errors(desk: Desk, history: History) -> None:
    sent = await desk.reply(WA, "hi", T0)
    error = ProviderErrorInfo(code="131026", message="Message undeliverable", details="gone")
    await history.record_events([status(WA, sent, "sent", minutes(1))])
    await history.record_events([status(WA, sent, "failed", minutes(2), error)])
    delivery = await delivery_of(history, WA)
    assert (delivery.state, delivery.failed_at, delivery.errors) == (
        DeliveryState.FAILED,
        minutes(2),
        [error],
    )


async def test_a_failure_after_delivery_does_not_undo_it(desk: Desk, history: History) -> None:
    sent = await desk.reply(WA, "hi", T0)
    error = ProviderErrorInfo(code="30008", message="Unknown error")
    await history.record_events([status(WA, sent, "delivered", minutes(1))])
    await history.record_events([status(WA, sent, "failed", minutes(2), error)])
    delivery = await delivery_of(history, WA)
    assert (delivery.state, delivery.failed_at) == (DeliveryState.DELIVERED, minutes(2))


async def test_a_status_before_the_send_is_recorded_still_counts(history: History) -> None:
    """The provider's webhook can beat our own write of the send's outcome."""
    await history.record_send(send(WA, "k1", SendOutcome.PENDING, T0))
    await history.record_events([status(WA, "wamid.fast", "delivered", minutes(1))])
    await history.record_send(send(WA, "k1", SendOutcome.SENT, T0, message_id="wamid.fast"))
    delivery = await delivery_of(history, WA)
    assert (delivery.state, delivery.delivered_at) == (DeliveryState.DELIVERED, minutes(1))


async def test_a_status_without_contact_still_counts(desk: Desk, history: History) -> None:
    """Twilio's status callback may lack "To": the message id is what identifies it."""
    sent = await desk.reply(SMS, "hi", T0)
    anonymous = status(SMS, sent, "delivered", minutes(1)).model_copy(update={"contact": None})
    await history.record_events([anonymous])
    assert (await delivery_of(history, SMS)).state is DeliveryState.DELIVERED


async def test_statuses_apply_per_channel(desk: Desk, history: History) -> None:
    sent = await desk.reply(WA, "hi", T0, message_id="same-id")
    await history.record_events([status(SMS, sent, "read", minutes(1))])
    assert await delivery_of(history, WA) is None


# -- identity linking -------------------------------------------------------------------


async def test_linking_interleaves_the_timelines_and_unlinking_splits_them(
    desk: Desk, history: History
) -> None:
    await desk.inbound(WA, "wa 1", minutes(0))
    await desk.inbound(EMAIL, "email 2", minutes(1))
    await desk.inbound(WA, "wa 3", minutes(2))
    await history.note((await history.conversations(customer=EMAIL))[0].id, "note 4")
    before = {who: await history.timeline(who) for who in (WA, EMAIL)}

    customer = await history.link(WA, EMAIL)
    assert customer.identities == [WA, EMAIL]
    assert await desk.texts(EMAIL) == await desk.texts(WA) == ["wa 1", "email 2", "wa 3", "note 4"]
    assert len(await history.conversations(customer=EMAIL)) == 2

    alone = await history.unlink(EMAIL)
    assert alone is not None and alone.identities == [EMAIL]
    assert {who: await history.timeline(who) for who in (WA, EMAIL)} == before


async def test_a_merged_customer_shows_both_tags_and_fields(history: History) -> None:
    await history.record_events([received(WA, "hi", T0), received(EMAIL, "hi", T0)])
    wa, email = [await history.customer(who) for who in (WA, EMAIL)]
    assert wa is not None and email is not None
    await history.tag(wa.id, "vip")
    await history.tag(email.id, "newsletter")
    await history.update_customer(wa.id, fields={"plan": "gold"})
    await history.update_customer(email.id, language="pt", fields={"plan": "free", "city": "Rio"})

    merged = await history.link(WA, EMAIL)
    assert merged.id == wa.id and merged.tags == ["newsletter", "vip"]
    assert merged.language == "pt"
    assert merged.fields == {"plan": "gold", "city": "Rio"}  # the survivor's value wins
    assert await history.customer(email.id) == merged


async def test_the_same_phone_number_is_suggested(history: History) -> None:
    await history.record_events([received(SMS, "hi", T0), received(WA, "hi", T0)])
    await history.record_events([received(OTHER, "hi", T0)])
    [suggestion] = await history.suggestions()
    assert {suggestion.identity, suggestion.other} == {SMS, WA}
    assert suggestion.reason == "same phone number"
    assert await history.customer_id(SMS) != await history.customer_id(WA)

    customer = await history.link(suggestion.identity, suggestion.other)
    assert set(customer.identities) == {SMS, WA}
    assert await history.suggestions() == []


async def test_the_same_phone_number_is_linked_with_auto(
    make_history: Callable[..., History],
) -> None:
    history = make_history(link="auto")
    await history.record_events([received(SMS, "by sms", T0)])
    await history.record_events([received(WA, "by whatsapp", T0)])
    customer = await history.customer(WA)
    assert customer is not None and set(customer.identities) == {SMS, WA}
    assert await history.suggestions() == []
    texts = [e.text for e in (await history.timeline(SMS)).entries]
    assert texts == ["by sms", "by whatsapp"]


async def test_no_phone_number_linking_when_off(make_history: Callable[..., History]) -> None:
    history = make_history(link="off")
    await history.record_events([received(SMS, "hi", T0), received(WA, "hi", T0)])
    assert await history.suggestions() == []
    assert await history.customer_id(SMS) != await history.customer_id(WA)


async def test_a_near_match_is_never_suggested(history: History) -> None:
    near = Identity(channel="sms", address="+15551234568")
    await history.record_events([received(near, "hi", T0), received(WA, "hi", T0)])
    assert await history.suggestions() == []


@pytest.mark.parametrize("policy", ["suggest", "auto", "off"])
async def test_a_confirmed_address(make_history: Callable[..., History], policy: str) -> None:
    """Linked with "auto", else suggested: "off" is about phone numbers only."""
    history = make_history(link=policy)
    await history.record_events([received(WA, "hi", T0)])
    await history.confirmed(WA, EMAIL)
    linked = await history.customer_id(EMAIL) == await history.customer_id(WA)
    suggestions = [(s.identity, s.other, s.reason) for s in await history.suggestions()]
    if policy == "auto":
        assert linked and suggestions == []
    else:
        assert not linked and suggestions == [(WA, EMAIL, "confirmed")]


async def test_linking_twice_changes_nothing(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    await desk.inbound(EMAIL, "hello", minutes(1))
    first = await history.link(WA, EMAIL)
    timeline = await history.timeline(WA)
    assert await history.link(WA, EMAIL) == first
    assert await history.link(EMAIL, WA) == first
    assert await history.timeline(WA) == timeline


async def test_a_chain_of_merges_unlinks_by_the_customer_merged_in(
    desk: Desk, history: History
) -> None:
    """D merged into B, then B into A: unlinking B's identity takes B back out with D
    (which came with it); unlinking D's then takes D out of B."""
    a, b, d = WA, EMAIL, LINE
    for minute, who in enumerate((a, b, d)):
        await desk.inbound(who, f"from {who.channel}", minutes(minute))
    await history.link(b, d)
    customer = await history.link(a, b)
    assert customer.identities == [a, b, d]

    back = await history.unlink(b)
    assert back is not None and back.identities == [b, d]
    assert await desk.texts(b) == ["from email", "from line"]
    assert await desk.texts(a) == ["from whatsapp"]

    alone = await history.unlink(d)
    assert alone is not None and alone.identities == [d]
    assert await desk.texts(b) == ["from email"]


async def test_unlinking_an_identity_through_a_customer_without_identities(
    desk: Desk, history: History
) -> None:
    """M lost its own identity (unlinked), then what was merged into M went into H, and
    H into Z: unlinking H's identity takes everything that came with H back out, M's
    part included."""
    z, h, m, y = WA, EMAIL, LINE, OTHER
    for minute, who in enumerate((z, h, m, y)):
        await desk.inbound(who, who.channel + who.address, minutes(minute))
    await history.link(m, y)
    await history.unlink(m)  # m goes; M keeps y
    await history.link(h, y)  # M (with y) into H
    await history.link(z, h)  # H into Z
    back = await history.unlink(h)
    assert back is not None and await identities(history, h) == {h, y}
    assert await identities(history, z) == {z}


async def test_unlinking_a_customers_only_identity_changes_nothing(
    desk: Desk, history: History
) -> None:
    await desk.inbound(WA, "hi", T0)
    await history.tag(await history.customer_id(WA) or "", "vip")
    before = await history.customer(WA)
    timeline = await history.timeline(WA)
    assert await history.unlink(WA) == before
    assert await history.timeline(WA) == timeline
    assert len(await history.conversations(customer=WA)) == 1
    assert await history.unlink(Identity(channel="line", address="nobody")) is None


# -- conversations ----------------------------------------------------------------------


async def test_a_conversation_goes_pending_and_resolved(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    [conversation] = await history.conversations(customer=WA)
    await history.set_state(conversation.id, ConversationState.PENDING)
    assert (await reread(history, conversation.id)).state == "pending"

    desk.clock.set(minutes(30))
    await history.resolve(conversation.id)
    resolved = await history.conversation(conversation.id)
    assert resolved is not None
    assert (resolved.state, resolved.resolved_at) == (ConversationState.RESOLVED, minutes(30))
    await history.set_state(conversation.id, ConversationState.OPEN)
    assert (await reread(history, conversation.id)).resolved_at is None


async def test_the_customer_reopens_a_resolved_conversation_within_reopen_within(
    desk: Desk, history: History
) -> None:
    await desk.inbound(WA, "hi", T0)
    [conversation] = await history.conversations(customer=WA)
    await history.resolve(conversation.id)

    await desk.inbound(WA, "one more thing", T0 + timedelta(days=6))
    [reopened] = await history.conversations(customer=WA)
    assert reopened.id == conversation.id
    assert (reopened.state, reopened.resolved_at) == (ConversationState.OPEN, None)

    await history.resolve(conversation.id)
    await desk.inbound(WA, "new question", T0 + timedelta(days=14))
    latest, old = await history.conversations(customer=WA)
    assert old.id == conversation.id and old.state is ConversationState.RESOLVED
    assert latest.state is ConversationState.OPEN


async def test_a_customers_answer_reopens_a_pending_conversation(
    desk: Desk, history: History
) -> None:
    await desk.reply(WA, "Your order shipped", T0)  # the team writes first
    await desk.inbound(WA, "thanks, when does it arrive?", minutes(5))
    [conversation] = await history.conversations(customer=WA)
    assert conversation.state is ConversationState.OPEN and not conversation.opened_by_customer


async def test_a_conversation_survives_a_channel_switch(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "Where is my order?", T0)
    await history.link(WA, EMAIL)
    await desk.reply(EMAIL, "It ships today", minutes(10), message_id="m1@shop.example")
    await desk.inbound(EMAIL, "Thanks!", minutes(20), thread="m1@shop.example")
    [conversation] = await history.conversations(customer=WA)
    assert conversation.channel == "email"
    assert conversation.first_response_at == minutes(10)
    entries = (await history.timeline(EMAIL)).entries
    assert [e.channel for e in entries] == ["whatsapp", "email", "email"]
    assert {e.conversation_id for e in entries} == {conversation.id}


async def test_an_email_reply_joins_the_conversation_of_its_thread(
    desk: Desk, history: History
) -> None:
    await desk.inbound(EMAIL, "Where is my order?", T0, thread="q1@customer.example")
    [first] = await history.conversations(customer=EMAIL)
    await desk.reply(EMAIL, "It ships today", minutes(5), message_id="m1@shop.example")
    await history.resolve(first.id)
    await desk.inbound(EMAIL, "Another question", T0 + timedelta(days=10))  # a new case
    second, _ = await history.conversations(customer=EMAIL)
    assert second.id != first.id

    await desk.inbound(
        EMAIL, "Re: it never came", T0 + timedelta(days=11), thread="m1@shop.example"
    )
    assert (await history.timeline(EMAIL)).entries[-1].conversation_id == first.id
    assert (await reread(history, first.id)).state is ConversationState.OPEN


async def test_assignee_and_priority(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    [conversation] = await history.conversations()
    await history.assign(conversation.id, "bob")
    await history.set_priority(conversation.id, 2)
    changed = await history.conversation(conversation.id)
    assert changed is not None and (changed.assignee, changed.priority) == ("bob", 2)
    await history.assign(conversation.id, None)
    assert (await reread(history, conversation.id)).assignee is None


async def test_conversations_by_state_tag_assignee_and_customer(
    desk: Desk, history: History
) -> None:
    await desk.inbound(WA, "a", minutes(0))
    await desk.inbound(EMAIL, "b", minutes(1))
    await desk.inbound(LINE, "c", minutes(2))
    [line, email, wa] = await history.conversations()  # latest activity first
    assert [c.channel for c in (line, email, wa)] == ["line", "email", "whatsapp"]
    await history.tag(wa.id, "refund")
    await history.assign(email.id, "bob")
    await history.resolve(line.id)

    async def ids(**query: Any) -> list[str]:
        return [c.id for c in await history.conversations(**query)]

    assert await ids(state=ConversationState.OPEN) == [email.id, wa.id]
    assert await ids(state=ConversationState.RESOLVED) == [line.id]
    assert await ids(tag="refund") == [wa.id]
    assert await ids(assignee="bob") == [email.id]
    assert await ids(customer=LINE) == [line.id]
    assert await ids(customer=wa.customer_id) == [wa.id]
    assert await ids(state=ConversationState.OPEN, assignee="bob", tag="refund") == []
    assert await ids(limit=1) == [line.id]


async def test_an_unknown_conversation(history: History) -> None:
    assert await history.conversation("con_nope") is None
    for change in (
        history.resolve("con_nope"),
        history.set_state("con_nope", ConversationState.PENDING),
        history.assign("con_nope", "bob"),
        history.set_priority("con_nope", 1),
        history.note("con_nope", "lost"),
    ):
        with pytest.raises(LookupError):
            await change


# -- notes, tags, customer fields -------------------------------------------------------


async def test_notes_on_a_conversation_and_a_customer(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    [conversation] = await history.conversations()
    desk.clock.set(minutes(1))
    await history.note(conversation.id, Note(text="VIP, be nice", author="bob"))
    desk.clock.set(minutes(2))
    await history.note(conversation.customer_id, "prefers email")
    entries = (await history.timeline(WA)).entries
    assert [e.kind for e in entries] == ["message", "note", "note"]
    assert [e.note for e in entries[1:]] == [
        Note(text="VIP, be nice", author="bob"),
        Note(text="prefers email"),
    ]
    assert [e.conversation_id for e in entries[1:]] == [conversation.id, None]
    assert [e.at for e in entries] == [T0, minutes(1), minutes(2)]


async def test_a_note_on_a_merged_customer_shows_in_the_merged_timeline(
    desk: Desk, history: History
) -> None:
    await desk.inbound(WA, "hi", T0)
    await desk.inbound(EMAIL, "hello", minutes(1))
    email_id = await history.customer_id(EMAIL)
    assert email_id is not None
    await history.link(WA, EMAIL)
    desk.clock.set(minutes(2))
    await history.note(email_id, "about the email customer")
    assert await desk.texts(WA) == ["hi", "hello", "about the email customer"]
    assert await history.timeline(email_id) == await history.timeline(WA)  # by its old id
    assert await history.conversations(customer=email_id) == await history.conversations(
        customer=WA
    )
    await history.unlink(EMAIL)  # the note goes back with the customer it was about
    assert await desk.texts(EMAIL) == ["hello", "about the email customer"]


async def test_tags_on_customers_and_conversations(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    [conversation] = await history.conversations()
    await history.tag(conversation.customer_id, "vip", "b2b")
    await history.tag(conversation.customer_id, "vip")
    await history.tag(conversation.id, "refund", "urgent")
    await history.untag(conversation.id, "urgent")
    customer = await history.customer(WA)
    assert customer is not None and customer.tags == ["b2b", "vip"]
    assert (await reread(history, conversation.id)).tags == ["refund"]
    with pytest.raises(LookupError, match="no customer"):
        await history.tag("whatsapp:15551234567", "vip")
    with pytest.raises(LookupError, match="no customer"):
        await history.tag("cus_unknown", "vip")


async def test_update_customer(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    customer_id = await history.customer_id(WA)
    assert customer_id is not None
    await history.update_customer(
        customer_id, name="Ana", language="pt-BR", fields={"plan": "gold", "seats": 3}
    )
    await history.update_customer(customer_id, fields={"plan": None, "city": "Rio"})
    customer = await history.customer(WA)
    assert customer is not None
    assert (customer.name, customer.language) == ("Ana", "pt-BR")
    assert customer.fields == {"seats": 3, "city": "Rio"}
    with pytest.raises(LookupError):
        await history.update_customer("cus_nope", fields={"plan": "gold"})


# -- timeline and search ----------------------------------------------------------------


async def test_the_timeline_pages_back_through_every_entry_once(
    history: History, clock: FakeClock
) -> None:
    # three entries a second, so that pages also split entries of the same time
    events = [received(WA, f"message {n}", T0 + timedelta(seconds=n // 3)) for n in range(120)]
    clock.set(minutes(60))
    await history.record_events(events)
    pages = [await history.timeline(WA, limit=50)]
    while pages[-1].before is not None:
        pages.append(await history.timeline(WA, limit=50, before=pages[-1].before))
    assert [len(page.entries) for page in pages] == [50, 50, 20]
    entries = [entry for page in reversed(pages) for entry in page.entries]
    assert [e.text for e in entries] == [f"message {n}" for n in range(120)]
    for cursor in ("yesterday", "-1.5", f"{2**63}.1", "1.2.3"):
        with pytest.raises(ValueError, match="cursor"):
            await history.timeline(WA, before=cursor)
    for limit in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            await history.timeline(WA, limit=limit)
        with pytest.raises(ValueError, match="at least 1"):
            await history.search("message", limit=limit)


async def test_search_finds_all_the_words(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "Where is my ORDER? It's late", T0)
    await desk.reply(WA, "Your order ships today", minutes(1))
    await desk.inbound(EMAIL, "My order is broken", minutes(2))
    found = await history.search("order")
    assert [e.text for e in found] == [
        "My order is broken",
        "Your order ships today",
        "Where is my ORDER? It's late",
    ]
    assert [e.text for e in await history.search("late where")] == ["Where is my ORDER? It's late"]
    assert await history.search("order refund") == []
    mine = await history.search("order", customer=EMAIL)
    assert [e.text for e in mine] == ["My order is broken"]


async def test_search_finds_notes(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", T0)
    customer_id = await history.customer_id(WA)
    assert customer_id is not None
    await history.note(customer_id, "asked for a refund")
    [found] = await history.search("refund")
    assert found.kind is EntryKind.NOTE


async def test_search_takes_any_text(desk: Desk, history: History) -> None:
    """Quotes and operators are words like others, never query syntax."""
    await desk.inbound(WA, "Tim O'Reilly's order", T0)
    for words in ("o'reilly", '"order"', "order)", "order*", "order:"):
        assert len(await history.search(words)) == 1, words
    for words in ('"', "'", "NEAR(", "a AND", "*", "-x", "^", "(", "\\", "%?", "", "order OR x"):
        assert await history.search(words) == [], words


# -- metrics ----------------------------------------------------------------------------


async def test_report_metrics(desk: Desk, history: History) -> None:
    ana, bob = WA, OTHER
    # day 1, WhatsApp: two conversations
    await desk.inbound(ana, "where is my order?", minutes(0))
    first = await desk.reply(ana, "it ships today", minutes(10))  # answered in 600 s
    await desk.inbound(bob, "refund please", minutes(0))
    await desk.inbound(bob, "hello?", minutes(20))
    second = await desk.reply(bob, "done", minutes(30))  # answered in 1800 s
    refused = send(bob, "late", SendOutcome.REFUSED, minutes(40), decision=refusal(bob))
    await history.record_send(refused)
    for who, message_id, state in (
        (ana, first, "read"),
        (ana, first, "delivered"),
        (bob, second, "delivered"),
    ):
        await history.record_events([status(who, message_id, state, minutes(50))])
    ana_case, bob_case = [(await history.conversations(customer=who))[0] for who in (ana, bob)]
    desk.clock.set(minutes(60))
    await history.resolve(ana_case.id)  # resolved after 3600 s
    desk.clock.set(minutes(120))
    await history.resolve(bob_case.id)  # after 7200 s
    # day 2, email: one conversation, not answered
    await desk.inbound(EMAIL, "hi", T0 + timedelta(days=1))

    rows = await history.report(T0, T0 + timedelta(days=2))
    assert [(row.period, row.channel) for row in rows] == [
        ("2026-12-01", "whatsapp"),
        ("2026-12-02", "email"),
    ]
    whatsapp, email = rows
    assert (whatsapp.conversations, whatsapp.first_response_median) == (2, 1200)
    assert (whatsapp.resolved, whatsapp.resolution_median) == (2, 5400)
    assert whatsapp.messages_per_conversation == 2.5  # (2 + 3) / 2: the refusal is none
    assert (whatsapp.sent, whatsapp.window_misses, whatsapp.failed) == (2, 1, 0)
    assert (whatsapp.delivery_rate, whatsapp.read_rate) == (1.0, 0.5)
    assert (email.conversations, email.first_response_median, email.sent) == (1, None, 0)
    assert email.delivery_rate is None and email.messages_per_conversation == 1

    weeks = await history.report(T0, T0 + timedelta(days=2), period="week")
    assert [(row.period, row.channel, row.conversations) for row in weeks] == [
        ("2026-W49", "email", 1),
        ("2026-W49", "whatsapp", 2),
    ]
    months = await history.report(T0, T0 + timedelta(days=2), period="month")
    assert [row.period for row in months] == ["2026-12", "2026-12"]
    assert await history.report(T0 + timedelta(days=5), T0 + timedelta(days=6)) == []


async def test_report_periods_are_in_the_timezone(desk: Desk, history: History) -> None:
    await desk.inbound(WA, "hi", datetime(2026, 12, 1, 23, 30, tzinfo=UTC))
    for timezone, day in (
        ("UTC", "2026-12-01"),
        ("Asia/Tokyo", "2026-12-02"),
        ("America/Los_Angeles", "2026-12-01"),
    ):
        [row] = await history.report(T0, T0 + timedelta(days=2), timezone=timezone)
        assert (row.period, row.conversations) == (day, 1)


async def test_report_counts_failed_sends(desk: Desk, history: History) -> None:
    failed_later = await desk.reply(WA, "hi", T0)
    error = ProviderErrorInfo(code="131026", message="undeliverable")
    await history.record_events([status(WA, failed_later, "failed", minutes(1), error)])
    await history.record_send(send(WA, "k", SendOutcome.PENDING, minutes(2)))
    await history.record_send(send(WA, "k", SendOutcome.FAILED, minutes(2), error="HTTP 500"))
    [row] = await history.report(T0, T0 + timedelta(days=1))
    assert (row.sent, row.failed, row.delivery_rate, row.read_rate) == (1, 2, 0.0, 0.0)


# -- a channel recording into its history ------------------------------------------------


class Failing:
    """A history whose writes of sends with ``outcome`` fail (a database outage)."""

    def __init__(self, history: History, outcome: SendOutcome) -> None:
        self.history, self.outcome = history, outcome

    async def record_events(self, events: Sequence[Event]) -> None:
        await self.history.record_events(events)

    async def open(self) -> None:
        await self.history.open()

    async def record_send(self, send: SendRecord) -> None:
        if send.outcome is self.outcome:
            raise HistoryError("the history database failed: disk I/O error")
        await self.history.record_send(send)


@dataclass
class WhatsApp:
    """A WhatsApp channel's parts: its history, clock and the fake Cloud API."""

    history: History
    clock: FakeClock
    fake: FakeWhatsAppAPI
    client: httpx.AsyncClient

    def channel(self, history: Recorder | None = None) -> WhatsAppChannel:
        history = history or self.history
        return whatsapp_kit.kit.build(
            {"clock": self.clock, "http_client": self.client, "history": history}
        )

    async def webhook(self, channel: WhatsAppChannel, body: bytes) -> list[Event]:
        kit = whatsapp_kit.kit
        return (await channel.receive(kit.sign(kit.webhook(body), None))).events

    async def customer_writes(self, channel: WhatsAppChannel) -> None:
        await self.webhook(channel, whatsapp_kit.inbound("text", {"body": "Where is my order?"}))


CUSTOMER = Identity(channel="whatsapp", address=whatsapp_kit.CUSTOMER)


@pytest.fixture
async def whatsapp() -> AsyncIterator[WhatsApp]:
    fake = FakeWhatsAppAPI(whatsapp_kit.CONFIG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        clock = FakeClock()  # the kit's webhooks are dated at FAKE_EPOCH
        async with History.sqlite(clock=clock) as history:
            yield WhatsApp(history, clock, fake, client)


async def test_a_channel_records_what_it_receives_and_sends(whatsapp: WhatsApp) -> None:
    channel = whatsapp.channel()
    await whatsapp.customer_writes(channel)
    await whatsapp.customer_writes(channel)  # a redelivery: deduplicated, recorded once
    receipt = await channel.send(Message(contact=CUSTOMER, text="It ships today"))
    assert receipt.message_id is not None
    await whatsapp.webhook(channel, whatsapp_kit.status("read", receipt.message_id))

    whatsapp.clock.advance(timedelta(hours=25))  # the service window closed
    with pytest.raises(PolicyRefusedError):
        await channel.send(Message(contact=CUSTOMER, text="Did it arrive?"))

    inbound, sent, refused = (await whatsapp.history.timeline(CUSTOMER)).entries
    assert (inbound.direction, inbound.text) == ("inbound", "Where is my order?")
    assert (sent.outcome, sent.message_id) == (SendOutcome.SENT, receipt.message_id)
    assert sent.delivery is not None and sent.delivery.state is DeliveryState.READ
    assert (refused.outcome, refused.reason) == (SendOutcome.REFUSED, "window_closed")
    customer = await whatsapp.history.customer(CUSTOMER)
    assert customer is not None and customer.name == "Sheena Nelson"
    assert len(whatsapp.fake.sent) == 1


async def test_a_note_cannot_be_sent(whatsapp: WhatsApp) -> None:
    channel = whatsapp.channel()
    await whatsapp.customer_writes(channel)
    with pytest.raises(TypeError, match="not Note"):
        await channel.send(Note(text="VIP, be nice"))  # type: ignore[arg-type]  # mypy says so too
    assert whatsapp.fake.sent == []
    assert len((await whatsapp.history.timeline(CUSTOMER)).entries) == 1


async def test_no_send_when_its_pending_record_cannot_be_written(whatsapp: WhatsApp) -> None:
    channel = whatsapp.channel(Failing(whatsapp.history, SendOutcome.PENDING))
    await whatsapp.customer_writes(channel)
    with pytest.raises(HistoryError):
        await channel.send(Message(contact=CUSTOMER, text="It ships today"))
    assert whatsapp.fake.requests == []
    assert len((await whatsapp.history.timeline(CUSTOMER)).entries) == 1


async def test_a_sent_message_whose_outcome_cannot_be_written_stays_pending(
    whatsapp: WhatsApp,
) -> None:
    channel = whatsapp.channel(Failing(whatsapp.history, SendOutcome.SENT))
    await whatsapp.customer_writes(channel)
    receipt = await channel.send(Message(contact=CUSTOMER, text="It ships today"))
    assert receipt.message_id and len(whatsapp.fake.sent) == 1
    _, entry = (await whatsapp.history.timeline(CUSTOMER)).entries
    assert (entry.outcome, entry.text) == (SendOutcome.PENDING, "It ships today")


async def test_any_text_is_recorded(desk: Desk, history: History) -> None:
    """NUL (which PostgreSQL text cannot hold), emoji, and a text over what PostgreSQL's
    search indexes (a tsvector holds 1 MB)."""
    long_text = " ".join(f"word{n}" for n in range(200_000))  # 1.4 MB
    await desk.inbound(WA, "nul\x00inside 🙂", T0)
    await desk.inbound(WA, long_text, minutes(1))
    first, second = (await history.timeline(WA)).entries
    assert first.text in ("nul\x00inside 🙂", "nul\ufffdinside 🙂")  # as PostgreSQL stores it
    assert first.message is not None and first.message.text == "nul\x00inside 🙂"  # JSON keeps it
    assert second.text == long_text
    assert [e.id for e in await history.search("word5")] == [second.id]


async def test_nul_in_an_address_or_an_event_id_is_recorded(history: History) -> None:
    """PostgreSQL keeps U+FFFD for NUL: what is read back still matches what was asked."""
    who = Identity(channel="whatsapp", address="1555\x00")
    event = received(who, "hello", T0).model_copy(update={"event_id": "wamid.a\x00b"})
    other = received(WA, "bystander", T0)
    await history.record_events([event])
    await history.record_events([event, other])  # again: recorded before, kept once
    assert [e.text for e in (await history.timeline(who)).entries] == ["hello"]
    assert [e.text for e in (await history.timeline(WA)).entries] == ["bystander"]


async def test_a_reply_token_is_not_recorded(history: History, clock: FakeClock) -> None:
    event = received(LINE, "hi", T0).model_copy(
        update={
            "reply_token": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",
            "raw": {"replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", "type": "message"},
        }
    )
    clock.set(T0)
    await history.record_events([event])
    [entry] = (await history.timeline(LINE)).entries
    assert "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA" not in entry.model_dump_json()


async def test_a_failed_event_forgets_the_marks_of_its_request(whatsapp: WhatsApp) -> None:
    """Two messages in one webhook, the second's recording fails: the provider's retry
    must be taken whole, not have the first dropped as a duplicate."""

    class FailOnce:
        def __init__(self) -> None:
            self.failed = False

        async def record_events(self, events: Sequence[Event]) -> None:
            if not self.failed and any(e.event_id == "wamid.second" for e in events):
                self.failed = True
                raise HistoryError("the history database failed: disk I/O error")
            await whatsapp.history.record_events(events)

        async def record_send(self, send: SendRecord) -> None:
            await whatsapp.history.record_send(send)

        async def open(self) -> None:
            await whatsapp.history.open()

    channel = whatsapp.channel(FailOnce())
    two = whatsapp_kit.inbound("text", {"body": "first"}, id="wamid.first")
    second = whatsapp_kit.inbound("text", {"body": "second"}, id="wamid.second")
    body = _two_messages(two, second)
    with pytest.raises(HistoryError):
        await whatsapp.webhook(channel, body)
    events = await whatsapp.webhook(channel, body)  # the provider retries
    assert [e.event_id for e in events] == ["wamid.first", "wamid.second"]
    entries = (await whatsapp.history.timeline(CUSTOMER)).entries
    assert [e.text for e in entries] == ["first", "second"]


def _two_messages(first: bytes, second: bytes) -> bytes:
    """One WhatsApp webhook carrying the messages of two."""
    import json

    one, two = json.loads(first), json.loads(second)
    value = one["entry"][0]["changes"][0]["value"]
    value["messages"] += two["entry"][0]["changes"][0]["value"]["messages"]
    return json.dumps(one).encode()


async def test_concurrent_links_and_records_lose_nothing(postgres_database: str) -> None:
    """Workers on separate pools record messages while others link (in both directions)
    the identities writing them: every message shows in the linked timeline, and every
    link holds (PostgreSQL: the customer is locked, then read again)."""
    histories = [History.postgres(postgres_database) for _ in range(3)]
    pairs = [
        (
            Identity(channel="whatsapp", address=f"1555000{n:04d}"),
            Identity(channel="email", address=f"c{n}@x.example"),
        )
        for n in range(12)
    ]
    async with anyio.create_task_group() as group:
        for n, (phone, mail) in enumerate(pairs):
            first, second = (phone, mail) if n % 2 else (mail, phone)
            group.start_soon(histories[0].link, first, second)
            group.start_soon(histories[1].link, second, first)
            for who in (phone, mail):
                for k in range(3):
                    group.start_soon(histories[2].record_events, [received(who, f"{who} {k}", T0)])
    for phone, mail in pairs:
        customer = await histories[0].customer(phone)
        assert customer is not None and set(customer.identities) == {phone, mail}
        texts = {e.text for e in (await histories[0].timeline(mail, limit=100)).entries}
        assert texts == {f"{who} {k}" for who in (phone, mail) for k in range(3)}
    for history in histories:
        await history.aclose()


# -- properties -------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

#: What happens to one of two customers: a message in or out, an event, a note, a tag.
moves = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.sampled_from(["inbound", "reply", "event", "note", "tag"]),
        st.integers(0, 5),  # minutes: equal times are common
    ),
    max_size=8,
)


@PROPERTY
@given(moves=moves, keep_first=st.booleans())
async def test_link_then_unlink_gives_both_timelines_back(
    history: History, clock: FakeClock, moves: list[tuple[str, str, int]], keep_first: bool
) -> None:
    # every example has customers of its own, in the test's one database
    n = next(_ids)
    who = {
        "a": Identity(channel="whatsapp", address=f"a{n}"),
        "b": Identity(channel="email", address=f"b{n}@example.com"),
    }
    desk = Desk(history, clock)
    for name in ("a", "b"):
        await desk.inbound(who[name], "hello", T0)
    for name, move, minute in moves:
        at, identity = minutes(minute), who[name]
        customer_id = await history.customer_id(identity)
        assert customer_id is not None
        clock.set(at)
        if move == "inbound":
            await desk.inbound(identity, "question", at)
        elif move == "reply":
            sent = await desk.reply(identity, "answer", at)
            await history.record_events([status(identity, sent, "read", at)])
        elif move == "event":
            event_id = f"f{next(_ids)}"
            followed = Followed(
                channel=identity.channel, event_id=event_id, contact=identity, timestamp=at
            )
            await history.record_events([followed])
        elif move == "note":
            await history.note(customer_id, "a note")
        else:
            await history.tag(customer_id, f"tag{minute}")
    keep, gone = (who["a"], who["b"]) if keep_first else (who["b"], who["a"])
    timelines = {name: await history.timeline(who[name], limit=100) for name in who}
    customers = {name: await history.customer(who[name]) for name in who}

    await history.link(keep, gone)
    merged = await history.timeline(gone, limit=100)
    assert {e.id for e in merged.entries} == {
        e.id for page in timelines.values() for e in page.entries
    }
    assert [(e.at, e.id) for e in merged.entries] == sorted((e.at, e.id) for e in merged.entries)

    await history.unlink(gone)
    assert {name: await history.timeline(who[name], limit=100) for name in who} == timelines
    assert {name: await history.customer(who[name]) for name in who} == customers


#: Status reports of one message: (state, minute, error code), as a provider sends them...
reports = st.lists(
    st.tuples(
        st.sampled_from(["sent", "delivered", "read", "played", "failed"]),
        st.integers(0, 3),
        st.sampled_from(["E1", "E2"]),  # any report may carry errors; a failure's count
    ),
    min_size=1,
    max_size=6,
)


@st.composite
def reorderings(draw: st.DrawFn) -> tuple[list[Any], list[Any], int]:
    """...and the same reports shuffled, some repeated, and when the send's own record
    comes among them. (Drawn here: a draw inside an anyio test would stop its runner.)"""
    ordered = draw(reports)
    shuffled = draw(st.permutations(ordered + draw(st.lists(st.sampled_from(ordered)))))
    return ordered, shuffled, draw(st.integers(0, len(shuffled)))


@PROPERTY
@given(case=reorderings())
async def test_statuses_in_any_order_end_in_the_same_delivery(
    history: History, case: tuple[list[Any], list[Any], int]
) -> None:
    ordered, shuffled, send_at = case
    deliveries = []
    for order, recorded_at in ((ordered, 0), (shuffled, send_at)):
        who = Identity(channel="whatsapp", address=f"d{next(_ids)}")
        message_id = f"wamid.{next(_ids)}"
        for index in range(len(order) + 1):
            if index == recorded_at:
                sent = send(who, f"k{next(_ids)}", SendOutcome.SENT, T0, message_id=message_id)
                await history.record_send(sent)
            if index < len(order):
                state, minute, code = order[index]
                error = ProviderErrorInfo(code=code, message="error " + code)
                await history.record_events(
                    [status(who, message_id, state, minutes(minute), error)]
                )
        deliveries.append(await delivery_of(history, who))
    assert deliveries[0] == deliveries[1]


#: One call's events from four identities: a WhatsApp number, an SMS number (the same
#: phone, when ``same_phone``), an email address and a LINE user: (who, what, minute).
calls = st.lists(
    st.tuples(
        st.sampled_from(["wa", "sms", "mail", "line"]),
        st.sampled_from(["message", "thread", "event"]),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=10,
)
#: What the history knows before: which identities wrote (a second apart, in the order
#: of their names), whether the conversations of the last of them were resolved, and
#: whether the email address was linked to the WhatsApp number after.
befores = st.tuples(
    st.sets(st.sampled_from(["wa", "sms", "mail", "line"])),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


@pytest.fixture(params=["suggest", "auto"])
def linking(request: pytest.FixtureRequest, make_history: Callable[..., History]) -> History:
    """A history of each link policy, reopening a conversation within 3 minutes."""
    return make_history(link=request.param, reopen_within=timedelta(minutes=3))


@PROPERTY
@given(call=calls, before=befores)
# an event before any message, the latest conversation resolved, an older one open:
@example(call=[("wa", "event", 0)], before=({"wa", "mail"}, True, True, False))
# a new identity linked (auto) to a known one with a resolved conversation, which the
# known one's earlier message reopens and the new one's later message joins:
@example(call=[("sms", "message", 1), ("wa", "message", 5)], before=({"sms"}, True, False, True))
# two new identities of one phone number, an email thread, an event
@example(
    call=[("wa", "message", 1), ("sms", "message", 0), ("mail", "thread", 2), ("line", "event", 3)],
    before=(set(), False, False, True),
)
async def test_one_call_records_what_one_contact_at_a_time_does(
    linking: History,
    clock: FakeClock,
    call: list[tuple[str, str, int]],
    before: tuple[set[str], bool, bool, bool],
) -> None:
    """A call's contacts are recorded together (a few statements in all) unless one's
    conversation depends on another's writes; forced one contact at a time, each
    reading what the one before wrote, the same call records the same history."""
    from unittest import mock

    from chatbridge.conversations import ops

    history = linking
    known, resolved, linked, same_phone = before
    snapshots = []
    for together in (True, False):
        n = next(_ids)
        phone = f"1555{n:07d}"
        who = {
            "wa": Identity(channel="whatsapp", address=phone),
            "sms": Identity(channel="sms", address=f"+{phone if same_phone else phone[::-1]}"),
            "mail": Identity(channel="email", address=f"m{n}@example.com"),
            "line": Identity(channel="line", address=f"U{n}"),
        }
        for second, name in enumerate(sorted(known)):
            clock.set(T0 + timedelta(seconds=second))
            await history.record_events(
                [received(who[name], "before", clock.now(), thread=f"t{n}")]
            )
        if resolved and known:
            for conversation in await history.conversations(customer=who[max(known)]):
                await history.resolve(conversation.id)
        if linked:
            await history.link(who["wa"], who["mail"])
        clock.set(minutes(6))
        events: list[Event] = []
        for index, (name, what, minute) in enumerate(call):
            identity, at = who[name], minutes(minute)
            if what == "event":
                events.append(
                    Followed(
                        channel=identity.channel,
                        event_id=f"e{n}-{index}",
                        contact=identity,
                        timestamp=at,
                    )
                )
            else:
                thread = f"t{n}" if what == "thread" and name == "mail" else None
                events.append(received(identity, f"m{index}", at, thread=thread))
                events[-1] = events[-1].model_copy(update={"event_id": f"e{n}-{index}"})
        if together:
            await history.record_events(events)
        else:
            with (
                mock.patch.object(ops, "_hold", _nothing),
                mock.patch.object(ops, "_make", _nothing),
            ):
                await history.record_events(events)
        snapshots.append(await _snapshot(history, list(who.values())))
    assert snapshots[0] == snapshots[1]


def _nothing(*args: Any) -> Any:
    return {}
    yield


async def _snapshot(history: History, identities: list[Identity]) -> Any:
    """What the history holds of ``identities``, with ids made comparable (numbered as
    they first come) and each identity by its place in the list."""
    names: dict[str, str] = {}

    def name(value: str | None) -> str | None:
        return None if value is None else names.setdefault(value, f"#{len(names)}")

    place = {identity: index for index, identity in enumerate(identities)}
    customers = [name(await history.customer_id(identity)) for identity in identities]
    entries = []
    conversations = []
    for identity in identities:
        page = await history.timeline(identity, limit=100)
        for entry in sorted(page.entries, key=lambda e: (e.at, e.text or "", e.kind)):
            entries.append(
                (
                    place[identity],
                    entry.kind,
                    entry.at,
                    entry.text,
                    name(entry.conversation_id),
                    entry.identity and place[entry.identity],
                )
            )
        for c in sorted(await history.conversations(customer=identity), key=lambda c: c.opened_at):
            conversations.append(
                (
                    name(c.id),
                    c.state,
                    c.channel,
                    c.opened_at,
                    c.updated_at,
                    c.resolved_at,
                    c.opened_by_customer,
                )
            )
    suggestions = sorted(
        (place[s.identity], place[s.other])
        for s in await history.suggestions()
        if s.identity in place and s.other in place
    )
    return customers, entries, conversations, suggestions
