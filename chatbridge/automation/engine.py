"""What the serving worker runs for each event before the application's handler: the
rules and their actions, greeting and away replies, routing to a queue, fallback plans
moved on by statuses; and, between events, the due plans and the waiting conversations.

Every action may run twice for one event (the worker retries a failed event, and takes
over the events of a worker that died), so each is idempotent: a reply is claimed under
a key made from the event (or the conversation) before it is sent, and goes at most
once; tags, priority and routing set what they set.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from chatbridge.automation.assignment import Assignments
from chatbridge.automation.fallback import Fallback, OnStep
from chatbridge.automation.hours import BusinessHours
from chatbridge.automation.rules import (
    Context,
    HandOff,
    Reply,
    ReplyMenu,
    ReplyTemplate,
    RouteTo,
    Rules,
    SetPriority,
    Tag,
)
from chatbridge.channel import Channel
from chatbridge.conversations import (
    Conversation,
    ConversationState,
    Customer,
    History,
    Note,
    TagMirror,
)
from chatbridge.conversations.ops import Op, inbound_key, micros, send_key
from chatbridge.errors import (
    ChatbridgeError,
    ConfigurationError,
    HistoryError,
    PolicyRefusedError,
    describe,
)
from chatbridge.models import Event, Message, MessageReceived, StatusUpdate
from chatbridge.registry import load_attribute

logger = logging.getLogger("chatbridge.automation")

#: Before an automatic reply: the message to send instead, or None to send nothing.
BeforeReply = Callable[[MessageReceived, Message], Awaitable[Message | None]]


@dataclass(frozen=True)
class HandedOff:
    """What ``on_handoff`` is told: the conversation, its queue, and the agent it went
    to (None: it waits in the queue for one)."""

    conversation_id: str
    queue: str
    agent: str | None
    reason: str


OnHandOff = Callable[[HandedOff], Awaitable[None]]


@dataclass(frozen=True)
class Hooks:
    """The application's say at each step."""

    before_reply: BeforeReply | None = None
    on_handoff: OnHandOff | None = None
    on_fallback: OnStep | None = None


