"""The automation engine (chatbridge.automation.Automation): what the worker does for an
event before the handler (rules, greeting, away, routing, statuses), idempotent under
retries; its configuration; and its place in the webhook app."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chatbridge.automation import Automation, FallbackPlan, HandedOff, Hooks, PlanState
from chatbridge.automation.assignment import Agent, Assignments, Queue
from chatbridge.automation.hours import BusinessHours
from chatbridge.automation.rules import (
    HandOff,
    Reply,
    ReplyTemplate,
    RouteTo,
    Rule,
    Rules,
    SetPriority,
    Tag,
    When,
)
from chatbridge.clock import FakeClock
from chatbridge.conversations import EntryKind, History
from chatbridge.errors import ConfigurationError
from chatbridge.models import (
    DeliveryState,
    Direction,
    Event,
    Identity,
    Message,
    MessageReceived,
    StatusUpdate,
    Template,
)
from chatbridge.server import config
from chatbridge.server.app import WebhookApp
from chatbridge.server.cli import main
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.scripted_channel import Mail, Scripted
from tests.test_cli import WHATSAPP_CONFIG

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)  # a Tuesday, 19:00 in Tokyo
CHAT = Identity(channel="chat", address="u1")
TOKYO_DAYS = {"timezone": "Asia/Tokyo", "weekdays": ["09:00-18:00"]}
UTC_DAYS = {"timezone": "UTC", "weekdays": ["09:00-18:00"]}
_ids = itertools.count()


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[History]:
    async with History.sqlite(tmp_path / "h.db", clock=FakeClock(T0)) as made:
        yield made


class Desk:
    """A customer writing on a scripted chat channel that records into ``history``."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.clock = history.clock
        assert isinstance(self.clock, FakeClock)
        self.chat = Scripted(history=history, clock=self.clock)
        self.mail = Mail(history=history, clock=self.clock, store=self.chat.store)

    def automation(self, **options: Any) -> Automation:
        return Automation(self.history, [self.chat, self.mail], **options)

    async def writes(self, text: str, automation: Automation, who: Identity = CHAT) -> Event:
        event = MessageReceived(
            channel=who.channel,
            event_id=f"in{next(_ids)}",
            contact=who,
            timestamp=self.clock.now(),
            message=Message(contact=who, direction=Direction.INBOUND, text=text),
        )
        await self.chat.apply([event])
        await automation.on_event(event, self.chat)
        return event

    async def conversation(self) -> Any:
        [conversation] = await self.history.conversations(customer=CHAT)
        return conversation

    def sent(self) -> list[str | None]:
        return [m.text for m in self.chat.delivered]


@pytest.fixture
def desk(history: History) -> Desk:
    return Desk(history)


def rules(*rules: Rule, **options: Any) -> Rules:
    return Rules(list(rules), **options)


REFUNDS = Rule(
    name="refunds",
    when=When(keywords=("refund",)),
    then=(
        Reply(text="Refunds take 3-5 days."),
        Tag(tags=("refund",)),
        Tag(tags=("asked-refund",), on="customer"),
        SetPriority(priority=2),
    ),
)


async def test_a_rule_replies_tags_and_sets_priority_once(desk: Desk) -> None:
    automation = desk.automation(rules=rules(REFUNDS))
    event = await desk.writes(
        "I want a \uff32\uff25\uff26\uff35\uff2e\uff24 please", automation
    )  # "REFUND", full-width
    await automation.on_event(event, desk.chat)  # the worker retried the event

    assert desk.sent() == ["Refunds take 3-5 days."]
    conversation = await desk.conversation()
    assert (conversation.tags, conversation.priority) == (["refund"], 2)
    customer = await desk.history.customer(CHAT)
    assert customer is not None and customer.tags == ["asked-refund"]
    await desk.writes("hello", automation)  # no rule matches
    assert len(desk.sent()) == 1


