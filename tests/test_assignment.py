"""Assignment (chatbridge.automation.assignment): queues, agents, assigners, capacity
under concurrency; every test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbridge.automation.assignment import (
    DEFAULT_QUEUE,
    Agent,
    Assignments,
    Candidate,
    LeastLoaded,
    Need,
    Queue,
    RoundRobin,
    SkillsFirst,
    _page,
    _Route,
    _tidy,
    assignment_config,
)
from chatbridge.clock import FakeClock
from chatbridge.conversations import History
from chatbridge.conversations.model import ConversationState
from chatbridge.conversations.ops import Op
from chatbridge.errors import ConfigurationError
from chatbridge.models import Direction, Identity, Message, MessageReceived
from chatbridge.recorder import SendOutcome, SendRecord

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
_ids = itertools.count()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


class Customers:
    """New customers writing in (each opens a conversation), and the team answering."""

    def __init__(self, history: History, clock: FakeClock) -> None:
        self.history = history
        self.clock = clock
        self.who: dict[str, Identity] = {}

    async def open(self, n: int = 1) -> list[str]:
        """``n`` new conversations, opened in one webhook batch; their ids in order."""
        return await self.write([self.new() for _ in range(n)])

    async def team_opens(self) -> str:
        """A conversation the team opens (its first message answers it), then the
        customer writes back (it is open)."""
        who = self.new()
        send = SendRecord(
            f"k{next(_ids)}",
            [Message(contact=who, text="hi")],
            None,
            SendOutcome.SENT,
            self.clock.now(),
        )
        await self.history.record_send(send)
        [conversation] = await self.write([who])
        return conversation

    @staticmethod
    def new() -> Identity:
        return Identity(channel="whatsapp", address=f"1555{next(_ids):07d}")

    async def write(self, people: list[Identity]) -> list[str]:
        """The ``people`` write, in one webhook batch; their conversations in order."""
        now = self.clock.now()
        await self.history.record_events(
            [
                MessageReceived(
                    channel=who.channel,
                    event_id=f"in{next(_ids)}",
                    contact=who,
                    timestamp=now,
                    message=Message(contact=who, direction=Direction.INBOUND, text="help"),
                )
                for who in people
            ]
        )
        opened = []
        for who in people:
            [conversation] = await self.history.conversations(customer=who)
            self.who[conversation.id] = who
            opened.append(conversation.id)
        return opened

    async def answer(self, conversation: str) -> None:
        """The team's first reply: the conversation is handled."""
        who = self.who[conversation]
        message = Message(contact=who, text="on it")
        send = SendRecord(f"k{next(_ids)}", [message], None, SendOutcome.SENT, self.clock.now())
        await self.history.record_send(send)


@pytest.fixture
def customers(history: History, clock: FakeClock) -> Customers:
    return Customers(history, clock)


async def assignee(history: History, conversation: str) -> str | None:
    found = await history.conversation(conversation)
    assert found is not None
    return found.assignee


async def route_table(history: History) -> dict[str, str | None]:
    """The ``routes`` table: each conversation's agent (None: waiting)."""

    def read() -> Op[dict[str, str | None]]:
        rows = yield ("SELECT conversation_id, agent FROM routes", ())
        return dict(rows)

    return await history.database.read(read)


async def everyone_online(assignments: Assignments) -> None:
    for agent_id in assignments.agents:
        await assignments.online(agent_id)


# -- the assigners on their own -----------------------------------------------------------


def candidate(agent_id: str, load: int, last: int, skills: Sequence[str] = ()) -> Candidate:
    return Candidate(Agent(agent_id, skills=frozenset(skills)), load, last)


NEED = Need("con_x", DEFAULT_QUEUE, frozenset(), frozenset({"es", "vip"}), 0)


