"""Policy checks, against the provider's documented facts (``kit.facts``), with every
kind of message: who may be messaged, when the window closes and reopens, what an
opt-out stops, which tags open sends for how long, which messages the channel answers
by itself, and how the monthly quota counts, bills replies and resets. A refused send
never reaches the provider: nothing is uploaded and no token is fetched first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chatbridge.clock import from_unix
from chatbridge.errors import MessageInvalidError, PolicyRefusedError
from chatbridge.models import Message, WindowState
from chatbridge.policy import RefusalReason, RemedyKind
from chatbridge.webhook import WebhookResponse
from chatbridge_conformance.harness import Harness

_SECOND = timedelta(seconds=1)
_STOPPED = {
    RefusalReason.UNFOLLOWED,
    RefusalReason.OPTED_OUT,
    RefusalReason.SUPPRESSED,
    RefusalReason.NOT_A_FOLLOWER,
}


async def refused(harness: Harness, message: Message, reasons: set[RefusalReason]) -> str | None:
    """What is wrong, if anything, with how ``message`` is refused: it must be, for one
    of ``reasons`` (a closed window with remedies), or be invalid on the channel, and
    before any provider call."""
    before = harness.calls
    try:
        await harness.channel.send(message)
    except PolicyRefusedError as refusal:
        decision = refusal.decision
        if decision.reason not in reasons:
            return f"{message.kind} refused for {decision.reason}, not one of {sorted(reasons)}"
        if decision.reason is RefusalReason.WINDOW_CLOSED and not decision.remedies:
            return f"{message.kind} refused without remedies"
    except MessageInvalidError:
        pass
    else:
        return f"{message.kind} was sent"
    if harness.calls != before:
        return f"{message.kind} was refused after {harness.calls - before} provider call(s)"
    return None


async def delivered(harness: Harness, message: Message) -> str | None:
    """What is wrong, if anything, with sending ``message``: it must reach the provider."""
    before = harness.calls
    try:
        await harness.channel.send(message)
    except PolicyRefusedError as refusal:
        return f"{message.kind} refused: {refusal.decision.explain()}"
    if harness.calls == before:
        return f"{message.kind} was reported sent but never reached the provider"
    return None


async def _assert_window(harness: Harness, state: WindowState, expires: datetime | None) -> None:
    """The channel reports the customer's window in ``state``, ending at ``expires``."""
    window = await harness.channel.window(harness.channel.identity(harness.kit.customer))
    assert (window.state, window.expires_at) == (state, expires), (
        f"at {harness.clock.now()} the channel reports the window {window.state} until "
        f"{window.expires_at}; documented: {state} until {expires}"
    )


async def _offers(
    harness: Harness, message: Message, outside: Message | None, closed_at: datetime
) -> str | None:
    """What is wrong, if anything, with the refusal of ``message`` outside the window:
    it must say when the window closed and offer the kit's outside-window message."""
    decision = await harness.channel.check(message)
    if decision.since != closed_at:
        return f"the refusal says the window closed at {decision.since}, not {closed_at}"
    kinds = {remedy.kind for remedy in decision.remedies}
    tags = {remedy.tag for remedy in decision.remedies}
    if (
        outside is not None
        and outside.template is not None
        and RemedyKind.USE_TEMPLATE not in kinds
    ):
        return "the refusal does not offer a template"
    if outside is not None and outside.tag is not None and outside.tag not in tags:
        return f"the refusal does not offer the {outside.tag} tag"
    return None


def _now(harness: Harness) -> datetime:
    """A second later than the last time asked (so each message is new)."""
    harness.clock.advance(_SECOND)
    return harness.clock.now()


async def _answers(harness: Harness, bodies: Sequence[bytes]) -> tuple[list[WebhookResponse], int]:
    """The channel's answers to ``bodies`` and the provider calls they made."""
    before, answers = harness.calls, []
    for body in bodies:
        result = await harness.channel.receive(harness.signed(body))
        answers.append(await harness.channel.answer(result))
    return answers, harness.calls - before


def _assert_none(problems: list[str | None], when: str) -> None:
    found = [f"{when}: {problem}" for problem in problems if problem]
    assert not found, "\n".join(found)