async def test_greeting_in_hours_and_away_once_while_closed(desk: Desk) -> None:
    closed = BusinessHours.from_config(TOKYO_DAYS)
    automation = desk.automation(hours=closed, greeting="Hi!", away="We are closed; back {opens}.")
    await desk.writes("hello?", automation)
    await desk.writes("anyone?", automation)
    assert desk.sent() == ["We are closed; back Wednesday 09:00."]

    open_ = desk.automation(hours=BusinessHours.from_config(UTC_DAYS), greeting="Hi!")
    other = Identity(channel="chat", address="u2")
    await desk.writes("hello", open_, who=other)
    await desk.writes("still there?", open_, who=other)
    assert desk.sent()[1:] == ["Hi!"]  # a new conversation is greeted, once


async def test_a_template_reply_and_a_hook_that_changes_or_drops_replies(desk: Desk) -> None:
    seen: list[str | None] = []

    async def before_reply(event: MessageReceived, message: Message) -> Message | None:
        seen.append(message.text)
        if "drop" in (event.message.text or ""):
            return None
        if message.text is None:
            return message
        return message.model_copy(update={"text": f"{message.text} (bot)"})

    template = Template(name="refund_info", language="en")
    automation = desk.automation(
        rules=rules(
            REFUNDS,
            Rule(name="t", when=When(keywords=("tpl",)), then=(ReplyTemplate(template=template),)),
        ),
        hooks=Hooks(before_reply=before_reply),
    )
    await desk.writes("refund", automation)
    await desk.writes("refund, drop it", automation)
    await desk.writes("tpl", automation)
    assert desk.sent() == ["Refunds take 3-5 days. (bot)", None]
    assert desk.chat.delivered[-1].template == template
    assert seen == ["Refunds take 3-5 days.", "Refunds take 3-5 days.", None]


async def test_a_reply_the_channel_cannot_carry_is_noted_not_raised(desk: Desk) -> None:
    async def elsewhere(event: MessageReceived, message: Message) -> Message:
        return message.model_copy(update={"contact": Identity(channel="mail", address="x@y.z")})

    automation = desk.automation(rules=rules(REFUNDS), hooks=Hooks(before_reply=elsewhere))
    await desk.writes("refund", automation)
    assert desk.sent() == []
    notes = [e for e in (await desk.history.timeline(CHAT)).entries if e.kind is EntryKind.NOTE]
    assert len(notes) == 1 and "automatic reply: MessageInvalidError" in (notes[0].text or "")


async def test_new_conversations_go_to_the_queue_and_hand_offs_call_the_hook(
    desk: Desk,
) -> None:
    handed: list[HandedOff] = []

    async def on_handoff(handoff: HandedOff) -> None:
        handed.append(handoff)

    assignments = Assignments(desk.history, [Agent("bob")], [Queue("support"), Queue("vip")])
    await assignments.online("bob")
    person = Rule(name="person", when=When(keywords=("human",)), then=(HandOff(queue="vip"),))
    automation = desk.automation(
        rules=rules(person),
        assignments=assignments,
        queue="support",
        hooks=Hooks(on_handoff=on_handoff),
    )
    await desk.writes("hello", automation)
    assert (await desk.conversation()).assignee == "bob"

    other = Identity(channel="chat", address="u2")
    await desk.writes("a human please", automation, who=other)
    assert [(h.queue, h.agent) for h in handed] == [("vip", "bob")]


async def test_routing_without_assignments_is_refused_when_made(desk: Desk) -> None:
    person = Rule(name="person", when=When(keywords=("human",)), then=(HandOff(),))
    with pytest.raises(ConfigurationError, match="rule 'person' routes conversations"):
        desk.automation(rules=rules(person))
    assignments = Assignments(desk.history, [Agent("bob")], [Queue("support")])
    with pytest.raises(ConfigurationError, match="hands off to no queue"):
        desk.automation(rules=rules(person), assignments=assignments)
    with pytest.raises(ConfigurationError, match="routes to 'sales', not a queue"):
        desk.automation(assignments=assignments, queue="sales")