def test_round_robin_takes_the_agent_assigned_least_recently() -> None:
    found = [candidate("a", 0, 30), candidate("b", 4, 10), candidate("c", 1, 20)]
    assert RoundRobin().choose(found, NEED) == "b"
    assert RoundRobin().choose([candidate("b", 0, 5), candidate("a", 3, 5)], NEED) == "a"


def test_least_loaded_takes_the_fewest_unhandled_then_the_least_recent() -> None:
    found = [candidate("a", 2, 1), candidate("b", 1, 30), candidate("c", 1, 20)]
    assert LeastLoaded().choose(found, NEED) == "c"


def test_skills_first_takes_the_most_wanted_skills_then_the_least_loaded() -> None:
    found = [
        candidate("a", 0, 0),
        candidate("b", 3, 0, ["es"]),
        candidate("c", 4, 0, ["es", "vip"]),
        candidate("d", 2, 0, ["vip", "fr"]),
    ]
    assert SkillsFirst().choose(found, NEED) == "c"
    assert SkillsFirst().choose(found[:2] + found[3:], NEED) == "d"  # one each: less loaded


# -- routing ------------------------------------------------------------------------------


async def test_route_assigns_by_the_assigner_within_capacity(
    history: History, customers: Customers
) -> None:
    team = [Agent("ana", capacity=2), Agent("bob", capacity=1)]
    assignments = Assignments(history, team, assigner=LeastLoaded())
    await everyone_online(assignments)
    first, second, third, fourth = await customers.open(4)

    assert await assignments.route(first) == "ana"  # a tie: least recently assigned, then id
    assert await assignments.route(second) == "bob"
    assert await assignments.route(third) == "ana"
    assert await assignments.route(fourth) is None  # every agent is full: it waits
    assert await assignments.load() == {"ana": 2, "bob": 1}
    assert [w.conversation_id for w in await assignments.waiting()] == [fourth]
    assert await assignee(history, third) == "ana"
    assert await assignee(history, fourth) is None


async def test_round_robin_turns_even_when_the_clock_stands(
    history: History, customers: Customers
) -> None:
    assignments = Assignments(history, [Agent(n, capacity=9) for n in "abc"], assigner=RoundRobin())
    await everyone_online(assignments)
    chosen = [await assignments.route(c) for c in await customers.open(7)]
    assert chosen == ["a", "b", "c", "a", "b", "c", "a"]


async def test_required_skills_and_the_queues_an_agent_serves(
    history: History, customers: Customers
) -> None:
    queues = [Queue("sales"), Queue("billing", skills=frozenset({"billing"}))]
    team = [
        Agent("ana", skills=frozenset({"billing"}), queues=frozenset({"billing"})),
        Agent("bob", skills=frozenset({"billing", "es"})),
        Agent("cy", queues=frozenset({"sales"})),
    ]
    assignments = Assignments(history, team, queues)
    await everyone_online(assignments)
    sale, spanish, bill, nobody = await customers.open(4)

    assert await assignments.route(sale, "sales") == "bob"  # ana serves billing only
    assert await assignments.route(spanish, "billing", skills=["es"]) == "bob"
    assert await assignments.route(bill, "billing") == "ana"  # bob is busier; cy lacks it
    assert await assignments.route(nobody, "sales", skills=["de"]) is None
    with pytest.raises(LookupError, match="no queue 'support'"):
        await assignments.route(sale, "support")
    with pytest.raises(LookupError, match="no conversation"):
        await assignments.route("con_missing", "sales")


async def test_skills_first_prefers_the_wanted_skills(
    history: History, customers: Customers
) -> None:
    team = [Agent("ana"), Agent("bob", skills=frozenset({"vip"}))]
    assignments = Assignments(history, team, assigner=SkillsFirst())
    await everyone_online(assignments)
    first, second = await customers.open(2)
    assert await assignments.route(first, wants=["vip"]) == "bob"
    assert await assignments.route(second, wants=["vip"]) == "bob"  # still the only one