class PolicyChecks:
    @pytest.mark.anyio
    async def test_a_stranger_is_messaged_only_where_the_provider_allows(
        self, harness: Harness
    ) -> None:
        facts, kinds = harness.kit.facts, harness.messages()
        if not facts.customer_first:
            _assert_none([await delivered(harness, kinds["text"])], "to a stranger")
            return
        if facts.requires_follower:  # nothing at all, templates included
            never_wrote = {RefusalReason.NOT_A_FOLLOWER}
        else:  # templates may open a conversation
            kinds.pop("outside_window", None)
            never_wrote = {RefusalReason.WINDOW_NEVER_OPENED}
        problems = [await refused(harness, m, never_wrote) for m in kinds.values()]
        _assert_none(problems, "to a contact who never wrote")
        assert harness.calls == 0

    @pytest.mark.anyio
    async def test_every_kind_is_delivered_inside_the_window(self, harness: Harness) -> None:
        await harness.open_conversation()
        kinds = harness.sendable()
        assert "text" in kinds, f"{harness.kit.name} refuses a plain text message"
        _assert_none([await delivered(harness, m) for m in kinds.values()], "inside the window")

    @pytest.mark.anyio
    async def test_the_window_closes_at_its_documented_length_and_reopens(
        self, harness: Harness
    ) -> None:
        window = harness.kit.facts.window
        await harness.open_conversation()
        opened = harness.clock.now()
        text = harness.messages()["text"]
        if window is None:  # no window: a year later is as good as now
            harness.clock.advance(timedelta(days=400))
            await _assert_window(harness, WindowState.NOT_APPLICABLE, None)
            _assert_none([await delivered(harness, text)], "a year after the customer wrote")
            return
        harness.clock.set(opened + window - _SECOND)
        await _assert_window(harness, WindowState.OPEN, opened + window)
        _assert_none([await delivered(harness, text)], "just inside the window")
        closed = {RefusalReason.WINDOW_CLOSED}
        for when, at in (("exactly at its end", window), ("just after it", window + _SECOND)):
            harness.clock.set(opened + at)
            await _assert_window(harness, WindowState.CLOSED, opened + window)
            kinds = harness.messages()
            outside = kinds.pop("outside_window", None)
            _assert_none([await refused(harness, m, closed) for m in kinds.values()], when)
            _assert_none([await _offers(harness, text, outside, opened + window)], when)
            if outside is not None:
                _assert_none([await delivered(harness, outside)], f"{when}, the kit's message")
        await harness.open_conversation()  # the customer writes again
        reopened = harness.clock.now()
        harness.clock.set(reopened + window - _SECOND)
        _assert_none([await delivered(harness, text)], "just inside the reopened window")
        harness.clock.set(reopened + window)
        _assert_none([await refused(harness, text, closed)], "at the reopened window's end")

    @pytest.mark.anyio
    async def test_an_opt_out_stops_every_send_and_an_opt_in_resumes(
        self, harness: Harness
    ) -> None:
        """Each way out, then (where there is one) a way back in, in turn; without a way
        back only the first way out can be tried on the kit's customer."""
        kit = harness.kit
        if not kit.opt_out:
            pytest.skip(f"{kit.name} has no opt-out (unfollow, block, STOP...)")
        await harness.open_conversation()
        kinds, ways_in = harness.messages(), list(kit.opt_in.items())
        for index, (way_out, opt_out) in enumerate(kit.opt_out.items()):
            harness.clock.advance(_SECOND)
            await harness.deliver(opt_out(kit.customer, harness.clock.now()))
            problems = [await refused(harness, m, _STOPPED) for m in kinds.values()]
            _assert_none(problems, f"after opting out by {way_out}")
            if not ways_in:
                return
            way_in, opt_in = ways_in[index % len(ways_in)]
            harness.clock.advance(_SECOND)
            await harness.deliver(opt_in(kit.customer, harness.clock.now()))
            _assert_none([await delivered(harness, kinds["text"])], f"after {way_in}")

    @pytest.mark.anyio
    async def test_each_message_tag_allows_sends_for_its_documented_time(
        self, harness: Harness
    ) -> None:
        tags = harness.kit.facts.tags
        if not tags:
            pytest.skip(f"{harness.kit.name} has no message tags")
        await harness.open_conversation()
        opened, contact = harness.clock.now(), harness.channel.identity(harness.kit.customer)
        for tag, window in tags.items():
            tagged = Message(contact=contact, text="conformance", tag=tag)
            if window is None:  # at any time
                harness.clock.set(opened + timedelta(days=400))
                _assert_none([await delivered(harness, tagged)], f"{tag}, a year later")
                continue
            harness.clock.set(opened + window - _SECOND)
            _assert_none([await delivered(harness, tagged)], f"{tag}, just inside its time")
            harness.clock.set(opened + window)
            closed = {RefusalReason.WINDOW_CLOSED}
            _assert_none([await refused(harness, tagged, closed)], f"{tag}, at its end")

    @pytest.mark.anyio
    async def test_an_undocumented_tag_opens_no_window(self, harness: Harness) -> None:
        """Outside the window, a tag the provider does not document (one the channel
        declares beyond the kit's facts, or a made-up one) allows nothing."""
        facts = harness.kit.facts
        if facts.window is None:
            pytest.skip(f"{harness.kit.name} has no window to open")
        undocumented = {*harness.channel.rules.tags, "NOT_A_DOCUMENTED_TAG"} - set(facts.tags)
        await harness.open_conversation()
        harness.clock.advance(facts.window)
        contact = harness.channel.identity(harness.kit.customer)
        problems = [
            await refused(
                harness,
                Message(contact=contact, text="conformance", tag=tag),
                {RefusalReason.WINDOW_CLOSED},
            )
            for tag in sorted(undocumented)
        ]
        _assert_none(problems, "outside the window, with an undocumented tag")

    @pytest.mark.anyio
    async def test_the_messages_the_channel_must_answer_are_answered(
        self, harness: Harness
    ) -> None:
        """Each of the kit's ``answered`` messages (HELP...) gets an answer an ordinary
        message does not: another webhook response, or a send to the provider."""
        kit = harness.kit
        if not kit.answered:
            pytest.skip(f"{kit.name} answers no message by itself")
        ordinary, calls = await _answers(
            harness, kit.open_conversation(kit.customer, _now(harness))
        )
        assert not calls, f"an ordinary message was answered with {calls} provider call(s)"
        unanswered = []
        for way, bodies in kit.answered.items():
            answer, calls = await _answers(harness, bodies(kit.customer, _now(harness)))
            if answer == ordinary and not calls:
                unanswered.append(way)
        assert not unanswered, f"not answered: {', '.join(unanswered)}"

    # -- rate limit -------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_the_rate_limit_refuses_sends_past_it_until_its_period_ends(
        self, harness: Harness
    ) -> None:
        """``facts.rate_limit``: within one period, ``count`` texts to a contact are
        delivered and the next is refused (``RATE_LIMITED``, no call); the next period
        delivers again."""
        limit = harness.kit.facts.rate_limit
        if limit is None:
            pytest.skip(f"{harness.kit.name} has no rate limit")
        period = limit.period.total_seconds()
        start = (harness.clock.now().timestamp() // period + 1) * period  # a period's start
        harness.clock.set(from_unix(start))
        if harness.kit.facts.customer_first:
            await harness.open_conversation()
        text = harness.messages()["text"]
        _assert_none([await delivered(harness, text) for _ in range(limit.count)], "within")
        spent = {RefusalReason.RATE_LIMITED}
        _assert_none([await refused(harness, text, spent)], f"send {limit.count + 1}")
        harness.clock.advance(limit.period)
        _assert_none([await delivered(harness, text)], "in the next period")

    # -- quota ------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_the_quota_counts_pushes_and_resets_with_the_providers_month(
        self, harness: Harness
    ) -> None:
        quota = harness.kit.facts.quota
        if quota is None:
            pytest.skip(f"{harness.kit.name} has no monthly quota")
        harness.in_process_only()  # the sandbox's quota does not follow the fake clock
        zone = ZoneInfo(quota.timezone)
        month_start = datetime(2026, 2, 1, tzinfo=zone)
        await self._spend(harness, month_start - timedelta(minutes=1))
        harness.clock.set(month_start + timedelta(minutes=1))
        _assert_none([await delivered(harness, harness.messages()["text"])], "a new month")
        utc_month = datetime(2026, 4, 1, tzinfo=ZoneInfo("UTC"))
        if utc_month.astimezone(zone).day != 1:  # a UTC month start is not the provider's
            await self._spend(harness, utc_month - timedelta(minutes=1))
            harness.clock.set(utc_month + timedelta(minutes=1))
            spent = {RefusalReason.QUOTA_SPENT}
            text = harness.messages()["text"]
            _assert_none([await refused(harness, text, spent)], "in UTC's next month only")

    @pytest.mark.anyio
    async def test_replies_are_free_until_the_reply_token_expires(self, harness: Harness) -> None:
        facts = harness.kit.facts
        if facts.reply_ttl is None or facts.quota is None:
            pytest.skip(f"{harness.kit.name} has no free replies")
        harness.in_process_only()
        text = harness.messages()["text"]
        for reply_at, free in ((facts.reply_ttl - _SECOND, 1), (facts.reply_ttl, 0)):
            harness.clock.advance(timedelta(days=40))  # a new month, a new quota
            await harness.open_conversation()
            harness.clock.advance(reply_at)
            when = f"{reply_at} after the customer's event"
            sends = [await delivered(harness, text) for _ in range(facts.quota.limit + free)]
            _assert_none(sends, when)
            spent = {RefusalReason.QUOTA_SPENT}
            _assert_none([await refused(harness, text, spent)], f"{when}, quota spent")

    @staticmethod
    async def _spend(harness: Harness, at: datetime) -> None:
        """Spend the whole quota at ``at`` (on pushes, no reply token being fresh), then
        check the next send is refused."""
        quota = harness.kit.facts.quota
        assert quota is not None
        harness.clock.set(at - timedelta(days=1))
        await harness.open_conversation()
        harness.clock.set(at)
        text = harness.messages()["text"]
        _assert_none([await delivered(harness, text) for _ in range(quota.limit)], f"at {at}")
        spent = {RefusalReason.QUOTA_SPENT}
        _assert_none([await refused(harness, text, spent)], f"at {at}, the quota spent")
        local = at.astimezone(ZoneInfo(quota.timezone))
        resets = (local.replace(day=1) + timedelta(days=32)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        decision = await harness.channel.check(text)
        until = [remedy.until for remedy in decision.remedies if remedy.until]
        assert until == [resets], f"the quota spent at {at} resets at {until}, not {resets}"
