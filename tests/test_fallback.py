"""Fallback delivery (chatbridge.automation.fallback), on SQLite and PostgreSQL: a plan
moves on when a send is refused, fails, or stays unread, and resumes after a crash
without sending anything twice."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatbridge.automation.fallback import (
    Condition,
    Fallback,
    FallbackPlan,
    FallbackStep,
    PlanState,
)
from chatbridge.clock import FakeClock
from chatbridge.conversations import EntryKind, History
from chatbridge.models import (
    DeliveryState,
    Direction,
    Identity,
    Message,
    MessageReceived,
    StatusUpdate,
    Template,
)
from chatbridge.recorder import SendOutcome
from tests.scripted_channel import Crash, Mail, Scripted

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
CHAT = Identity(channel="chat", address="u1")
MAIL = Identity(channel="mail", address="ana@example.com")
PLAN = FallbackPlan(via=("chat", "mail"))
_ids = itertools.count()


def _key() -> str:
    return f"plan-{next(_ids)}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


class Desk:
    """The customer (on chat and mail, linked), the two channels and a fallback."""

    def __init__(self, history: History, clock: FakeClock) -> None:
        self.history, self.clock = history, clock
        self.chat = Scripted(history=history, clock=clock)
        self.mail = Mail(history=history, clock=clock, store=self.chat.store)
        self.fallback = self.restart()

    def restart(self, **options: object) -> Fallback:
        """A new Fallback, as a restarted process makes."""
        return Fallback(self.history, [self.chat, self.mail], clock=self.clock, **options)  # type: ignore[arg-type]

    async def customer_writes(self) -> None:
        """The customer writes on chat (its window opens) and is known on mail too."""
        await self.chat.apply([_received(CHAT, "hello", self.clock.now())])
        await self.history.link(CHAT, MAIL)

    async def status(self, message_id: str, state: str) -> None:
        update = StatusUpdate(
            channel="chat",
            event_id=f"st{next(_ids)}",
            contact=CHAT,
            timestamp=self.clock.now(),
            message_id=message_id,
            state=DeliveryState(state),
        )
        await self.history.record_events([update])
        await self.fallback.status(update)

    async def notes(self) -> list[str]:
        entries = (await self.history.timeline(CHAT)).entries
        return [e.text or "" for e in entries if e.kind is EntryKind.NOTE]


def _received(who: Identity, text: str, at: datetime) -> MessageReceived:
    return MessageReceived(
        channel=who.channel,
        event_id=f"in{next(_ids)}",
        contact=who,
        timestamp=at,
        message=Message(contact=who, direction=Direction.INBOUND, text=text),
    )


@pytest.fixture
def desk(history: History, clock: FakeClock) -> Desk:
    return Desk(history, clock)


def _message() -> Message:
    return Message(contact=CHAT, text="Your order shipped")


async def test_a_refused_send_moves_on_to_the_next_channel(desk: Desk) -> None:
    await desk.history.link(CHAT, MAIL)  # the customer never wrote on chat: no window
    plan_id = await desk.fallback.send(_message(), PLAN, key=_key())

    status = await desk.fallback.plan(plan_id)
    assert status is not None
    assert (status.state, status.step, status.channel) == (PlanState.WAITING, 1, "mail")
    assert desk.chat.delivered == [] and [m.text for m in desk.mail.delivered] == [
        "Your order shipped"
    ]
    [refused] = [e for e in (await desk.history.timeline(CHAT)).entries if e.channel == "chat"]
    assert (refused.outcome, refused.reason) == (SendOutcome.REFUSED, "window_never_opened")
    [note] = await desk.notes()
    assert "moving on to mail identity: chat refused it" in note


async def test_a_template_goes_where_the_window_is_closed(desk: Desk) -> None:
    await desk.customer_writes()
    desk.clock.advance(timedelta(hours=25))
    template = Template(name="order_shipped", language="en")
    plan = FallbackPlan(via=("chat", "mail"), templates={"chat": template})
    await desk.fallback.send(_message(), plan, key=_key())
    [sent] = desk.chat.delivered
    assert sent.template == template and desk.mail.delivered == []


async def test_a_failed_send_and_a_failed_status_move_on(desk: Desk) -> None:
    await desk.customer_writes()
    desk.chat.script = ["fail"]
    plan_id = await desk.fallback.send(
        _message(), FallbackPlan(via=("chat", "mail", "chat")), key=_key()
    )
    status = await desk.fallback.plan(plan_id)
    assert status is not None and (status.step, status.channel) == (1, "mail")

    desk.mail.script = []
    await desk.status("chat-1", "failed")  # not this plan's message: nothing moves
    assert await desk.fallback.run_due() == 0
    message_id = status.message_id
    assert message_id is not None
    update = StatusUpdate(
        channel="mail",
        event_id="st-mail",
        contact=MAIL,
        timestamp=desk.clock.now(),
        message_id=message_id,
        state=DeliveryState.FAILED,
    )
    await desk.history.record_events([update])
    await desk.fallback.status(update)
    assert await desk.fallback.run_due() == 1
    status = await desk.fallback.plan(plan_id)
    assert status is not None and (status.state, status.step) == (PlanState.WAITING, 2)
    assert len(desk.chat.delivered) == 1  # the third step: chat again, now working


async def test_unread_after_the_wait_moves_on_and_read_ends_the_plan(desk: Desk) -> None:
    await desk.customer_writes()
    unread = await desk.fallback.send(_message(), PLAN, key=_key())
    read = await desk.fallback.send(_message(), PLAN, key=_key())
    read_status = await desk.fallback.plan(read)
    assert read_status is not None and read_status.message_id is not None

    desk.clock.advance(timedelta(minutes=5))
    await desk.status(read_status.message_id, "read")
    assert await desk.fallback.run_due() == 1  # the read one, brought forward
    desk.clock.advance(timedelta(minutes=4))
    assert await desk.fallback.run_due() == 0  # the unread one's wait has not ended
    desk.clock.advance(timedelta(minutes=2))
    assert await desk.fallback.run_due() == 1

    assert [await _state(desk, p) for p in (unread, read)] == [PlanState.WAITING, PlanState.DONE]
    assert len(desk.mail.delivered) == 1
    assert any("not read on chat within 0:10:00" in note for note in await desk.notes())


async def test_delivered_is_enough_for_a_plan_on_undelivered(desk: Desk) -> None:
    await desk.customer_writes()
    plan = FallbackPlan(via=("chat", "mail"), on=frozenset({Condition.UNDELIVERED}))
    delivered = await desk.fallback.send(_message(), plan, key=_key())
    lost = await desk.fallback.send(_message(), plan, key=_key())
    status = await desk.fallback.plan(delivered)
    assert status is not None and status.message_id is not None
    await desk.status(status.message_id, "delivered")
    desk.clock.advance(timedelta(minutes=11))
    assert await desk.fallback.run_due() == 2
    assert [await _state(desk, p) for p in (delivered, lost)] == [PlanState.DONE, PlanState.WAITING]


async def test_an_outcome_the_plan_does_not_move_on_from_stops_it(desk: Desk) -> None:
    await desk.customer_writes()
    desk.chat.script = ["fail"]
    plan = FallbackPlan(via=("chat", "mail"), on=frozenset({Condition.REFUSED}))
    plan_id = await desk.fallback.send(_message(), plan, key=_key())
    assert await _state(desk, plan_id) is PlanState.STOPPED
    assert desk.mail.delivered == []
    assert any("stopped: sending on chat failed" in note for note in await desk.notes())


async def test_a_plan_whose_every_step_missed_is_exhausted(desk: Desk) -> None:
    plan_id = await desk.fallback.send(_message(), FallbackPlan(via=("chat",)), key=_key())
    assert await _state(desk, plan_id) is PlanState.EXHAUSTED


async def test_a_step_without_an_identity_is_skipped(desk: Desk) -> None:
    await desk.chat.apply([_received(CHAT, "hello", desk.clock.now())])  # mail unknown
    desk.chat.script = ["fail"]
    plan_id = await desk.fallback.send(_message(), FallbackPlan(via=("chat", "mail")), key=_key())
    assert await _state(desk, plan_id) is PlanState.EXHAUSTED
    assert any("the customer has no mail identity" in note for note in await desk.notes())


async def test_a_step_without_an_identity_is_skipped_whatever_the_plan_moves_on(
    desk: Desk,
) -> None:
    await desk.customer_writes()
    plan = FallbackPlan(via=(Identity(channel="sms", address="+1555"), "chat"), on=frozenset())
    plan_id = await desk.fallback.send(_message(), plan, key=_key())
    status = await desk.fallback.plan(plan_id)
    assert status is not None and (status.state, status.step) == (PlanState.WAITING, 1)


async def test_a_plan_that_cannot_be_read_is_set_aside(desk: Desk) -> None:
    await desk.customer_writes()
    broken = await desk.fallback.send(_message(), PLAN, key="broken")
    fine = await desk.fallback.send(_message(), PLAN, key="fine")
    await desk.history.database.run(lambda: _corrupt(broken))
    desk.clock.advance(timedelta(minutes=11))
    assert await desk.fallback.run_due() == 2
    assert await _state(desk, broken) is PlanState.UNREADABLE
    assert len(desk.mail.delivered) == 1  # the readable one moved on
    assert await _state(desk, fine) is PlanState.WAITING


def _corrupt(plan_id: str) -> Any:
    yield ("UPDATE fallback_plans SET body = ? WHERE id = ?", ('{"not": "a plan"}', plan_id))


async def test_the_hook_sees_each_move_and_can_stop_the_plan(desk: Desk) -> None:
    seen: list[FallbackStep] = []

    async def on_step(step: FallbackStep) -> bool:
        seen.append(step)
        return False

    desk.fallback = desk.restart(on_step=on_step)
    await desk.history.link(CHAT, MAIL)
    plan_id = await desk.fallback.send(_message(), PLAN, key=_key())
    assert [(s.step, s.via) for s in seen] == [(1, "mail")]
    assert await _state(desk, plan_id) is PlanState.STOPPED
    assert desk.mail.delivered == []


async def test_a_plan_key_starts_one_plan(desk: Desk) -> None:
    await desk.customer_writes()
    first = await desk.fallback.send(_message(), PLAN, key="order-7-shipped")
    again = await desk.fallback.send(_message(), PLAN, key="order-7-shipped")
    assert first == again == "order-7-shipped"
    assert len(desk.chat.delivered) == 1


@pytest.mark.parametrize("crash", ["crash", "crash-before"])
async def test_a_plan_resumes_after_a_crash_without_sending_twice(desk: Desk, crash: str) -> None:
    """The process dies during a step's send: after the delivery, or before the request
    left. The next process takes the plan over once its lease ended; the send recorded
    pending (it may have gone out) is not sent again, and its wait applies."""
    await desk.customer_writes()
    desk.chat.script = [crash]
    with pytest.raises(Crash):
        await desk.fallback.send(_message(), PLAN, key="p1")
    delivered = len(desk.chat.delivered)

    restarted = desk.restart()
    assert await restarted.run_due() == 0  # its lease has not ended
    desk.clock.advance(timedelta(minutes=6))
    assert await restarted.run_due() == 1
    status = await restarted.plan("p1")
    assert status is not None and (status.state, status.step) == (PlanState.WAITING, 0)
    assert len(desk.chat.delivered) == delivered  # not sent again

    desk.clock.advance(timedelta(minutes=11))  # no read status: the next step
    assert await restarted.run_due() == 1
    assert len(desk.mail.delivered) == 1


async def test_a_crash_after_the_send_was_recorded_sent_resumes_at_its_wait(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    await desk.customer_writes()

    async def die(*args: object) -> None:
        raise Crash

    monkeypatch.setattr(Fallback, "_wait", die)
    with pytest.raises(Crash):
        await desk.fallback.send(_message(), PLAN, key="p2")
    monkeypatch.undo()

    desk.clock.advance(timedelta(minutes=6))
    restarted = desk.restart()
    assert await restarted.run_due() == 1
    status = await restarted.plan("p2")
    assert status is not None and (status.state, status.message_id) == (PlanState.WAITING, "chat-1")
    assert len(desk.chat.delivered) == 1


async def _state(desk: Desk, plan_id: str) -> PlanState:
    status = await desk.fallback.plan(plan_id)
    assert status is not None
    return status.state