async def test_waiting_goes_by_priority_then_age(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=1)])
    old, vip, new = await customers.open(3)
    await history.set_priority(vip, 5)
    for conversation in (old, vip, new):
        clock.advance(timedelta(minutes=1))
        assert await assignments.route(conversation) is None  # nobody online
    listed = await assignments.waiting()
    assert [w.conversation_id for w in listed] == [vip, old, new]
    assert [w.priority for w in listed] == [5, 0, 0]
    assert listed[1].since == T0 + timedelta(minutes=1)

    assert await assignments.online("ana") == [(vip, "ana")]
    await customers.answer(vip)  # handled: room for the next
    assert await assignments.assign_waiting() == [(old, "ana")]
    assert [w.conversation_id for w in await assignments.waiting()] == [new]


async def test_route_is_idempotent(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=1), Agent("bob", capacity=1)])
    await assignments.online("ana")
    first, second = await customers.open(2)
    assert await assignments.route(first) == "ana"
    assert await assignments.route(second) is None
    await assignments.online("bob")  # takes the waiting one
    for _ in range(2):
        assert await assignments.route(first) == "ana"
        assert await assignments.route(second) == "bob"
    assert await assignments.load() == {"ana": 1, "bob": 1}

    await assignments.offline("bob")  # second waits again, in its place
    clock.advance(timedelta(minutes=1))
    third = (await customers.open())[0]
    assert await assignments.route(third) is None
    assert await assignments.route(third) is None  # waiting: stays as it is
    assert [(w.conversation_id, w.priority) for w in await assignments.waiting()] == [
        (second, 0),
        (third, 0),
    ]
    assert await assignments.route(third, priority=9) is None  # a new priority: ahead
    assert [(w.conversation_id, w.priority) for w in await assignments.waiting()] == [
        (third, 9),
        (second, 0),
    ]


async def test_a_first_response_frees_capacity(history: History, customers: Customers) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=1)])
    await assignments.online("ana")
    first, second = await customers.open(2)
    assert await assignments.route(first) == "ana"
    assert await assignments.route(second) is None
    await customers.answer(first)
    assert await assignments.load() == {"ana": 0}
    assert await assignments.assign_waiting() == [(second, "ana")]
    assert await assignments.route(first) == "ana"  # answered, still open: still hers


async def test_resolved_waiting_conversations_are_not_assigned(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana")])
    gone, released, kept = await customers.open(3)
    for conversation in (gone, released, kept):
        clock.advance(timedelta(seconds=1))
        await assignments.route(conversation)
    await history.resolve(gone)  # resolved, not released: dropped when met
    await history.resolve(released)
    await assignments.release(released)
    assert [w.conversation_id for w in await assignments.waiting()] == [gone, kept]
    assert await assignments.online("ana") == [(kept, "ana")]
    assert await assignments.waiting() == []
    assert await assignments.route(gone) is None  # not open: left alone


async def test_assign_waiting_drops_conversations_no_longer_open(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=1)])
    await assignments.online("ana")
    busy, pending, resolved, kept = await customers.open(4)
    for conversation in (busy, pending, resolved, kept):
        clock.advance(timedelta(seconds=1))
        await assignments.route(conversation)
    await history.set_state(pending, ConversationState.PENDING)  # the team waits
    await history.resolve(resolved)  # resolved, not released
    await customers.answer(busy)  # room for one
    assert await route_table(history) == {busy: "ana", pending: None, resolved: None, kept: None}

    assert await assignments.assign_waiting(limit=1) == []  # met pending: dropped
    assert await assignments.assign_waiting(limit=1) == []  # then resolved
    assert await assignments.assign_waiting(limit=1) == [(kept, "ana")]
    assert await route_table(history) == {kept: "ana"}  # busy, handled, is forgotten too
    assert await assignee(history, pending) is None

    await customers.write([customers.who[pending]])  # open again: it can be routed again
    assert await assignments.route(pending) is None
    assert [w.conversation_id for w in await assignments.waiting()] == [pending]


