"""Fallback delivery: a message that moves on to the customer's next channel when it is
refused, fails, or is not delivered or read in time.

A plan is stored in the history's database before its first send, and each step's
progress with it, so it survives restarts: whoever runs :meth:`Fallback.run_due` (the
serving worker does) takes over the plans that are due, a wait that ended or a step
whose process died. A step's send is recorded in the history under the key
``fallback:<plan>:<step>``; a step taken over looks its send up there first, so it never
goes out twice. A send that may have gone out (the process died during the request, or
the provider's answer was lost) is not sent again: it counts as sent, and its wait runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from chatbridge.channel import Channel
from chatbridge.clock import Clock
from chatbridge.conversations import History
from chatbridge.conversations.model import Note
from chatbridge.conversations.ops import Op, Row, marks, micros, send_key
from chatbridge.errors import DeliveryUnknownError, PolicyRefusedError, describe
from chatbridge.models import DeliveryState, Identity, Message, StatusUpdate, Template
from chatbridge.recorder import SendOutcome

logger = logging.getLogger("chatbridge.automation.fallback")


class Condition(StrEnum):
    """Why a plan moves on to its next step."""

    #: The policy refused the send (window closed and no template, opted out, quota).
    REFUSED = "refused"
    #: The send failed, or the provider reported the message failed.
    FAILED = "failed"
    #: The message was not reported delivered within the plan's ``wait``.
    UNDELIVERED = "undelivered"
    #: The message was not reported read (or played) within the plan's ``wait``.
    UNREAD = "unread"


class FallbackPlan(BaseModel):
    """Where a message goes, in order: channel names (the customer's identity on that
    channel) or identities. A step moves on ``on`` the conditions listed (any other
    outcome ends the plan). ``templates`` (by channel) are sent instead of the message
    where the policy refuses it (a closed window)."""

    model_config = ConfigDict(frozen=True)

    via: tuple[str | Identity, ...] = Field(min_length=1)
    on: frozenset[Condition] = frozenset({Condition.REFUSED, Condition.FAILED, Condition.UNREAD})
    wait: timedelta = timedelta(minutes=10)
    templates: dict[str, Template] = Field(default_factory=dict)


class PlanState(StrEnum):
    SENDING = "sending"  # a step is being sent (by the process holding its lease)
    WAITING = "waiting"  # the step was sent; its wait runs
    DONE = "done"  # the message got through (or no condition of the plan was met)
    STOPPED = "stopped"  # a step ended in an outcome the plan does not move on from
    EXHAUSTED = "exhausted"  # every step was tried
    UNREADABLE = "unreadable"  # its stored plan cannot be read (set aside, logged)


class PlanStatus(BaseModel):
    """Where a plan is: its step (0-based), and the message its step sent, if any."""

    id: str
    state: PlanState
    step: int
    channel: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class FallbackStep:
    """What the ``on_step`` hook is told before a plan moves on to ``step``."""

    plan_id: str
    step: int
    via: str | Identity
    reason: str


#: The application's hook before each move; returning False ends the plan there.
OnStep = Callable[[FallbackStep], Awaitable[bool | None]]


class _Body(BaseModel):
    """What a plan's row keeps: the message (its contact: the customer) and the plan."""

    message: Message
    plan: FallbackPlan


@dataclass(frozen=True)
class _Claim:
    """A plan this process holds (``lease``: its token in the row) until it lets go."""

    id: str
    lease: str
    body: _Body


@dataclass(frozen=True)
class _Missed:
    condition: Condition | None  # None: the step could not be taken at all (skipped)
    reason: str


@dataclass(frozen=True)
class _Sent:
    channel: str
    message_id: str | None