async def test_a_failed_status_brings_the_fallback_plan_forward(desk: Desk) -> None:
    automation = desk.automation()
    await desk.writes("hello", automation)
    await desk.history.link(CHAT, Identity(channel="mail", address="ana@example.com"))
    plan_id = await automation.fallback.send(
        Message(contact=CHAT, text="shipped"), FallbackPlan(via=("chat", "mail")), key="o-1"
    )
    update = StatusUpdate(
        channel="chat",
        event_id="st1",
        contact=CHAT,
        timestamp=desk.clock.now(),
        message_id="chat-1",
        state=DeliveryState.FAILED,
    )
    await desk.chat.apply([update])
    await automation.on_event(update, desk.chat)
    await automation.tick()
    status = await automation.fallback.plan(plan_id)
    assert status is not None and (status.state, status.channel) == (PlanState.WAITING, "mail")


async def test_automatic_replies_are_not_the_teams_response(desk: Desk) -> None:
    """A greeting does not make a conversation handled: the agent's capacity still
    counts it, and the first-response time waits for a person."""
    assignments = Assignments(desk.history, [Agent("bob", capacity=1)], [Queue("support")])
    await assignments.online("bob")
    automation = desk.automation(greeting="Hi!", assignments=assignments, queue="support")
    for address in ("u1", "u2"):
        await desk.writes("hello", automation, who=Identity(channel="chat", address=address))
    assert desk.sent() == ["Hi!", "Hi!"]
    assert await assignments.load() == {"bob": 1}
    assert [w.queue for w in await assignments.waiting()] == ["support"]
    assert (await desk.conversation()).first_response_at is None


async def test_two_workers_send_one_reply_once(desk: Desk) -> None:
    """Two workers run automation for the same event at once (a lease taken over):
    the first to claim the reply sends it, the other sends nothing."""
    started = anyio.Event()

    async def slow(event: MessageReceived, message: Message) -> Message:
        started.set()
        await anyio.sleep(0.05)
        return message

    automation = desk.automation(rules=rules(REFUNDS), hooks=Hooks(before_reply=slow))
    event = MessageReceived(
        channel="chat",
        event_id="e1",
        contact=CHAT,
        timestamp=desk.clock.now(),
        message=Message(contact=CHAT, direction=Direction.INBOUND, text="refund"),
    )
    await desk.chat.apply([event])
    async with anyio.create_task_group() as group:
        group.start_soon(automation.on_event, event, desk.chat)
        group.start_soon(automation.on_event, event, desk.chat)
    assert desk.sent() == ["Refunds take 3-5 days."]


async def test_a_reply_the_provider_fails_does_not_fail_the_event(desk: Desk) -> None:
    desk.chat.script = ["fail"]
    automation = desk.automation(rules=rules(REFUNDS))
    event = await desk.writes("refund", automation)  # no exception: on to the handler
    await automation.on_event(event, desk.chat)  # a retry does not send it either
    assert desk.sent() == []
    notes = [
        e.text for e in (await desk.history.timeline(CHAT)).entries if e.kind is EntryKind.NOTE
    ]
    assert notes == ["automatic reply: ProviderUnavailableError: chat is down"]


async def test_a_conversation_whose_agent_left_is_routed_again(desk: Desk) -> None:
    assignments = Assignments(desk.history, [Agent("bob"), Agent("ann")], [Queue("support")])
    await assignments.online("bob")
    automation = desk.automation(assignments=assignments, queue="support")
    await desk.writes("hello", automation)
    assert (await desk.conversation()).assignee == "bob"
    await assignments.offline("bob")
    await assignments.online("ann")
    await desk.writes("still there?", automation)
    assert (await desk.conversation()).assignee == "ann"