class Automation:
    """Automation over ``channels``, kept in ``history``: ``rules``; ``hours`` (by
    default the rules' own), which the ``greeting`` and ``away`` replies follow too:
    greeting a new conversation in business hours, away once per conversation and
    closed period (``{opens}`` in ``away`` is when business hours start again); and
    ``assignments``, to which open conversations that no rule routed and that have no
    online agent go, in ``queue`` (also where a hand-off without a queue goes)."""

    def __init__(
        self,
        history: History,
        channels: Iterable[Channel],
        *,
        rules: Rules | None = None,
        hours: BusinessHours | None = None,
        greeting: str | None = None,
        away: str | None = None,
        assignments: Assignments | None = None,
        queue: str | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.history = history
        self.hooks = hooks or Hooks()
        self.rules = rules
        self.hours = hours if hours is not None else rules.hours if rules else None
        self.greeting = greeting
        self.away = away
        self.assignments = assignments
        self.queue = queue
        self.fallback = Fallback(history, channels, on_step=self.hooks.on_fallback)
        self._check()

    def _check(self) -> None:
        """Refuse now what would fail, or never happen, for every event later: an away
        reply without hours, a rule for a channel not served, routing with no agents, to
        no queue or to an unknown one, or needing skills no agent of the queue has."""
        if self.away is not None and self.hours is None:
            raise ConfigurationError("an away reply needs business hours to know when")
        served = set(self.fallback.channels)
        routes: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        if self.queue is not None:
            routes["the automation's queue"] = (self.queue, ())
        for rule in self.rules.rules if self.rules else ():
            if unknown := sorted(set(rule.when.channels) - served):
                raise ConfigurationError(
                    f"rule {rule.name!r} is for channels not served: {', '.join(unknown)} "
                    f"(served: {', '.join(sorted(served))})"
                )
            for action in rule.then:
                if isinstance(action, RouteTo):
                    routes[f"rule {rule.name!r}"] = (action.queue, action.skills)
                elif isinstance(action, HandOff):
                    routes[f"rule {rule.name!r}"] = (action.queue or self.queue, ())
        for who, (queue, skills) in routes.items():
            self._check_route(who, queue, skills)

    def _check_route(self, who: str, queue: str | None, skills: tuple[str, ...]) -> None:
        if self.assignments is None:
            raise ConfigurationError(f"{who} routes conversations: give assignments (agents)")
        if queue is None:
            raise ConfigurationError(f"{who} hands off to no queue: give the automation one")
        if queue not in self.assignments.queues:
            raise ConfigurationError(f"{who} routes to {queue!r}, not a queue of the assignments")
        needed = self.assignments.queues[queue].skills | set(skills)
        if not any(
            agent.serves(queue) and needed <= agent.skills
            for agent in self.assignments.agents.values()
        ):
            raise ConfigurationError(
                f"{who} routes to {queue!r} needing {', '.join(sorted(needed)) or 'no skill'}: "
                "no agent serves it with those skills"
            )

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], history: History, channels: Iterable[Channel]
    ) -> Automation:
        """The automation the ``[automation]`` table of a config describes
        (docs/automation.md lists its keys)."""
        if unknown := sorted(set(table) - _KEYS):
            raise ConfigurationError(f"[automation]: unknown key(s) {', '.join(unknown)}")
        for key in ("greeting", "away", "queue", "hooks"):
            if key in table and not isinstance(table[key], str):
                raise ConfigurationError(f"[automation] {key} is a string")
        hours = BusinessHours.from_config(table["hours"]) if "hours" in table else None
        assignments = None
        if "agents" in table:
            assignments = Assignments.from_config(history, table)
        elif "queue" in table or "queues" in table:
            raise ConfigurationError("[automation] queues need [[automation.agents]] to serve them")
        automation = cls(
            history,
            channels,
            rules=Rules.from_config(table, hours) if {"rules", "mode"} & set(table) else None,
            hours=hours,
            greeting=table.get("greeting"),
            away=table.get("away"),
            assignments=assignments,
            queue=table.get("queue"),
            hooks=_hooks(table["hooks"]) if "hooks" in table else None,
        )
        mirrors = table.get("mirror_tags", {})
        if not isinstance(mirrors, dict):
            raise ConfigurationError("[automation.mirror_tags] is a table: channel = its tags")
        made = [_tag_mirror(automation.fallback.channels, *item) for item in mirrors.items()]
        for mirror in made:
            history.mirror_tags(mirror)
        return automation

    async def on_event(self, event: Event, channel: Channel) -> None:
        """Act on ``event``, already recorded in the history."""
        if isinstance(event, StatusUpdate):
            await self.fallback.status(event)
        elif isinstance(event, MessageReceived) and event.contact is not None:
            await self._on_message(event, channel)

    async def tick(self) -> None:
        """Run the fallback plans that are due, assign waiting conversations and mirror
        customer tags, side by side (the serving worker calls this every poll interval).
        One failing holds up none of the others; each failure is logged, the first
        raised after all ended."""
        jobs: list[Callable[[], Awaitable[object]]] = [
            self.fallback.run_due,
            self.history.sync_tags,
        ]
        if self.assignments is not None:
            jobs.append(self.assignments.assign_waiting)
        failures: list[Exception] = []

        async def run(job: Callable[[], Awaitable[object]]) -> None:
            try:
                await job()
            except Exception as exc:
                logger.warning("automation tick: %s failed: %s", job.__name__, describe(exc))
                failures.append(exc)

        async with anyio.create_task_group() as group:
            for job in jobs:
                group.start_soon(run, job)
        if failures:
            raise failures[0]

    async def _on_message(self, event: MessageReceived, channel: Channel) -> None:
        entry = await self.history.entry(inbound_key(event))
        if entry is None or entry.conversation_id is None:
            return  # the channel records in no history (or another one)
        conversation = await self.history.conversation(entry.conversation_id)
        customer = await self.history.customer(entry.customer_id)
        if conversation is None or customer is None:
            return
        at = event.timestamp or self.history.clock.now()
        is_open = self.hours is None or self.hours.is_open(at)
        new = conversation.opened_by_customer and conversation.opened_at == entry.at
        if self.greeting and new and is_open:
            key = f"greeting:{conversation.id}"
            await self._reply(event, channel, Reply(text=self.greeting), key, conversation.id)
        actions = [
            action
            for match in (self.rules.evaluate(_context(event, customer, at)) if self.rules else [])
            for action in match.actions
        ]
        priority = next(
            (a.priority for a in reversed(actions) if isinstance(a, SetPriority)),
            conversation.priority,
        )
        routed = False
        for number, action in enumerate(actions):
            key = f"auto:{event.event_id}:{number}"
            if isinstance(action, (Reply, ReplyTemplate, ReplyMenu)):
                await self._reply(event, channel, action, key, conversation.id)
            elif isinstance(action, Tag):
                owner = conversation.id if action.on == "conversation" else customer.id
                await self.history.tag(owner, *action.tags)
            elif isinstance(action, SetPriority):
                await self.history.set_priority(conversation.id, action.priority)
            elif isinstance(action, RouteTo):
                await self._route(conversation.id, action.queue, action.skills, priority)
                routed = True
            elif isinstance(action, HandOff):
                await self._hand_off(conversation.id, action.queue, priority, event)
                routed = True
        if self.away and not is_open and self.hours is not None:
            opens = self.hours.next_open(at)
            text = self.away.replace("{opens}", _when(opens))
            period = opens.isoformat() if opens else "never"
            key = f"away:{conversation.id}:{period}"
            await self._reply(event, channel, Reply(text=text), key, conversation.id)
        if not routed and self.queue is not None and await self._unattended(conversation):
            await self._route(conversation.id, self.queue, (), priority)

    async def _unattended(self, conversation: Conversation) -> bool:
        """Whether an open conversation has no agent, or one who went offline (the
        customer wrote to a conversation the team opened, or after its agent left)."""
        if conversation.state is not ConversationState.OPEN or self.assignments is None:
            return False
        if conversation.assignee is None:
            return True
        return not (await self.assignments.status()).get(conversation.assignee, False)

    async def _route(
        self, conversation: str, queue: str, skills: tuple[str, ...], priority: int
    ) -> str | None:
        assert self.assignments is not None  # checked when made
        return await self.assignments.route(conversation, queue, skills=skills, priority=priority)

    async def _hand_off(
        self, conversation: str, queue: str | None, priority: int, event: MessageReceived
    ) -> None:
        queue = queue or self.queue
        assert queue is not None  # checked when made
        agent = await self._route(conversation, queue, (), priority)
        if self.hooks.on_handoff is not None:
            reason = f"a rule handed off on {event.channel} event {event.event_id}"
            await self.hooks.on_handoff(HandedOff(conversation, queue, agent, reason))

    async def _reply(
        self,
        event: MessageReceived,
        channel: Channel,
        action: Reply | ReplyTemplate | ReplyMenu,
        key: str,
        conversation: str,
    ) -> None:
        """Send ``action``'s reply under ``key``, at most once: the first attempt claims
        the key in the history's database, and no other (a retry, another worker) sends
        it again, whatever became of that one. A reply that is refused, cannot be
        carried or fails at the provider is recorded and noted, not raised: the event
        goes on to the handler (only a history failure fails it)."""
        message: Message | None = _message(action, event)
        if self.hooks.before_reply is not None and message is not None:
            message = await self.hooks.before_reply(event, message)
        if message is None:
            return
        claim = send_key(message.channel, key)
        now = micros(self.history.clock.now())
        if not await self.history.database.run(lambda: _claim(claim, now)):
            return
        try:
            await channel.send(message, history_key=key, automated=True)
        except PolicyRefusedError as exc:  # recorded with its reason by the channel
            logger.info("automatic reply to %s refused: %s", event.event_id, exc)
        except HistoryError:
            raise
        except ChatbridgeError as exc:  # provider errors, a message the channel cannot carry
            logger.warning("automatic reply to %s: %s", event.event_id, describe(exc))
            note = Note(text=f"automatic reply: {describe(exc)}", author="chatbridge.automation")
            await self.history.note(conversation, note)