async def test_a_conversation_the_team_opened_does_not_count(
    history: History, customers: Customers
) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=1), Agent("bob", capacity=1)])
    await assignments.online("ana")
    ours = await customers.team_opens()
    found = await history.conversation(ours)
    assert found is not None
    assert (found.state, found.opened_by_customer, found.first_response_at) == ("open", False, None)

    assert await assignments.route(ours) == "ana"
    assert await assignments.load() == {"ana": 0, "bob": 0}  # answered by its first message
    assert await route_table(history) == {}  # handled: its route is forgotten
    [theirs] = await customers.open()
    assert await assignments.route(theirs) == "ana"  # she still has room
    assert await assignments.load() == {"ana": 1, "bob": 0}
    await assignments.online("bob")
    assert await assignments.offline("ana") == [(theirs, "bob")]  # only the unhandled one
    assert await assignee(history, ours) == "ana"


async def test_any_queue_name_will_do(history: History, customers: Customers) -> None:
    queues = [Queue("@ana"), Queue("ana")]
    assignments = Assignments(history, [Agent("ana", capacity=1)], queues)
    await assignments.online("ana")
    first, second = await customers.open(2)
    assert await assignments.route(first, "@ana") == "ana"
    assert await assignments.route(second, "ana") is None
    assert await assignments.waiting("@ana") == []
    assert [(w.conversation_id, w.queue) for w in await assignments.waiting()] == [(second, "ana")]
    assert await route_table(history) == {first: "ana", second: None}
    assert assignment_config({"queues": [{"name": "@x"}]})[1] == [Queue("@x")]


async def test_the_waiting_list_is_read_from_its_index(tmp_path: Path, clock: FakeClock) -> None:
    """SQLite's plans of the routes queries: index ranges, no sort (PostgreSQL's depend
    on its statistics)."""
    history = History.sqlite(tmp_path / "plans.db", clock=clock)
    try:
        assignments = Assignments(history, [Agent("ana")])
        await assignments.status()  # the schema is made
        after = _Route("con_a", "default", frozenset(), frozenset(), 2, 0)
        queries = [
            *next(assignments._heads(["default"], 10))[1],
            *_page("default", after, 10),
            next(assignments._due())[1][1],  # is anything waiting?
            next(assignments._set_offline("ana", 0))[1][-1],
            _tidy("ana", ["con_a", "con_b"]),
        ]
    finally:
        await history.aclose()
    with sqlite3.connect(tmp_path / "plans.db") as db:
        plans = [
            " / ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {q}", p))
            for q, p in queries
        ]
    assert plans == [
        "SEARCH routes USING INDEX routes_waiting (queue=?)",
        "SEARCH routes USING INDEX routes_waiting "
        "(queue=? AND priority=? AND (since,conversation_id)>(?,?))",
        "SEARCH routes USING INDEX routes_waiting (queue=? AND priority<?)",
        "SEARCH routes USING INDEX routes_waiting (queue=?)",
        "SEARCH routes USING INDEX routes_agent (agent=?)",
        "SEARCH routes USING INDEX routes_agent (agent=?)",
    ]