async def test_the_away_reply_comes_once_per_closed_period(desk: Desk) -> None:
    hours = BusinessHours.from_config(
        {"timezone": "UTC", "weekdays": ["09:00-12:00", "13:00-18:00"]}
    )
    automation = desk.automation(hours=hours, away="Back {opens}.")
    desk.clock.set(datetime(2026, 11, 30, 20, tzinfo=UTC))  # Monday evening
    await desk.writes("hello?", automation)
    desk.clock.set(datetime(2026, 12, 1, 10, tzinfo=UTC))  # Tuesday morning: open
    await desk.writes("hello", automation)
    desk.clock.set(datetime(2026, 12, 1, 12, 30, tzinfo=UTC))  # lunch: closed again
    await desk.writes("anyone?", automation)
    await desk.writes("anyone at all?", automation)
    assert desk.sent() == ["Back Tuesday 09:00.", "Back Tuesday 13:00."]


async def test_what_could_never_work_is_refused_when_made(desk: Desk) -> None:
    with pytest.raises(ConfigurationError, match="away reply needs business hours"):
        desk.automation(away="Closed.")
    whatsapp_only = Rule(name="wa", when=When(channels=("whatsapp",)), then=(Reply(text="hi"),))
    with pytest.raises(ConfigurationError, match="channels not served: whatsapp"):
        desk.automation(rules=rules(whatsapp_only))
    assignments = Assignments(desk.history, [Agent("bob")], [Queue("support")])
    japanese = Rule(
        name="ja", when=When(languages=("ja",)), then=(RouteTo(queue="support", skills=("ja",)),)
    )
    with pytest.raises(ConfigurationError, match="needing ja: no agent serves it"):
        desk.automation(rules=rules(japanese), assignments=assignments)


# -- configuration ----------------------------------------------------------------------


AUTOMATION_TOML = """
[automation]
greeting = "Hi!"
away = "Back {opens}."
queue = "support"
assigner = "round-robin"

[automation.hours]
timezone = "UTC"
weekdays = ["09:00-18:00"]

[[automation.queues]]
name = "support"

[[automation.agents]]
id = "bob"

[[automation.rules]]
name = "refunds"
keywords = ["refund"]
reply = "Refunds take 3-5 days."
"""


def _config(tmp_path: Path, *parts: str) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text("\n".join([*parts, WHATSAPP_CONFIG]))
    return path


async def test_serve_builds_the_automation_of_its_config(tmp_path: Path) -> None:
    history = f'[history]\nkind = "sqlite"\npath = "{tmp_path}/h.db"\n'
    deployment = config.load(_config(tmp_path, history, AUTOMATION_TOML))
    automation = deployment.automation
    assert automation is not None and automation.history is deployment.history
    assert (automation.greeting, automation.queue) == ("Hi!", "support")
    assert automation.rules is not None and [r.name for r in automation.rules.rules] == ["refunds"]
    assert automation.assignments is not None and list(automation.assignments.agents) == ["bob"]
    assert deployment.history is not None
    await deployment.history.aclose()


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ("[automation]\ngreting = 'Hi'\n", "unknown key"),
        ("[automation]\nqueue = 'support'\n", "need \\[\\[automation.agents\\]\\]"),
        ("[automation]\ngreeting = 3\n", "greeting is a string"),
    ],
)
def test_a_wrong_automation_table_is_refused(tmp_path: Path, table: str, error: str) -> None:
    history = f'[history]\nkind = "sqlite"\npath = "{tmp_path}/h.db"\n'
    with pytest.raises(ConfigurationError, match=error):
        config.load(_config(tmp_path, history, table))


