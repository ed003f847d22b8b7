"""Assignment: queues, agents with a capacity and skills, pluggable assigners.

An :class:`Agent` (static configuration) serves some queues, has skills, and takes at
most ``capacity`` *unhandled* conversations: assigned to them, open, and not answered
yet (``first_response_at`` unset). A :class:`Queue` names the skills every conversation
routed to it needs. Whether an agent is online is shared state (the ``agents`` table of
the history's database), so every worker process sees the same team.

:meth:`Assignments.route` gives a conversation to an eligible agent now (online, serving
the queue, with every skill the queue and the route require, below capacity), chosen by
the :class:`Assigner`, or puts it on the queue's waiting list (higher priority first,
then the longest waiting). :meth:`Assignments.assign_waiting` hands the waiting ones out
as room frees up; an agent going offline gives their unhandled conversations back to
their queues, at the front of the line, and they go to others with room.

Every decision is one transaction of the history's database that first locks the rows of
the agents it may choose from (PostgreSQL: ``SELECT ... FOR UPDATE`` in id order; SQLite
runs one writer at a time), then counts their loads: no agent is ever given a
conversation past their capacity, whatever the number of processes deciding at once.

The ``waiting`` table keeps a conversation's route (queue, required and wanted skills,
priority, since when) from :meth:`~Assignments.route` on. A row whose ``queue`` is a queue
name is waiting there; once assigned, its ``queue`` becomes ``@<agent id>`` (the agent
holding it: queue names never start with ``@``), so that the route is known again when
the agent goes offline, and the waiting list of a queue is one index range.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self

from chatbridge.clock import Clock
from chatbridge.conversations import History
from chatbridge.conversations.model import ConversationState
from chatbridge.conversations.ops import Op, Query, Row, micros, moment, together
from chatbridge.errors import ConfigurationError

#: The queue conversations go to when the configuration names none.
DEFAULT_QUEUE = "default"
#: How a route row held by an agent is keyed (``queue`` column): ``@`` and the agent id.
HELD = "@"

_OPEN = ConversationState.OPEN.value


def _names(values: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} is a collection of names, not the string {values!r}")
    names = frozenset(values)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{what} are non-empty strings: {sorted(map(repr, names))}")
    return names


@dataclass(frozen=True)
class Agent:
    """A person who takes conversations: at most ``capacity`` unhandled ones at once
    (assigned to them, open, not answered yet), from ``queues`` (None: every queue),
    needing no skill they lack."""

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
        if not isinstance(self.name, str) or not self.name or self.name.startswith(HELD):
            raise ValueError(f"a queue name is a non-empty string not starting with {HELD!r}")
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
    """An eligible agent (online, serving the queue, with the skills needed, below
    capacity), their unhandled ``load``, and when they were last given a conversation
    (``last_assigned``: an increasing stamp, in microseconds, 0 for never)."""

    agent: Agent
    load: int
    last_assigned: int


class Assigner(Protocol):
    """Chooses who of the eligible ``candidates`` (never empty; in agent id order) takes
    a conversation; the agent's id, or None to leave it waiting. It must be a pure
    function of its arguments: a decision may be made again after a conflict."""

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
    """The eligible agent with the most of the skills the conversation wants (beyond
    those it needs); then the least loaded, then the one assigned least recently."""

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
    """A row of the ``waiting`` table: where a conversation was routed, and who holds it
    (None: it waits)."""

    conversation_id: str
    queue: str
    skills: frozenset[str]
    wants: frozenset[str]
    priority: int
    since: int
    holder: str | None = None

    @classmethod
    def of(cls, row: Row) -> _Route:
        conversation, key, body, priority, since = row
        needs = json.loads(body)
        holder = key[len(HELD) :] if key.startswith(HELD) else None
        return cls(
            conversation,
            needs["queue"],
            frozenset(needs["skills"]),
            frozenset(needs["wants"]),
            int(priority),
            int(since),
            holder,
        )

    def body(self) -> str:
        needs = {"queue": self.queue, "skills": sorted(self.skills), "wants": sorted(self.wants)}
        return json.dumps(needs)

    def order(self) -> tuple[int, int, str]:
        return (-self.priority, self.since, self.conversation_id)

    def public(self) -> Waiting:
        since = moment(self.since)
        assert since is not None
        return Waiting(
            self.conversation_id, self.queue, self.priority, since, self.skills, self.wants
        )


_ROUTE = "SELECT conversation_id, queue, skills, priority, since FROM waiting"


def _put(route: _Route, key: str) -> Query:
    """Write ``route`` under ``key`` (a queue, or a holder's ``@<agent>``)."""
    return (
        "INSERT INTO waiting (conversation_id, queue, skills, priority, since) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
        "queue = excluded.queue, skills = excluded.skills, priority = excluded.priority, "
        "since = excluded.since",
        (route.conversation_id, key, route.body(), route.priority, route.since),
    )


def _marks(items: Sequence[object]) -> str:
    return ", ".join("?" * len(items))


@dataclass
class _Desk:
    """The agents locked by one decision: whether each is online, their stamp, their
    unhandled conversations; and what the decision writes."""

    agents: dict[str, Agent]
    online: dict[str, bool] = field(default_factory=dict)
    stamps: dict[str, int] = field(default_factory=dict)
    unhandled: dict[str, set[str]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)

    def candidates(self, need: Need) -> list[Candidate]:
        found = []
        for agent_id in sorted(self.online):
            agent = self.agents[agent_id]
            load = len(self.unhandled[agent_id])
            if (
                self.online[agent_id]
                and agent.serves(need.queue)
                and need.skills <= agent.skills
                and load < agent.capacity
            ):
                found.append(Candidate(agent, load, self.stamps[agent_id]))
        return found

    def has_room(self) -> bool:
        return any(
            self.online[a] and len(self.unhandled[a]) < self.agents[a].capacity for a in self.online
        )

    def give(self, conversation: str, agent_id: str, now: int) -> int:
        """Count ``conversation`` as ``agent_id``'s; the agent's new stamp: ``now``, or
        later than every stamp seen (so round-robin turns even when the clock stands)."""
        stamp = max(now, max(self.stamps.values(), default=0) + 1)
        self.stamps[agent_id] = stamp
        self.unhandled[agent_id].add(conversation)
        self.touched.add(agent_id)
        return stamp


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
        if queue not in self.queues:
            raise LookupError(f"no queue {queue!r} (configured: {sorted(self.queues)})")
        needs = _names(skills, "skills")
        wanted = _names(wants, "wants")
        now = micros(self.clock.now())
        return await self.history.database.run(
            lambda: self._route(conversation_id, queue, needs, wanted, priority, now)
        )

    async def assign_waiting(self, limit: int = 100) -> list[tuple[str, str]]:
        """Give up to ``limit`` waiting conversations (highest priority, then longest
        waiting, first) to agents with room; (conversation, agent) of each. Its cost
        grows with ``limit`` and the number of queues, not with the history."""
        if limit < 1:
            raise ValueError(f"a limit is at least 1, not {limit}")
        now = micros(self.clock.now())
        return await self.history.database.run(lambda: self._assign_waiting(limit, now))

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
        rows = await self.history.database.read(lambda: self._loads(ids))
        return {agent_id: len(rows.get(agent_id, ())) for agent_id in ids}

    async def status(self) -> dict[str, bool]:
        """Whether each agent is online."""
        ids = sorted(self.agents)
        rows = await self.history.database.read(lambda: self._statuses(ids))
        return {agent_id: rows.get(agent_id, False) for agent_id in ids}

    async def waiting(self, queue: str | None = None, *, limit: int = 100) -> list[Waiting]:
        """The first ``limit`` conversations waiting in ``queue`` (None: in every queue),
        in the order they will be assigned."""
        if queue is not None and queue not in self.queues:
            raise LookupError(f"no queue {queue!r} (configured: {sorted(self.queues)})")
        if limit < 1:
            raise ValueError(f"a limit is at least 1, not {limit}")
        names = [queue] if queue is not None else sorted(self.queues)
        routes = await self.history.database.read(lambda: self._heads(names, limit))
        return [route.public() for route in routes]

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise LookupError(
                f"no agent {agent_id!r} (configured: {sorted(self.agents)})"
            ) from None

    # -- the operations (each one transaction; pure but for their SQL) ------------------

    def _lock(self, ids: Sequence[str], now: int) -> list[Query]:
        """Make the rows of the agents ``ids`` (sorted) if new, then lock them until the
        commit (PostgreSQL), in id order: two decisions never deadlock over them."""
        if not ids:
            return []
        dialect = self.history.database.dialect
        values, params = dialect.rows([(agent_id, now) for agent_id in ids], ["text", "bigint"])
        return [
            (f"INSERT INTO agents (id, changed_at) {values} ON CONFLICT (id) DO NOTHING", params),
            (
                f"SELECT id, online, last_assigned_at FROM agents WHERE id IN ({_marks(ids)}) "
                f"ORDER BY id{dialect.for_update}",
                tuple(ids),
            ),
        ]

    @staticmethod
    def _load_query(ids: Sequence[str]) -> Query:
        """The unhandled conversations (assignee, id) of the agents ``ids``: at most the
        open ones each holds (index ``conversations (assignee, state)``). Run after the
        agents are locked, it sees every assignment committed before (PostgreSQL's READ
        COMMITTED: each statement reads what was committed when it started)."""
        return (
            f"SELECT assignee, id FROM conversations WHERE assignee IN ({_marks(ids)}) "
            "AND state = ? AND first_response_at IS NULL",
            (*ids, _OPEN),
        )

    def _desk(self, ids: Sequence[str], locked: list[Row], loads: list[Row]) -> _Desk:
        desk = _Desk(self.agents)
        for agent_id, online, stamp in locked:
            desk.online[agent_id] = bool(online)
            desk.stamps[agent_id] = int(stamp)
            desk.unhandled[agent_id] = set()
        assert set(ids) == desk.online.keys()
        for agent_id, conversation in loads:
            desk.unhandled[agent_id].add(conversation)
        return desk

    def _choose(self, desk: _Desk, need: Need) -> str | None:
        candidates = desk.candidates(need)
        if not candidates:
            return None
        chosen = self.assigner.choose(candidates, need)
        if chosen is not None and chosen not in {c.agent.id for c in candidates}:
            raise ValueError(
                f"{type(self.assigner).__name__} chose {chosen!r}, not one of the "
                f"eligible agents {[c.agent.id for c in candidates]}"
            )
        return chosen

    def _assign(self, desk: _Desk, route: _Route, agent_id: str, now: int) -> list[Query]:
        stamp = desk.give(route.conversation_id, agent_id, now)
        return [
            (
                "UPDATE conversations SET assignee = ? WHERE id = ?",
                (agent_id, route.conversation_id),
            ),
            ("UPDATE agents SET last_assigned_at = ? WHERE id = ?", (stamp, agent_id)),
            _put(route, HELD + agent_id),
        ]

    @staticmethod
    def _tidy(desk: _Desk) -> list[Query]:
        """Forget the routes the agents given conversations hold that are handled now
        (answered, resolved, or someone else's): what each holds stays about its load."""
        queries = []
        for agent_id in sorted(desk.touched):
            keep = sorted(desk.unhandled[agent_id])
            but = f" AND conversation_id NOT IN ({_marks(keep)})" if keep else ""
            queries.append((f"DELETE FROM waiting WHERE queue = ?{but}", (HELD + agent_id, *keep)))
        return queries

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
        found = yield from together(
            *self._lock(ids, now),
            (
                "SELECT state, assignee, priority, (SELECT online FROM agents a "
                f"WHERE a.id = c.assignee) FROM conversations c WHERE id = ?{for_update}",
                (conversation,),
            ),
            (f"{_ROUTE} WHERE conversation_id = ?", (conversation,)),
            *([self._load_query(ids)] if ids else []),
        )
        if ids:
            _, locked, rows, routed, loads = found
        else:
            (rows, routed), locked, loads = found, [], []
        if not rows:
            raise LookupError(f"no conversation {conversation!r}")
        state, assignee, own_priority, assignee_online = rows[0]
        desk = self._desk(ids, locked, loads)
        if state != _OPEN:
            return assignee  # type: ignore[no-any-return]
        if assignee is not None and desk.online.get(assignee, bool(assignee_online)):
            return assignee  # type: ignore[no-any-return]
        before = _Route.of(routed[0]) if routed else None
        if assignee is None and before is not None and before.holder is None:
            return None  # waiting already
        route = _Route(
            conversation,
            queue,
            required - self.queues[queue].skills,
            wants,
            int(own_priority if priority is None else priority),
            before.since if before is not None else now,
        )
        need = Need(conversation, queue, required, wants, route.priority)
        chosen = self._choose(desk, need)
        writes = []
        if chosen is not None:
            writes += self._assign(desk, route, chosen, now)
            writes += self._tidy(desk)
        else:
            writes.append(_put(route, queue))
            if assignee is not None:  # its agent is offline: it waits now
                writes.append(
                    ("UPDATE conversations SET assignee = NULL WHERE id = ?", (conversation,))
                )
        yield from together(*writes)
        return chosen

    def _heads(self, queues: Sequence[str], limit: int) -> Op[list[_Route]]:
        """The first ``limit`` routes waiting in ``queues``, in the order they are
        assigned: ``limit`` rows of each queue's index range (``waiting_queue``)."""
        found = yield from together(
            *(
                (
                    f"{_ROUTE} WHERE queue = ? "
                    "ORDER BY priority DESC, since, conversation_id LIMIT ?",
                    (queue, limit),
                )
                for queue in queues
            )
        )
        routes = [_Route.of(row) for rows in found for row in rows]
        return sorted(routes, key=_Route.order)[:limit]

    def _assign_waiting(self, limit: int, now: int) -> Op[list[tuple[str, str]]]:
        ids = sorted(self.agents)
        if not ids:
            return []
        _, locked, loads = yield from together(*self._lock(ids, now), self._load_query(ids))
        desk = self._desk(ids, locked, loads)
        if not desk.has_room():
            return []
        queues = [
            name
            for name in sorted(self.queues)
            if any(
                desk.online[a]
                and self.agents[a].serves(name)
                and len(desk.unhandled[a]) < self.agents[a].capacity
                for a in ids
            )
        ]
        heads = yield from self._heads(queues, limit)
        if not heads:
            return []
        asked = sorted(route.conversation_id for route in heads)
        for_update = self.history.database.dialect.for_update
        conversations, again = yield from together(
            (  # locked, then their routes read again: what a route or offline may change
                f"SELECT id, state, assignee FROM conversations WHERE id IN ({_marks(asked)}) "
                f"ORDER BY id{for_update}",
                tuple(asked),
            ),
            (f"{_ROUTE} WHERE conversation_id IN ({_marks(asked)})", tuple(asked)),
        )
        states = {row[0]: (row[1], row[2]) for row in conversations}
        current = {row[0]: _Route.of(row) for row in again}
        given: list[tuple[str, str]] = []
        writes: list[Query] = []
        for route in heads:
            conversation = route.conversation_id
            if current.get(conversation) != route:
                continue  # routed or held meanwhile
            state, assignee = states.get(conversation, (None, None))
            if state != _OPEN or assignee is not None:  # resolved, gone, or assigned by hand
                writes.append(("DELETE FROM waiting WHERE conversation_id = ?", (conversation,)))
                continue
            required = self.queues[route.queue].skills | route.skills
            need = Need(conversation, route.queue, required, route.wants, route.priority)
            chosen = self._choose(desk, need)
            if chosen is not None:
                writes += self._assign(desk, route, chosen, now)
                given.append((conversation, chosen))
                if not desk.has_room():
                    break
        yield from together(*writes, *self._tidy(desk))
        return given

    def _set_online(self, agent_id: str, now: int) -> Op[None]:
        yield (
            "INSERT INTO agents (id, online, changed_at) VALUES (?, 1, ?) ON CONFLICT (id) "
            "DO UPDATE SET online = 1, changed_at = excluded.changed_at",
            (agent_id, now),
        )

    def _set_offline(self, agent_id: str, now: int) -> Op[list[str]]:
        """Mark the agent offline, and put their unhandled conversations back in their
        queues (keeping their place: the time they were first routed); the rest of the
        routes they held are forgotten. Returns the conversations put back."""
        _, _, _, held = yield from together(
            *self._lock([agent_id], now),
            ("UPDATE agents SET online = 0, changed_at = ? WHERE id = ?", (now, agent_id)),
            (f"{_ROUTE} WHERE queue = ?", (HELD + agent_id,)),
        )
        if not held:
            return []
        routes = {row[0]: _Route.of(row) for row in held}
        asked = sorted(routes)
        for_update = self.history.database.dialect.for_update
        rows = yield (
            "SELECT id, state, assignee, first_response_at FROM conversations "
            f"WHERE id IN ({_marks(asked)}) ORDER BY id{for_update}",
            tuple(asked),
        )
        unhandled = {
            row[0] for row in rows if row[1] == _OPEN and row[2] == agent_id and row[3] is None
        }
        writes: list[Query] = []
        for conversation in asked:
            if conversation in unhandled:
                writes += [
                    ("UPDATE conversations SET assignee = NULL WHERE id = ?", (conversation,)),
                    _put(routes[conversation], routes[conversation].queue),
                ]
            else:
                writes.append(("DELETE FROM waiting WHERE conversation_id = ?", (conversation,)))
        yield from together(*writes)
        return sorted(unhandled)

    def _release(self, conversation: str) -> Op[None]:
        for_update = self.history.database.dialect.for_update
        yield from together(
            (f"SELECT 1 FROM conversations WHERE id = ?{for_update}", (conversation,)),
            ("DELETE FROM waiting WHERE conversation_id = ?", (conversation,)),
        )

    def _loads(self, ids: Sequence[str]) -> Op[dict[str, list[str]]]:
        if not ids:
            return {}
        rows = yield self._load_query(ids)
        loads: dict[str, list[str]] = {}
        for agent_id, conversation in rows:
            loads.setdefault(agent_id, []).append(conversation)
        return loads

    def _statuses(self, ids: Sequence[str]) -> Op[dict[str, bool]]:
        if not ids:
            return {}
        rows = yield (f"SELECT id, online FROM agents WHERE id IN ({_marks(ids)})", tuple(ids))
        return {agent_id: bool(online) for agent_id, online in rows}


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
    name = _text(entry, "name", where)
    if name.startswith(HELD):
        raise ConfigurationError(f"{where}: a queue name does not start with {HELD!r}")
    return Queue(name, _list(entry, "skills", where) or frozenset())


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