async def test_conversations_no_free_agent_can_take_do_not_hold_up_the_line(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana")])
    japanese = await customers.open(100)
    for conversation in japanese:
        await assignments.route(conversation, skills=["ja"])  # nobody online: it waits
    clock.advance(timedelta(seconds=1))
    [plain] = await customers.open()
    await assignments.route(plain)
    assert await assignments.online("ana") == [(plain, "ana")]  # behind 100 she cannot take
    assert len(await assignments.waiting(limit=1000)) == 100


async def test_assign_waiting_pages_on_where_it_stopped_and_keeps_the_order(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    team = [Agent("ana", capacity=1), Agent("kenji", capacity=2, skills=frozenset({"ja"}))]
    assignments = Assignments(history, team)
    await assignments.online("ana")
    [busy] = await customers.open()
    assert await assignments.route(busy) == "ana"
    for conversation in await customers.open(60):
        await assignments.route(conversation, skills=["ja"])
    first, second = await customers.open(2)
    for conversation in (first, second):
        clock.advance(timedelta(seconds=1))
        assert await assignments.route(conversation) is None  # ana is full
    await customers.answer(busy)

    assert await assignments.assign_waiting(scan=50) == []  # 50 met: none she can take
    assert await assignments.assign_waiting(scan=50) == [(first, "ana")]  # on from there
    await customers.answer(first)
    assert await assignments.assign_waiting(scan=50) == []  # she was full: the front again
    assert await assignments.assign_waiting(scan=50) == [(second, "ana")]

    oldest = [w.conversation_id for w in await assignments.waiting(limit=2)]
    assert await assignments.online("kenji") == [(c, "kenji") for c in oldest]


async def test_assign_waiting_merges_the_queues_lines_by_priority_then_age(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=2)], [Queue("a"), Queue("b")])
    older, vip, newer = await customers.open(3)
    await assignments.route(older, "b")
    clock.advance(timedelta(seconds=1))
    await assignments.route(vip, "b", priority=1)
    await assignments.route(newer, "a")
    assert await assignments.online("ana") == [(vip, "ana"), (older, "ana")]


async def test_an_idle_assign_waiting_writes_nothing(
    history: History, customers: Customers, monkeypatch: pytest.MonkeyPatch
) -> None:
    assignments = Assignments(history, [Agent("ana")])
    written: list[object] = []
    run = history.database.run

    async def recording(op: Callable[[], Op[Any]]) -> Any:
        written.append(op)
        return await run(op)

    monkeypatch.setattr(history.database, "run", recording)
    assert await assignments.assign_waiting() == []  # nothing waits, nobody is online
    [conversation] = await customers.open()
    await assignments.route(conversation)
    written.clear()
    assert await assignments.assign_waiting() == []  # one waits, nobody is online
    assert written == []
    assert await assignments.online("ana") == [(conversation, "ana")]
    written.clear()
    assert await assignments.assign_waiting() == []  # she is online, nothing waits
    assert written == []


async def test_offline_gives_the_unhandled_conversations_to_others(
    history: History, customers: Customers, clock: FakeClock
) -> None:
    assignments = Assignments(history, [Agent("ana", capacity=3), Agent("bob", capacity=2)])
    await assignments.online("ana")
    first, second, answered = await customers.open(3)
    for conversation in (first, second, answered):
        assert await assignments.route(conversation) == "ana"
    await customers.answer(answered)
    clock.advance(timedelta(minutes=1))
    later = (await customers.open())[0]
    assert await assignments.route(later) == "ana"  # she has room again

    await assignments.online("bob")
    moved = await assignments.offline("ana")
    assert sorted(moved) == sorted([(first, "bob"), (second, "bob")])  # first in line
    assert [w.conversation_id for w in await assignments.waiting()] == [later]
    assert await assignee(history, answered) == "ana"  # handled: stays hers
    assert await assignments.load() == {"ana": 0, "bob": 2}
    assert await assignments.status() == {"ana": False, "bob": True}
    assert await assignments.route(first) == "bob"


async def test_a_conversation_of_an_agent_gone_offline_is_routed_again(
    history: History, customers: Customers
) -> None:
    assignments = Assignments(history, [Agent("ana"), Agent("bob")])
    await assignments.online("bob")
    [conversation] = await customers.open()
    await history.assign(conversation, "ana")  # by hand, to someone offline
    assert await assignments.route(conversation) == "bob"


async def test_an_assigner_cannot_choose_an_ineligible_agent(
    history: History, customers: Customers
) -> None:
    class Rogue:
        def choose(self, candidates: Sequence[Candidate], need: Need) -> str | None:
            return "bob"

    assignments = Assignments(history, [Agent("ana"), Agent("bob")], assigner=Rogue())
    await assignments.online("ana")
    [conversation] = await customers.open()
    with pytest.raises(ValueError, match="Rogue chose 'bob'"):
        await assignments.route(conversation)
    assert await assignments.load() == {"ana": 0, "bob": 0}