def test_automation_needs_a_history(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs a \\[history\\]"):
        config.load(_config(tmp_path, AUTOMATION_TOML))


# -- in the webhook app -----------------------------------------------------------------


class Witness:
    """Stands for an Automation: which events it saw, and how often it ticked."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.ticks = 0

    async def on_event(self, event: Event, channel: object) -> None:
        self.events.append(event.event_id)

    async def tick(self) -> None:
        self.ticks += 1


async def test_the_worker_runs_automation_before_the_handler_and_ticks_it() -> None:
    order: list[str] = []
    witness = Witness()

    async def handler(event: Event, channel: object) -> None:
        order.append(f"handler saw automation of {witness.events}")

    clock = FakeClock()
    channel = whatsapp_kit.kit.build({"clock": clock})
    app = WebhookApp(
        {"whatsapp": channel},
        handler,
        clock=clock,
        poll_interval=0.01,
        automation=witness,  # type: ignore[arg-type]
    )
    request = whatsapp_kit.kit.sign(
        whatsapp_kit.kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"}))
    )
    async with app.running():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://h.example"
        ) as http:
            response = await http.post(
                "/whatsapp", content=request.body, headers=dict(request.headers)
            )
            assert response.status_code == 200
        await app.drain()
        for _ in range(100):
            if witness.ticks >= 2:
                break
            await anyio.sleep(0.01)
    assert len(witness.events) == 1 and order == [f"handler saw automation of {witness.events}"]
    assert witness.ticks >= 2


async def test_an_automation_failure_is_the_events_failure() -> None:
    class Failing(Witness):
        async def on_event(self, event: Event, channel: object) -> None:
            raise RuntimeError("the history is down")

    handled: list[Event] = []

    async def handler(event: Event, channel: object) -> None:
        handled.append(event)

    clock = FakeClock()
    channel = whatsapp_kit.kit.build({"clock": clock})
    app = WebhookApp(
        {"whatsapp": channel}, handler, clock=clock, max_attempts=1, automation=Failing()
    )  # type: ignore[arg-type]
    request = whatsapp_kit.kit.sign(
        whatsapp_kit.kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"}))
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://h.example"
    ) as http:
        await http.post("/whatsapp", content=request.body, headers=dict(request.headers))
    await app.drain()
    assert handled == []
    [letter] = await app.outbox.dead_letters()
    assert "the history is down" in letter.error


async def _unchanged(event: MessageReceived, message: Message) -> Message:
    return message


HOOKS = Hooks(before_reply=_unchanged)


def test_hooks_come_from_the_config(tmp_path: Path) -> None:
    history = f'[history]\nkind = "sqlite"\npath = "{tmp_path}/h.db"\n'
    hooks = '[automation]\nhooks = "tests.test_automation:HOOKS"\n'
    deployment = config.load(_config(tmp_path, history, hooks))
    automation = deployment.automation
    assert automation is not None and automation.hooks.before_reply is not None
    assert automation.hooks.before_reply.__name__ == "_unchanged"
    wrong = '[automation]\nhooks = "tests.test_automation:AUTOMATION_TOML"\n'
    with pytest.raises(ConfigurationError, match="not a chatbridge Hooks"):
        config.load(_config(tmp_path, history, wrong))


def test_the_rules_command_explains_every_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = f'[history]\nkind = "sqlite"\npath = "{tmp_path}/h.db"\n'
    path = _config(tmp_path, history, AUTOMATION_TOML)
    assert main(["rules", "--config", str(path), "Where is my REFUND?", "--channel", "line"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        'refunds: matched: keyword "refund" (contains) in "where is my refund?"',
        "applies: refunds",
    ]


def test_the_agents_command_sets_and_lists_presence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = f'[history]\nkind = "sqlite"\npath = "{tmp_path}/h.db"\n'
    path = _config(tmp_path, history, AUTOMATION_TOML)
    assert main(["agents", "--config", str(path), "online", "bob"]) == 0
    assert capsys.readouterr().out.split() == ["bob", "online", "0/5", "unhandled"]
    assert main(["agents", "--config", str(path), "offline", "bob"]) == 0
    assert "offline" in capsys.readouterr().out
    assert main(["agents", "--config", str(path), "online", "nobody"]) == 1