def _claim(key: str, at: int) -> Op[bool]:
    rows = yield (
        "INSERT INTO reply_claims (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING "
        "RETURNING key",
        (key, at),
    )
    return bool(rows)


#: The keys of the [automation] table.
_KEYS = {
    "mode",
    "rules",
    "hours",
    "greeting",
    "away",
    "queue",
    "hooks",
    "assigner",
    "agents",
    "queues",
    "mirror_tags",
}


def _tag_mirror(channels: Mapping[str, Channel], name: str, tags: object) -> TagMirror:
    """The mirror ``[automation.mirror_tags] <name> = tags`` configures: a table of history
    tag → the channel's tag name, or a list of tags mirrored under their own names."""
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        tags = {tag: tag for tag in tags}
    where = f"[automation.mirror_tags] {name}"
    if not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        raise ConfigurationError(f"{where} is a list of tags or a table of tag = its name there")
    if name not in channels:
        raise ConfigurationError(f"{where}: no channel {name!r} is served")
    try:
        return channels[name].tag_mirror(tags)
    except (ChatbridgeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc


def _hooks(spec: str) -> Hooks:
    """The :class:`Hooks` object named ``MODULE:ATTRIBUTE``."""
    try:
        hooks = load_attribute(spec, "hooks")
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"[automation] hooks: cannot load {spec}: {exc}") from exc
    if not isinstance(hooks, Hooks):
        raise ConfigurationError(f"[automation] hooks: {spec} is not a chatbridge Hooks object")
    return hooks


def _message(action: Reply | ReplyTemplate | ReplyMenu, event: MessageReceived) -> Message:
    assert event.contact is not None
    contact, thread = event.contact, event.message.thread
    if isinstance(action, Reply):
        return Message(contact=contact, text=action.text, thread=thread)
    if isinstance(action, ReplyTemplate):
        return Message(contact=contact, template=action.template, thread=thread)
    return Message(contact=contact, interactive=action.interactive, thread=thread)


def _context(event: MessageReceived, customer: Customer, at: datetime) -> Context:
    message = event.message
    reply = message.interactive_reply
    text = message.stripped_text or message.text or (reply.title or reply.id if reply else None)
    return Context(
        text=text,
        channel=event.channel,
        language=customer.language,
        customer_tags=frozenset(customer.tags),
        fields=customer.fields,
        at=at,
    )


def _when(at: datetime | None) -> str:
    return at.strftime("%A %H:%M") if at is not None else "later"