# -- several processes at once ------------------------------------------------------------


async def test_two_workers_never_exceed_a_cap(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    one, two = make_history(), make_history()
    team = [Agent(f"agent{n}", capacity=5) for n in range(5)]
    workers = [Assignments(one, team), Assignments(two, team)]
    await everyone_online(workers[0])
    conversations = await Customers(one, clock).open(100)

    results: dict[str, str | None] = {}

    async def route(worker: Assignments, conversation: str) -> None:
        results[conversation] = await worker.route(conversation)

    async with anyio.create_task_group() as group:
        for n, conversation in enumerate(conversations):
            group.start_soon(route, workers[n % 2], conversation)

    assigned = [c for c, agent in results.items() if agent is not None]
    assert len(assigned) == 25
    assert await workers[1].load() == {agent.id: 5 for agent in team}
    waiting = await workers[0].waiting(limit=1000)
    assert sorted(w.conversation_id for w in waiting) == sorted(set(conversations) - set(assigned))
    for conversation in assigned:
        assert await assignee(two, conversation) == results[conversation]


async def test_two_workers_with_agents_going_offline_midway(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    one, two = make_history(), make_history()
    team = [Agent(f"agent{n}", capacity=5) for n in range(5)]
    workers = [Assignments(one, team), Assignments(two, team)]
    await everyone_online(workers[0])
    conversations = await Customers(one, clock).open(100)

    async with anyio.create_task_group() as group:
        for n, conversation in enumerate(conversations):
            group.start_soon(workers[n % 2].route, conversation)
            if n == 40:
                group.start_soon(workers[1].offline, "agent3")
            if n == 70:
                group.start_soon(workers[0].offline, "agent1")
                group.start_soon(workers[1].assign_waiting)
    await workers[0].assign_waiting()

    loads = await workers[0].load()
    assert loads == {"agent0": 5, "agent1": 0, "agent2": 5, "agent3": 0, "agent4": 5}
    waiting = {w.conversation_id for w in await workers[1].waiting(limit=1000)}
    assert len(waiting) == 85
    for conversation in conversations:
        holder = await assignee(one, conversation)
        assert (holder is None) == (conversation in waiting), conversation
        assert holder in (None, "agent0", "agent2", "agent4")


# -- a property: whatever happens, no cap is exceeded and nothing is lost ------------------

PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

routes = st.tuples(st.just("route"), st.integers(0, 2), st.integers(0, 2))
steps = st.lists(
    st.one_of(
        routes,
        routes,  # twice as likely as the others: queues fill up
        st.tuples(st.sampled_from(["online", "offline"]), st.integers(0, 2), st.just(0)),
        st.tuples(st.sampled_from(["answer", "resolve"]), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("assign_waiting"), st.integers(1, 3), st.just(0)),
    ),
    max_size=16,
)


@PROPERTY
@given(present=st.lists(st.booleans(), min_size=3, max_size=3), steps=steps)
async def test_no_cap_is_exceeded_and_no_conversation_is_lost(
    history: History, clock: FakeClock, present: list[bool], steps: list[tuple[str, int, int]]
) -> None:
    n = next(_ids)  # every example has agents and conversations of its own
    queues = [Queue(f"general{n}"), Queue(f"vip{n}")]
    team = [
        Agent(f"a{n}", capacity=1),
        Agent(f"b{n}", capacity=2, skills=frozenset({"es"})),
        Agent(f"c{n}", capacity=2, queues=frozenset({f"vip{n}"})),
    ]
    assignments = Assignments(history, team, queues)
    for agent, here in zip(team, present, strict=True):
        if here:
            await assignments.online(agent.id)
    customers = Customers(history, clock)
    routed: list[str] = []  # open, unanswered, routed: each assigned or waiting
    done: set[str] = set()
    for step, x, y in steps:
        clock.advance(timedelta(seconds=1))
        if step == "route":
            [conversation] = await customers.open()
            queue = queues[x % 2].name
            await assignments.route(conversation, queue, skills=["es"][: y % 2], priority=y)
            routed.append(conversation)
        elif step in ("online", "offline"):
            await getattr(assignments, step)(team[x].id)
        elif step == "assign_waiting":
            await assignments.assign_waiting(limit=x)
        elif routed:
            conversation = routed[x % len(routed)]
            if step == "answer":
                await customers.answer(conversation)
            else:
                await history.resolve(conversation)
                await assignments.release(conversation)
            done.add(conversation)
        loads = await assignments.load()
        assert all(loads[agent.id] <= agent.capacity for agent in team), loads
        online = await assignments.status()
        waiting = {w.conversation_id for w in await assignments.waiting(limit=1000)}
        table = await route_table(history)
        for conversation in routed:
            if conversation in done:
                continue
            holder = await assignee(history, conversation)
            assert (holder is None) == (conversation in waiting)
            assert holder is None or online[holder]
            assert table[conversation] == holder  # its route: waiting, or held by its agent


# -- configuration ------------------------------------------------------------------------

CONFIG: dict[str, Any] = {
    "assigner": "round-robin",
    "rules": [{"contains": "refund"}],  # the rest of the automation: not ours
    "queues": [{"name": "general"}, {"name": "billing", "skills": ["billing"]}],
    "agents": [
        {"id": "ana", "capacity": 3, "skills": ["billing"], "queues": ["billing"]},
        {"id": "bob"},
    ],
}


def test_the_config_shape() -> None:
    agents, queues, assigner = assignment_config(CONFIG)
    assert agents == [
        Agent("ana", 3, frozenset({"billing"}), frozenset({"billing"})),
        Agent("bob", 5, frozenset(), None),
    ]
    assert queues == [Queue("general"), Queue("billing", frozenset({"billing"}))]
    assert isinstance(assigner, RoundRobin)
    agents, queues, assigner = assignment_config({"agents": [{"id": "ana"}]})
    assert (queues, type(assigner)) == ([Queue(DEFAULT_QUEUE)], LeastLoaded)


async def test_from_config(history: History) -> None:
    assignments = Assignments.from_config(history, CONFIG)
    assert sorted(assignments.agents) == ["ana", "bob"]
    assert isinstance(assignments.assigner, RoundRobin)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"assigner": "random"}, "assigner is one of round-robin, least-loaded, skills-first"),
        ({"agents": [{"id": "ana", "capacty": 2}]}, "unknown key 'capacty'"),
        ({"queues": [{"name": "x", "skill": []}]}, "unknown key 'skill'"),
        ({"agents": [{"id": "ana", "capacity": -1}]}, "capacity is a whole number"),
        ({"agents": [{"id": "ana", "capacity": True}]}, "capacity is a whole number"),
        ({"agents": [{"id": "ana", "skills": "es"}]}, "skills is a list"),
        ({"agents": [{"capacity": 2}]}, "id is a non-empty string"),
        ({"agents": [{"id": "ana"}, {"id": "ana"}]}, "'ana' is given twice"),
        ({"agents": [{"id": "ana", "queues": ["vip"]}]}, "declares: vip"),
        ({"agents": {"id": "ana"}}, "array of tables"),
    ],
)
def test_config_mistakes(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        assignment_config({"agents": [], **change})


async def test_definitions_are_checked(history: History) -> None:
    with pytest.raises(ValueError, match="capacity"):
        Agent("ana", capacity=-1)
    with pytest.raises(TypeError, match="collection of names"):
        Agent("ana", skills="es")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown queues"):
        Assignments(history, [Agent("ana", queues=frozenset({"vip"}))])
