"""Assignment: queues, agents with a capacity and skills, pluggable assigners.

An :class:`Agent` (configuration) serves some queues, has skills, and holds at most
``capacity`` *unhandled* conversations: assigned to them, open, opened by the customer and
not answered yet (``first_response_at`` unset; one the team opened was answered by its
first message). A :class:`Queue` names the skills every conversation routed to it needs.
Whether an agent is online is shared state (table ``agents``): every worker process sees
the same team.

:meth:`Assignments.route` gives a conversation to an eligible agent (online, serving the
queue, with every skill needed, below capacity) chosen by the :class:`Assigner`, or puts
it on the queue's waiting list (highest priority, then longest waiting, first);
:meth:`Assignments.assign_waiting` hands those out as room frees up, paging through each
line so that conversations no free agent can take do not hold up those behind them. An
agent going offline gives their unhandled conversations back to their queues, keeping
their place.

Every decision is one transaction that first locks the rows of the agents it may choose
from (PostgreSQL: ``SELECT ... FOR UPDATE`` in id order; SQLite runs one writer at a
time), then counts their loads: no agent is given a conversation past their capacity,
whatever the number of processes deciding at once.

Table ``routes`` keeps a routed conversation's queue, skills, priority and since when;
``agent`` is NULL while it waits (index ``routes_waiting``: a queue's line), else the agent
holding it (index ``routes_agent``), so that it can go back to its queue.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self

from chatbridge.clock import Clock
from chatbridge.conversations import History
from chatbridge.conversations.model import ConversationState
from chatbridge.conversations.ops import Op, Query, Row, marks, micros, moment, together
from chatbridge.errors import ConfigurationError

#: The queue conversations go to when the configuration names none.
DEFAULT_QUEUE = "default"

_OPEN = ConversationState.OPEN.value
#: An open conversation counts against its assignee's capacity while this holds.
_UNANSWERED = "first_response_at IS NULL AND opened_by_customer = 1"
#: An agent's unhandled conversations: ``state`` and ``assignee`` are the keys of the
#: partial index ``conversations_unhandled``, whose condition ``_UNANSWERED`` states
#: literally (SQLite and PostgreSQL use a partial index only then).
_UNHANDLED = f"state = '{_OPEN}' AND {_UNANSWERED}"
#: The routes of a queue's line :meth:`Assignments.assign_waiting` reads at once.
_PAGE = 100


def _names(values: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} is a collection of names, not the string {values!r}")
    names = frozenset(values)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{what} are non-empty strings: {sorted(map(repr, names))}")
    return names


@dataclass(frozen=True)
class Agent:
    """A person who takes conversations: at most ``capacity`` unhandled ones at once,
    from ``queues`` (None: every queue), needing no skill they lack."""

    id: str
    capacity: int = 5
    skills: frozenset[str] = frozenset()
    queues: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"an agent id is a non-empty string, not {self.id!r}")
        if type(self.capacity) is not int or self.capacity < 0:
            raise ValueError(f"agent {self.id!r}: capacity is a whole number >= 0")
        object.__setattr__(self, "skills", _names(self.skills, f"agent {self.id!r}: skills"))
        if self.queues is not None:
            object.__setattr__(self, "queues", _names(self.queues, f"agent {self.id!r}: queues"))

    def serves(self, queue: str) -> bool:
        return self.queues is None or queue in self.queues


@dataclass(frozen=True)
class Queue:
    """A line of conversations; each routed here needs every one of ``skills``."""

    name: str
    skills: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a queue name is a non-empty string, not {self.name!r}")
        object.__setattr__(self, "skills", _names(self.skills, f"queue {self.name!r}: skills"))


@dataclass(frozen=True)
class Need:
    """What a conversation asks of its agent: every one of ``skills`` (its queue's and
    its route's), and preferably ``wants``."""

    conversation_id: str
    queue: str
    skills: frozenset[str]
    wants: frozenset[str]
    priority: int


@dataclass(frozen=True)
class Candidate:
    """An eligible agent, their unhandled ``load``, and when they were last given a
    conversation (``last_assigned``: an increasing stamp in microseconds, 0 for never)."""

    agent: Agent
    load: int
    last_assigned: int


class Assigner(Protocol):
    """Chooses who of the eligible ``candidates`` (never empty; in agent id order) takes
    a conversation; the agent's id, or None to leave it waiting. A pure function of its
    arguments: a decision may be made again after a conflict."""

    def choose(self, candidates: Sequence[Candidate], need: Need) -> str | None: ...


class RoundRobin:
    """The eligible agent assigned least recently."""

    name: ClassVar[str] = "round-robin"

    def choose(self, candidates: Sequence[Candidate], need: Need) -> str | None:
        return min(candidates, key=lambda c: (c.last_assigned, c.agent.id)).agent.id


class LeastLoaded:
    """The eligible agent with the fewest unhandled conversations; then the one assigned
    least recently."""

    name: ClassVar[str] = "least-loaded"

    def choose(self, candidates: Sequence[Candidate], need: Need) -> str | None:
        return min(candidates, key=lambda c: (c.load, c.last_assigned, c.agent.id)).agent.id


class SkillsFirst:
    """The eligible agent with the most of the skills the conversation wants; then the
    least loaded, then the one assigned least recently."""

    name: ClassVar[str] = "skills-first"

    def choose(self, candidates: Sequence[Candidate], need: Need) -> str | None:
        return min(
            candidates,
            key=lambda c: (-len(need.wants & c.agent.skills), c.load, c.last_assigned, c.agent.id),
        ).agent.id


#: The assigners a configuration names (``assigner = "least-loaded"``).
ASSIGNERS: dict[str, type[RoundRobin | LeastLoaded | SkillsFirst]] = {
    kind.name: kind for kind in (RoundRobin, LeastLoaded, SkillsFirst)
}


@dataclass(frozen=True)
class Waiting:
    """A conversation waiting in ``queue`` since ``since``."""

    conversation_id: str
    queue: str
    priority: int
    since: datetime
    skills: frozenset[str] = frozenset()
    wants: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Route:
    """A row of ``routes``: ``skills`` are needed besides the queue's; ``agent`` holds
    it (None: it waits)."""

    conversation_id: str
    queue: str
    skills: frozenset[str]
    wants: frozenset[str]
    priority: int
    since: int
    agent: str | None = None

    @classmethod
    def of(cls, row: Row) -> _Route:
        conversation, queue, skills, priority, since, agent = row
        named = json.loads(skills)  # {"needs": [...], "wants": [...]}
        needs, wants = frozenset(named["needs"]), frozenset(named["wants"])
        return cls(conversation, queue, needs, wants, int(priority), int(since), agent)

    def put(self, agent: str | None) -> Query:
        """Write this route, held by ``agent`` (None: waiting)."""
        skills = json.dumps({"needs": sorted(self.skills), "wants": sorted(self.wants)})
        return (
            "INSERT INTO routes (conversation_id, queue, skills, priority, since, agent) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
            "queue = excluded.queue, skills = excluded.skills, priority = excluded.priority, "
            "since = excluded.since, agent = excluded.agent",
            (self.conversation_id, self.queue, skills, self.priority, self.since, agent),
        )

    def order(self) -> tuple[int, int, str]:
        return (-self.priority, self.since, self.conversation_id)

    def public(self) -> Waiting:
        since = moment(self.since)
        assert since is not None
        return Waiting(
            self.conversation_id, self.queue, self.priority, since, self.skills, self.wants
        )


_ROUTE = "SELECT conversation_id, queue, skills, priority, since, agent FROM routes"


def _drop(conversation: str) -> Query:
    return ("DELETE FROM routes WHERE conversation_id = ?", (conversation,))


def _unassign(conversation: str) -> Query:
    return ("UPDATE conversations SET assignee = NULL WHERE id = ?", (conversation,))


def _tidy(agent_id: str, keep: Sequence[str]) -> Query:
    """Forget the routes ``agent_id`` holds but ``keep`` (index ``routes_agent``)."""
    but = f" AND conversation_id NOT IN ({marks(keep)})" if keep else ""
    return (f"DELETE FROM routes WHERE agent = ?{but}", (agent_id, *keep))


def _load_query(ids: Sequence[str]) -> Query:
    """The unhandled conversations (assignee, id) of the agents ``ids``: no more rows
    than they hold (the partial index ``conversations_unhandled``, whatever the open
    conversations they answered). Run after the agents are locked, it sees every
    assignment committed before (PostgreSQL's READ COMMITTED: each statement reads what
    was committed when it started)."""
    return (
        f"SELECT assignee, id FROM conversations WHERE assignee IN ({marks(ids)}) AND {_UNHANDLED}",
        tuple(ids),
    )


def _page(queue: str, after: _Route | None, n: int) -> list[Query]:
    """The next ``n`` routes of ``queue``'s line after ``after`` (None: from the front),
    in order: index ranges of ``routes_waiting``, the rest of ``after``'s priority then
    the lower ones (the caller keeps the first ``n`` of both)."""
    line = f"{_ROUTE} WHERE queue = ? AND agent IS NULL"
    order = "ORDER BY priority DESC, since, conversation_id LIMIT ?"
    if after is None:
        return [(f"{line} {order}", (queue, n))]
    return [
        (
            f"{line} AND priority = ? AND (since, conversation_id) > (?, ?) {order}",
            (queue, after.priority, after.since, after.conversation_id, n),
        ),
        (f"{line} AND priority < ? {order}", (queue, after.priority, n)),
    ]


@dataclass
class _Line:
    """A queue's line as one call of :meth:`Assignments.assign_waiting` meets it: after
    ``after`` (None: from the front), at most ``budget`` more routes."""

    queue: str
    after: _Route | None
    budget: int
    ended: bool = False

    def page(self) -> list[Query]:
        return _page(self.queue, self.after, min(self.budget, _PAGE))

    def met(self, found: list[list[Row]]) -> list[_Route]:
        """The routes of a :meth:`page` read; moves past them."""
        n = min(self.budget, _PAGE)
        routes = [_Route.of(row) for rows in found for row in rows][:n]
        self.budget -= len(routes)
        self.ended = len(routes) < n
        self.after = routes[-1] if routes else self.after
        return routes


@dataclass
class _Desk:
    """The agents locked by one decision: whether each is online, their stamp, their
    unhandled conversations, and who was given one."""

    agents: dict[str, Agent]
    online: dict[str, bool] = field(default_factory=dict)
    stamps: dict[str, int] = field(default_factory=dict)
    unhandled: dict[str, set[str]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)

    def free(self, agent_id: str) -> bool:
        """Online and below capacity."""
        agent = self.agents[agent_id]
        return self.online[agent_id] and len(self.unhandled[agent_id]) < agent.capacity

    def has_room(self, queue: str) -> bool:
        return any(self.free(a) and self.agents[a].serves(queue) for a in self.online)

    def can_take(self, need: Need) -> bool:
        return bool(self.candidates(need))

    def candidates(self, need: Need) -> list[Candidate]:
        return [
            Candidate(self.agents[a], len(self.unhandled[a]), self.stamps[a])
            for a in sorted(self.online)
            if self.free(a)
            and self.agents[a].serves(need.queue)
            and need.skills <= self.agents[a].skills
        ]

    def give(self, conversation: str, agent_id: str, now: int, counts: bool) -> int:
        """Note ``conversation`` as ``agent_id``'s (in their load if it ``counts``); the
        agent's new stamp: ``now``, or later than every stamp seen (so round-robin turns
        even when the clock stands)."""
        stamp = max(now, max(self.stamps.values(), default=0) + 1)
        self.stamps[agent_id] = stamp
        if counts:
            self.unhandled[agent_id].add(conversation)
        self.touched.add(agent_id)
        return stamp

    def tidy(self) -> list[Query]:
        """Forget the routes the agents given conversations hold that are handled now:
        what each holds stays about its load."""
        return [_tidy(a, sorted(self.unhandled[a])) for a in sorted(self.touched)]


class Assignments:
    """Assignment of conversations in ``history`` to ``agents`` through ``queues`` (by
    default one queue, :data:`DEFAULT_QUEUE`), chosen by ``assigner``. Several processes
    may each have one over the same database: they agree (see the module's text)."""

    def __init__(
        self,
        history: History,
        agents: Iterable[Agent],
        queues: Iterable[Queue] = (Queue(DEFAULT_QUEUE),),
        assigner: Assigner | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.history = history
        self.agents: dict[str, Agent] = {}
        for agent in agents:
            if agent.id in self.agents:
                raise ValueError(f"agent {agent.id!r} is listed twice")
            self.agents[agent.id] = agent
        self.queues: dict[str, Queue] = {}
        for queue in queues:
            if queue.name in self.queues:
                raise ValueError(f"queue {queue.name!r} is listed twice")
            self.queues[queue.name] = queue
        for agent in self.agents.values():
            unknown = sorted((agent.queues or frozenset()) - self.queues.keys())
            if unknown:
                raise ValueError(f"agent {agent.id!r} serves unknown queues {unknown}")
        self.assigner: Assigner = assigner if assigner is not None else LeastLoaded()
        self.clock: Clock = clock or history.clock
        #: Where :meth:`assign_waiting` goes on in each queue's line (absent or None:
        #: the front). A hint of this object only: every decision is checked anew.
        self._cursors: dict[str, _Route | None] = {}

    @classmethod
    def from_config(
        cls, history: History, table: Mapping[str, Any], *, clock: Clock | None = None
    ) -> Self:
        """The assignment the ``[automation]`` ``table`` of a config describes (its
        ``agents``, ``queues`` and ``assigner``; :func:`assignment_config`)."""
        agents, queues, assigner = assignment_config(table)
        return cls(history, agents, queues, assigner, clock)

    # -- the public calls ---------------------------------------------------------------

    async def route(
        self,
        conversation_id: str,
        queue: str = DEFAULT_QUEUE,
        *,
        skills: Iterable[str] = (),
        wants: Iterable[str] = (),
        priority: int | None = None,
    ) -> str | None:
        """Give the open conversation to an eligible agent now, or put it on ``queue``'s
        waiting list; the agent's id (None: it waits). ``skills``: needed besides the
        queue's; ``wants``: preferred (:class:`SkillsFirst`); ``priority``: the
        conversation's own unless given. Idempotent: a conversation assigned to an
        online agent, or waiting, stays as it is; one that is not open is left alone
        (its assignee is returned). LookupError: no such queue or conversation."""
        self._queue(queue)
        needs, wanted = _names(skills, "skills"), _names(wants, "wants")
        now = micros(self.clock.now())
        return await self.history.database.run(
            lambda: self._route(conversation_id, queue, needs, wanted, priority, now)
        )

    async def assign_waiting(self, limit: int = 100, *, scan: int = 1000) -> list[tuple[str, str]]:
        """Give up to ``limit`` waiting conversations to agents with room; (conversation,
        agent) of each. Those it would give out that are no longer open (resolved,
        pending), or were assigned by hand, leave the waiting list instead.

        It meets each line in order, 100 routes at a time (the pages of all queues merged
        by priority, then age), and gives out each route a free agent can take as it is
        met: of those met, the highest priority, then longest waiting, goes first. A line
        is met from its front, unless this object's previous call spent its ``scan`` on
        it with room left: then from where that one stopped, and from the front again at
        its end. So a conversation a free agent can take is reached whatever waits ahead.

        Its work is bounded by ``limit`` and ``scan``, never by the waiting list or the
        history: one read (an agent online? an index probe per queue); only if some agent
        is online and something waits, one transaction that locks the agents, reads their
        loads, and in each queue with a free agent reads at most 2 * ``scan`` entries of
        ``routes_waiting`` (at most ``scan`` routes met), locking only the conversations
        met that a free agent can take; it stops a line when its agents are full."""
        _positive(limit)
        _positive(scan)
        queues = await self.history.database.read(self._due)
        if not queues:
            return []
        now = micros(self.clock.now())
        given, cursors = await self.history.database.run(
            lambda: self._assign_waiting(queues, limit, scan, now)
        )
        self._cursors.update(cursors)
        return given

    async def online(self, agent_id: str) -> list[tuple[str, str]]:
        """The agent is online: they take conversations from now on (the waiting ones
        at once; what :meth:`assign_waiting` gave out is returned)."""
        self._agent(agent_id)
        now = micros(self.clock.now())
        await self.history.database.run(lambda: self._set_online(agent_id, now))
        return await self.assign_waiting()

    async def offline(self, agent_id: str) -> list[tuple[str, str]]:
        """The agent is offline: they take nothing more, and their unhandled
        conversations go back to the front of their queues' lines, then to others with
        room (what :meth:`assign_waiting` gave out is returned)."""
        self._agent(agent_id)
        now = micros(self.clock.now())
        await self.history.database.run(lambda: self._set_offline(agent_id, now))
        return await self.assign_waiting()

    async def release(self, conversation_id: str) -> None:
        """Forget the conversation's route (call it when it is resolved): it leaves the
        waiting list; its assignee stays."""
        await self.history.database.run(lambda: self._release(conversation_id))

    async def load(self) -> dict[str, int]:
        """The unhandled conversations of every agent."""
        ids = sorted(self.agents)
        rows = await self.history.database.read(lambda: self._select(_load_query(ids), ids))
        counts = Counter(agent_id for agent_id, _ in rows)
        return {agent_id: counts[agent_id] for agent_id in ids}

    async def status(self) -> dict[str, bool]:
        """Whether each agent is online."""
        ids = sorted(self.agents)
        query = f"SELECT id, online FROM agents WHERE id IN ({marks(ids)})"
        rows = await self.history.database.read(lambda: self._select((query, tuple(ids)), ids))
        online = {agent_id: bool(on) for agent_id, on in rows}
        return {agent_id: online.get(agent_id, False) for agent_id in ids}

    async def waiting(self, queue: str | None = None, *, limit: int = 100) -> list[Waiting]:
        """The first ``limit`` conversations waiting in ``queue`` (None: in every queue),
        in the order they will be assigned."""
        names = [self._queue(queue).name] if queue is not None else sorted(self.queues)
        _positive(limit)
        routes = await self.history.database.read(lambda: self._heads(names, limit))
        return [route.public() for route in routes]

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise LookupError(
                f"no agent {agent_id!r} (configured: {sorted(self.agents)})"
            ) from None

    def _queue(self, name: str) -> Queue:
        try:
            return self.queues[name]
        except KeyError:
            raise LookupError(f"no queue {name!r} (configured: {sorted(self.queues)})") from None

    # -- the operations (each one transaction; pure but for their SQL) ------------------

    @staticmethod
    def _select(query: Query, ids: Sequence[str]) -> Op[list[Row]]:
        return (yield query) if ids else []

    def _lock(self, ids: Sequence[str], now: int) -> list[Query]:
        """Make the rows of the agents ``ids`` (sorted) if new, then lock them until the
        commit (PostgreSQL), in id order: two decisions never deadlock over them."""
        dialect = self.history.database.dialect
        values, params = dialect.rows([(agent_id, now) for agent_id in ids], ["text", "bigint"])
        return [
            (f"INSERT INTO agents (id, changed_at) {values} ON CONFLICT (id) DO NOTHING", params),
            (
                f"SELECT id, online, last_assigned_at FROM agents WHERE id IN ({marks(ids)}) "
                f"ORDER BY id{dialect.for_update}",
                tuple(ids),
            ),
        ]

    def _desk_queries(self, ids: Sequence[str], now: int) -> list[Query]:
        """Lock the agents ``ids`` and read their loads (nothing if there are none)."""
        return [*self._lock(ids, now), _load_query(ids)] if ids else []

    def _desk(self, found: list[list[Row]]) -> _Desk:
        """The desk of what :meth:`_desk_queries` read."""
        desk = _Desk(self.agents)
        locked, loads = found[1:] if found else ([], [])
        for agent_id, online, stamp in locked:
            desk.online[agent_id] = bool(online)
            desk.stamps[agent_id] = int(stamp)
            desk.unhandled[agent_id] = set()
        for agent_id, conversation in loads:
            desk.unhandled[agent_id].add(conversation)
        return desk

    def _need(self, route: _Route) -> Need:
        skills = self.queues[route.queue].skills | route.skills
        return Need(route.conversation_id, route.queue, skills, route.wants, route.priority)

    def _choose(self, desk: _Desk, route: _Route) -> str | None:
        """Who of the eligible agents takes ``route``'s conversation (None: nobody)."""
        need = self._need(route)
        candidates = desk.candidates(need)
        if not candidates:
            return None
        chosen = self.assigner.choose(candidates, need)
        eligible = [c.agent.id for c in candidates]
        if chosen is not None and chosen not in eligible:
            raise ValueError(
                f"{type(self.assigner).__name__} chose {chosen!r}, not one of the "
                f"eligible agents {eligible}"
            )
        return chosen

    @staticmethod
    def _assign(desk: _Desk, route: _Route, agent_id: str, now: int, counts: bool) -> list[Query]:
        """Give ``route``'s conversation to ``agent_id`` (``counts``: it is unhandled;
        else :meth:`_Desk.tidy` forgets its route)."""
        stamp = desk.give(route.conversation_id, agent_id, now, counts)
        return [
            (
                "UPDATE conversations SET assignee = ? WHERE id = ?",
                (agent_id, route.conversation_id),
            ),
            ("UPDATE agents SET last_assigned_at = ? WHERE id = ?", (stamp, agent_id)),
            route.put(agent_id),
        ]

    def _route(
        self,
        conversation: str,
        queue: str,
        needs: frozenset[str],
        wants: frozenset[str],
        priority: int | None,
        now: int,
    ) -> Op[str | None]:
        required = self.queues[queue].skills | needs
        ids = sorted(a.id for a in self.agents.values() if a.serves(queue) and required <= a.skills)
        for_update = self.history.database.dialect.for_update
        *found, rows, routed = yield from together(
            *self._desk_queries(ids, now),
            (
                f"SELECT state, assignee, priority, {_UNANSWERED}, (SELECT online FROM agents "
                f"a WHERE a.id = c.assignee) FROM conversations c WHERE id = ?{for_update}",
                (conversation,),
            ),
            (f"{_ROUTE} WHERE conversation_id = ?", (conversation,)),
        )
        if not rows:
            raise LookupError(f"no conversation {conversation!r}")
        state, assignee, own_priority, unanswered, assignee_online = rows[0]
        desk = self._desk(found)
        if state != _OPEN or (
            assignee is not None and desk.online.get(assignee, bool(assignee_online))
        ):
            return assignee  # type: ignore[no-any-return]
        before = _Route.of(routed[0]) if routed else None
        if assignee is None and before is not None and before.agent is None:  # waiting
            if priority is not None and priority != before.priority:  # its place changes
                yield (
                    "UPDATE routes SET priority = ? WHERE conversation_id = ?",
                    (priority, conversation),
                )
            return None
        route = _Route(
            conversation,
            queue,
            needs - self.queues[queue].skills,
            wants,
            int(own_priority if priority is None else priority),
            before.since if before is not None else now,
        )
        chosen = self._choose(desk, route)
        if chosen is not None:
            writes = self._assign(desk, route, chosen, now, bool(unanswered)) + desk.tidy()
        else:  # it waits; if its agent is offline, it is theirs no more
            writes = [route.put(None), *([_unassign(conversation)] if assignee else [])]
        yield from together(*writes)
        return chosen

    def _heads(self, queues: Sequence[str], limit: int) -> Op[list[_Route]]:
        """The first ``limit`` routes waiting in ``queues``, in the order they are
        assigned: ``limit`` rows of each queue's index range (``routes_waiting``)."""
        found = yield from together(
            *(
                (
                    f"{_ROUTE} WHERE queue = ? AND agent IS NULL "
                    "ORDER BY priority DESC, since, conversation_id LIMIT ?",
                    (queue, limit),
                )
                for queue in queues
            )
        )
        routes = [_Route.of(row) for rows in found for row in rows]
        return sorted(routes, key=_Route.order)[:limit]

    def _due(self) -> Op[list[str]]:
        """The queues something waits in, if any agent is online (else none): a read."""
        ids, names = sorted(self.agents), sorted(self.queues)
        if not ids:
            return []
        online, *lines = yield from together(
            (
                f"SELECT 1 FROM agents WHERE online = 1 AND id IN ({marks(ids)}) LIMIT 1",
                tuple(ids),
            ),
            *(
                ("SELECT 1 FROM routes WHERE queue = ? AND agent IS NULL LIMIT 1", (q,))
                for q in names
            ),
        )
        return [queue for queue, rows in zip(names, lines, strict=True) if rows] if online else []

    def _assign_waiting(
        self, queues: Sequence[str], limit: int, scan: int, now: int
    ) -> Op[tuple[list[tuple[str, str]], dict[str, _Route | None]]]:
        """What :meth:`assign_waiting` gives out, and where its lines go on next."""
        desk = self._desk((yield from together(*self._desk_queries(sorted(self.agents), now))))
        lines = [_Line(q, self._cursors.get(q), scan) for q in queues if desk.has_room(q)]
        given: list[tuple[str, str]] = []
        writes: list[Query] = []
        active = lines
        while active and len(given) < limit:
            pages = [line.page() for line in active]
            found = iter((yield from together(*itertools.chain(*pages))))
            met = [
                r
                for line, page in zip(active, pages, strict=True)
                for r in line.met([next(found) for _ in page])
            ]
            met.sort(key=_Route.order)  # the pages of every queue merged
            takeable = [r for r in met if desk.can_take(self._need(r))][: limit - len(given)]
            more, wrote = yield from self._take(desk, takeable, now)
            given += more
            writes += wrote
            active = [a for a in active if a.budget and not a.ended and desk.has_room(a.queue)]
        yield from together(*writes, *desk.tidy())
        room = len(given) < limit
        return given, {
            line.queue: line.after
            if room and not line.budget and not line.ended and desk.has_room(line.queue)
            else None  # the line's end, or its agents are full: from the front next time
            for line in lines
        }

    def _take(
        self, desk: _Desk, routes: Sequence[_Route], now: int
    ) -> Op[tuple[list[tuple[str, str]], list[Query]]]:
        """Lock the conversations of ``routes``, then give each (in order) to the agent
        the assigner chooses; those no longer open or assigned by hand leave the line.
        What was given, and the writes."""
        if not routes:
            return [], []
        asked = tuple(sorted(route.conversation_id for route in routes))
        for_update = self.history.database.dialect.for_update
        conversations, again = yield from together(
            (  # locked, then their routes read again: what a route or offline may change
                f"SELECT id, state, assignee, {_UNANSWERED} FROM conversations "
                f"WHERE id IN ({marks(asked)}) ORDER BY id{for_update}",
                asked,
            ),
            (f"{_ROUTE} WHERE conversation_id IN ({marks(asked)})", asked),
        )
        states = {row[0]: row[1:] for row in conversations}
        current = {row[0]: _Route.of(row) for row in again}
        given: list[tuple[str, str]] = []
        writes: list[Query] = []
        for route in routes:
            conversation = route.conversation_id
            if current.get(conversation) != route:
                continue  # routed, held or released meanwhile
            state, assignee, unanswered = states.get(conversation, (None, None, False))
            if state != _OPEN or assignee is not None:  # resolved, pending, gone, or by hand
                writes.append(_drop(conversation))
            elif chosen := self._choose(desk, route):
                writes += self._assign(desk, route, chosen, now, bool(unanswered))
                given.append((conversation, chosen))
        return given, writes

    def _set_online(self, agent_id: str, now: int) -> Op[None]:
        yield (
            "INSERT INTO agents (id, online, changed_at) VALUES (?, 1, ?) ON CONFLICT (id) "
            "DO UPDATE SET online = 1, changed_at = excluded.changed_at",
            (agent_id, now),
        )

    def _set_offline(self, agent_id: str, now: int) -> Op[None]:
        """Mark the agent offline, and put their unhandled conversations back in their
        queues (keeping their place: the time they were first routed); the other routes
        they held are forgotten."""
        *_, held = yield from together(
            *self._lock([agent_id], now),
            ("UPDATE agents SET online = 0, changed_at = ? WHERE id = ?", (now, agent_id)),
            (f"{_ROUTE} WHERE agent = ?", (agent_id,)),
        )
        if not held:
            return
        routes = {row[0]: _Route.of(row) for row in held}
        asked = sorted(routes)
        for_update = self.history.database.dialect.for_update
        unhandled = yield (
            f"SELECT id FROM conversations WHERE id IN ({marks(asked)}) AND assignee = ? "
            f"AND {_UNHANDLED} ORDER BY id{for_update}",
            (*asked, agent_id),
        )
        writes = [q for (c,) in unhandled for q in (_unassign(c), routes[c].put(None))]
        yield from together(*writes, _tidy(agent_id, ()))

    def _release(self, conversation: str) -> Op[None]:
        for_update = self.history.database.dialect.for_update
        yield from together(
            (f"SELECT 1 FROM conversations WHERE id = ?{for_update}", (conversation,)),
            _drop(conversation),
        )


def _positive(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"a limit is at least 1, not {limit}")


# -- configuration ----------------------------------------------------------------------

_AGENT_KEYS = ("id", "capacity", "skills", "queues")
_QUEUE_KEYS = ("name", "skills")


def assignment_config(table: Mapping[str, Any]) -> tuple[list[Agent], list[Queue], Assigner]:
    """The agents, queues and assigner of the ``[automation]`` table of a config::

        [automation]
        assigner = "least-loaded"       # round-robin, least-loaded (default), skills-first

        [[automation.queues]]           # none: one queue, "default"
        name = "billing"
        skills = ["billing"]            # every conversation routed here needs them

        [[automation.agents]]
        id = "ana"
        capacity = 5                    # unhandled conversations at once (default 5)
        skills = ["billing", "es"]
        queues = ["billing"]            # omitted: every queue

    The table's other keys are left to the rest of the automation. ConfigurationError:
    a key it does not know in an agent or a queue, a wrong type, a queue no one declared,
    an id or a name twice, an unknown assigner."""
    queues = [_queue(entry, n) for n, entry in enumerate(_entries(table, "queues"), start=1)] or [
        Queue(DEFAULT_QUEUE)
    ]
    agents = [_agent(entry, n) for n, entry in enumerate(_entries(table, "agents"), start=1)]
    kind = table.get("assigner", LeastLoaded.name)
    if kind not in ASSIGNERS:
        raise ConfigurationError(
            f"[automation] assigner is one of {', '.join(ASSIGNERS)}, not {kind!r}"
        )
    names = [queue.name for queue in queues]
    _unique(names, "[[automation.queues]] name")
    _unique([agent.id for agent in agents], "[[automation.agents]] id")
    for agent in agents:
        unknown = sorted((agent.queues or frozenset()) - set(names))
        if unknown:
            raise ConfigurationError(
                f"[[automation.agents]] {agent.id!r} serves queues no [[automation.queues]] "
                f"declares: {', '.join(unknown)}"
            )
    return agents, queues, ASSIGNERS[kind]()


def _entries(table: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = table.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise ConfigurationError(f"automation.{key} is an array of tables ([[automation.{key}]])")
    return entries


def _unique(values: list[str], what: str) -> None:
    twice = sorted({value for value in values if values.count(value) > 1})
    if twice:
        raise ConfigurationError(f"{what} {', '.join(map(repr, twice))} is given twice")


def _known(entry: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(entry) - set(keys))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key {', '.join(map(repr, unknown))} (known: {', '.join(keys)})"
        )


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where}: {key} is a non-empty string")
    return value


def _list(entry: Mapping[str, Any], key: str, where: str) -> frozenset[str] | None:
    if key not in entry:
        return None
    value = entry[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{where}: {key} is a list of non-empty strings")
    return frozenset(value)


def _queue(entry: Mapping[str, Any], n: int) -> Queue:
    where = f"[[automation.queues]] #{n}"
    _known(entry, _QUEUE_KEYS, where)
    return Queue(_text(entry, "name", where), _list(entry, "skills", where) or frozenset())


def _agent(entry: Mapping[str, Any], n: int) -> Agent:
    where = f"[[automation.agents]] #{n}"
    _known(entry, _AGENT_KEYS, where)
    agent_id = _text(entry, "id", where)
    where = f"{where} ({agent_id!r})"
    capacity = entry.get("capacity", 5)
    if type(capacity) is not int or capacity < 0:
        raise ConfigurationError(f"{where}: capacity is a whole number >= 0")
    skills = _list(entry, "skills", where) or frozenset()
    return Agent(agent_id, capacity, skills, _list(entry, "queues", where))