class Fallback:
    """Runs fallback plans over ``channels``, kept in ``history``'s database. A step
    being sent is held for ``lease``: a process that dies holding it hands it on after
    that (keep it longer than a send can take)."""

    def __init__(
        self,
        history: History,
        channels: Iterable[Channel],
        *,
        lease: timedelta = timedelta(minutes=5),
        on_step: OnStep | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.history = history
        self.channels = {channel.name: channel for channel in channels}
        self.lease = lease
        self.on_step = on_step
        self.clock = clock or history.clock

    async def send(self, message: Message, plan: FallbackPlan, *, key: str) -> str:
        """Start ``plan`` for ``message`` (its ``contact`` stands for the customer) and
        run its steps until one is sent; the plan's id, ``key``: a plan started again
        with it (a retried handler, say: derive it from what the plan is about, such as
        an order's or an event's id) is not started twice."""
        if not key:
            raise ValueError("a fallback plan needs a key (what it is about, such as an order id)")
        plan_id = key
        claim = _Claim(plan_id, uuid.uuid4().hex, _Body(message=message, plan=plan))
        now = micros(self.clock.now())
        until = now + _micros(self.lease)
        body = claim.body.model_dump_json()
        if await self.history.database.run(lambda: _create(claim, body, now, until)):
            await self._run(claim, 0, None)
        return plan_id

    async def status(self, update: StatusUpdate) -> None:
        """Bring a plan waiting on ``update``'s message forward: it moves on (failed)
        or ends (read) at the next :meth:`run_due`."""
        if update.state in (DeliveryState.FAILED, DeliveryState.READ, DeliveryState.PLAYED):
            now = micros(self.clock.now())
            await self.history.database.run(lambda: _due_now(update, now))

    async def run_due(self, limit: int = 100) -> int:
        """Take over up to ``limit`` plans that are due and run them; how many."""
        lease = uuid.uuid4().hex
        now = micros(self.clock.now())
        until = now + _micros(self.lease)
        settings = self.history.settings
        rows = await self.history.database.run(
            lambda: _claim_due(settings.dialect.for_update, lease, now, until, limit)
        )
        for plan_id, body, step, state, channel, message_id, sent_at in rows:
            try:
                claim = _Claim(plan_id, lease, _Body.model_validate_json(body))
            except ValueError as exc:  # written by another version, or damaged
                await self._set_aside(plan_id, lease, exc)
                continue
            try:
                if state == PlanState.SENDING:  # its process died: the step again
                    await self._run(claim, step, None)
                else:
                    await self._check(claim, step, _Sent(channel, message_id), sent_at)
            except Exception:  # it stays held: taken over again once its lease ends
                logger.exception("fallback plan %s could not run", plan_id)
        return len(rows)

    async def _set_aside(self, plan_id: str, lease: str, error: ValueError) -> None:
        logger.error("fallback plan %s cannot be read, set aside: %s", plan_id, error)
        await self.history.database.run(lambda: _end(plan_id, lease, PlanState.UNREADABLE))

    async def plan(self, plan_id: str) -> PlanStatus | None:
        rows = await self.history.database.read(lambda: _status(plan_id))
        if not rows:
            return None
        state, step, channel, message_id = rows[0]
        return PlanStatus(
            id=plan_id, state=state, step=step, channel=channel, message_id=message_id
        )

    # -- steps ------------------------------------------------------------------------

    async def _run(self, claim: _Claim, step: int, reason: str | None) -> None:
        """Run the plan from ``step`` until a step is sent (then its wait runs) or the
        plan ends; ``reason``: why the step before did not do."""
        via = claim.body.plan.via
        while step < len(via):
            if reason is not None:
                await self._note(claim, f"moving on to {_name(via[step])}: {reason}")
                if (
                    self.on_step
                    and await self.on_step(FallbackStep(claim.id, step, via[step], reason)) is False
                ):
                    return await self._end(claim, PlanState.STOPPED, "stopped by on_step")
            if not await self._hold(claim, step):
                return  # another process took the plan over (our lease ended)
            outcome = await self._send_step(claim, step)
            if isinstance(outcome, _Sent):
                return await self._wait(claim, outcome)
            if outcome.condition is not None and outcome.condition not in claim.body.plan.on:
                return await self._end(claim, PlanState.STOPPED, outcome.reason)
            step, reason = step + 1, outcome.reason
        await self._end(claim, PlanState.EXHAUSTED, reason or "no step")

    async def _hold(self, claim: _Claim, step: int) -> bool:
        """Whether the plan is still ours, now at ``step`` for another lease."""
        now = micros(self.clock.now())
        until = now + _micros(self.lease)
        return await self.history.database.run(lambda: _at_step(claim, step, now, until))

    async def _wait(self, claim: _Claim, sent: _Sent) -> None:
        at = micros(self.clock.now())
        due = at + _micros(claim.body.plan.wait)
        await self.history.database.run(lambda: _waiting(claim, sent, at, due))

    async def _send_step(self, claim: _Claim, step: int) -> _Sent | _Missed:
        via = claim.body.plan.via[step]
        identity = await self._identity(claim.body.message.contact, via)
        if identity is None or identity.channel not in self.channels:
            return _Missed(None, f"the customer has no {_name(via)} to send to")
        channel = self.channels[identity.channel]
        key = f"fallback:{claim.id}:{step}"
        earlier = await self.history.entry(send_key(identity.channel, key))
        if earlier is not None and earlier.outcome not in (SendOutcome.REFUSED, SendOutcome.FAILED):
            return _Sent(identity.channel, earlier.message_id)  # sent, or maybe: not again
        message = claim.body.message.model_copy(update={"contact": identity})
        template = claim.body.plan.templates.get(identity.channel)
        if template is not None and not (await channel.check(message)).allowed:
            message = Message(contact=identity, template=template)
        try:
            receipt = await channel.send(message, history_key=key, automated=True)
        except PolicyRefusedError as exc:
            return _Missed(Condition.REFUSED, f"{identity.channel} refused it: {exc}")
        except DeliveryUnknownError:
            return _Sent(identity.channel, None)
        except Exception as exc:
            return _Missed(
                Condition.FAILED, f"sending on {identity.channel} failed: {describe(exc)}"
            )
        return _Sent(identity.channel, receipt.message_id)

    async def _check(self, claim: _Claim, step: int, sent: _Sent, sent_at: int) -> None:
        """A waiting step is due: end the plan, move on, or wait on."""
        plan = claim.body.plan
        entry = await self.history.entry(send_key(sent.channel, f"fallback:{claim.id}:{step}"))
        state = entry.delivery.state if entry is not None and entry.delivery else None
        ended = micros(self.clock.now()) >= sent_at + _micros(plan.wait)
        missed: _Missed | None = None
        if state is DeliveryState.FAILED:
            missed = _Missed(Condition.FAILED, f"{sent.channel} reported the message failed")
        elif state in (DeliveryState.READ, DeliveryState.PLAYED):
            return await self._end(claim, PlanState.DONE, None)
        elif not ended:
            due = sent_at + _micros(plan.wait)
            await self.history.database.run(lambda: _rearm(claim, due))
            return
        elif Condition.UNREAD in plan.on:
            missed = _Missed(Condition.UNREAD, f"not read on {sent.channel} within {plan.wait}")
        elif Condition.UNDELIVERED in plan.on and state is not DeliveryState.DELIVERED:
            missed = _Missed(
                Condition.UNDELIVERED, f"not delivered on {sent.channel} within {plan.wait}"
            )
        if missed is None:
            return await self._end(claim, PlanState.DONE, None)
        if missed.condition not in plan.on:
            return await self._end(claim, PlanState.STOPPED, missed.reason)
        await self._run(claim, step + 1, missed.reason)

    async def _identity(self, contact: Identity, via: str | Identity) -> Identity | None:
        if isinstance(via, Identity):
            return via
        if via == contact.channel:
            return contact
        customer = await self.history.customer(contact)
        found = customer.identities if customer is not None else []
        return next((identity for identity in found if identity.channel == via), None)

    async def _end(self, claim: _Claim, state: PlanState, reason: str | None) -> None:
        ended = await self.history.database.run(lambda: _end(claim.id, claim.lease, state))
        if ended and reason:
            await self._note(claim, f"{state.value}: {reason}")

    async def _note(self, claim: _Claim, text: str) -> None:
        """Say in the customer's latest conversation what the plan did (in their
        timeline if they have none; nothing if the history does not know them yet)."""
        contact = claim.body.message.contact
        latest = await self.history.conversations(customer=contact, limit=1)
        owner = latest[0].id if latest else await self.history.customer_id(contact)
        if owner is not None:
            note = Note(text=f"fallback {claim.id}: {text}", author="chatbridge.fallback")
            await self.history.note(owner, note)


def _micros(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _name(via: str | Identity) -> str:
    return str(via) if isinstance(via, Identity) else f"{via} identity"


# -- operations (chatbridge.conversations.ops) ----------------------------------------

_WAITING = PlanState.WAITING.value
_SENDING = PlanState.SENDING.value


def _create(claim: _Claim, body: str, now: int, until: int) -> Op[bool]:
    rows = yield (
        "INSERT INTO fallback_plans (id, body, step, state, due_at, lease, created_at, "
        "updated_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO NOTHING RETURNING id",
        (claim.id, body, _SENDING, until, claim.lease, now, now),
    )
    return bool(rows)


def _claim_due(for_update: str, lease: str, now: int, until: int, limit: int) -> Op[list[Row]]:
    """The due plans, held under ``lease`` until ``until`` (PostgreSQL: plans another
    process is taking right now are skipped, not waited for)."""
    skip = f"{for_update} SKIP LOCKED" if for_update else ""
    rows = yield (  # state as the partial index fallback_plans_due states it
        "SELECT id, body, step, state, channel, message_id, sent_at FROM fallback_plans "
        f"WHERE state IN ('sending', 'waiting') AND due_at <= ? ORDER BY due_at LIMIT ?{skip}",
        (now, limit),
    )
    if rows:
        yield (
            f"UPDATE fallback_plans SET due_at = ?, lease = ? WHERE id IN ({marks(rows)})",
            (until, lease, *(row[0] for row in rows)),
        )
    return rows


def _at_step(claim: _Claim, step: int, now: int, until: int) -> Op[bool]:
    rows = yield (
        "UPDATE fallback_plans SET step = ?, state = ?, due_at = ?, updated_at = ? "
        "WHERE id = ? AND lease = ? RETURNING id",
        (step, _SENDING, until, now, claim.id, claim.lease),
    )
    return bool(rows)


def _waiting(claim: _Claim, sent: _Sent, at: int, due: int) -> Op[None]:
    yield (
        "UPDATE fallback_plans SET state = ?, channel = ?, message_id = ?, sent_at = ?, "
        "due_at = ?, lease = NULL, updated_at = ? WHERE id = ? AND lease = ?",
        (_WAITING, sent.channel, sent.message_id, at, due, at, claim.id, claim.lease),
    )


def _rearm(claim: _Claim, due: int) -> Op[None]:
    yield (
        "UPDATE fallback_plans SET due_at = ?, lease = NULL WHERE id = ? AND lease = ?",
        (due, claim.id, claim.lease),
    )


def _end(plan_id: str, lease: str, state: PlanState) -> Op[bool]:
    rows = yield (
        "UPDATE fallback_plans SET state = ?, due_at = NULL, lease = NULL "
        "WHERE id = ? AND lease = ? RETURNING id",
        (state.value, plan_id, lease),
    )
    return bool(rows)


def _due_now(update: StatusUpdate, now: int) -> Op[None]:
    yield (
        "UPDATE fallback_plans SET due_at = ? WHERE channel = ? AND message_id = ? "
        "AND state = ? AND lease IS NULL AND due_at > ?",
        (now, update.channel, update.message_id, _WAITING, now),
    )


def _status(plan_id: str) -> Op[list[Row]]:
    return (
        yield (
            "SELECT state, step, channel, message_id FROM fallback_plans WHERE id = ?",
            (plan_id,),
        )
    )
