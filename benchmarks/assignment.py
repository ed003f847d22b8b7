"""100 simultaneous new conversations assigned through ``chatbridge serve``:
``python -m benchmarks.assignment [ROUNDS]``.

Issue 16's target: 100 simultaneous new conversations assigned within 2 s end to end
through ``serve``, across 2 workers, with no agent above its cap. ``serve --workers 2``
(SQLite store and outbox, a ``[history]`` both processes share, on SQLite and, when
PostgreSQL is installed, on PostgreSQL) runs an ``[automation]`` whose ``queue`` is
"support": every new conversation is routed there by the worker
(``Automation.on_event``), and the waiting ones go to agents as room frees up
(``Automation.tick``). Two teams per database: 20 agents of capacity 5 (100 slots,
every conversation assigned) and 10 agents of capacity 5 (50 slots: 50 assigned, 50
waiting).

A round: the previous round's conversations are resolved and released (the waiting ones
first, so that no tick hands them to the agents the others free), every agent is set
online (``Assignments.online``, shared state in the history's database), 100 connections
are opened to ``serve``, then 100 signed WhatsApp webhooks from 100 new senders are
written on them at once. Measured: from the first write until the history's database
(polled read-only every POLL_INTERVAL) shows all 100 conversations assigned (50 slots:
50 assigned and 50 waiting in the queue), and each webhook's acknowledgement latency.
After the round (every event handled, then SETTLE seconds, a tick or two): the checks
of :func:`_check`. A round that does not get there within ROUND_TIMEOUT fails its
setup (its later rounds are skipped) with what the database showed.

Setups run side by side (4 servers, 8 worker processes on the machine's cores) and take
their rounds in turn, so a noisy moment of the machine falls on every setup alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import anyio

from benchmarks.history import _database, _history_config, _open_history, _postgres, _steal
from benchmarks.load import BURST_TIMEOUT, _answer, _cpu_seconds, _p, _raw, _serve_args
from benchmarks.report import rewrite_section
from chatbridge.automation.assignment import Assignments
from chatbridge.webhook import WebhookRequest
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.loopback import cli_server

CONVERSATIONS, CAPACITY, ROUNDS, WORKERS = 100, 5, 5, 2
#: The section of docs/benchmarks.md this benchmark writes.
HEADING = f"## {CONVERSATIONS} simultaneous new conversations assigned"
#: The teams: agents of CAPACITY each (20: 100 slots; 10: 50 slots, half the
#: conversations wait).
TEAMS = (20, 10)
QUEUE = "support"
#: The target, from the first write to the last conversation assigned.
TARGET = 2.0
#: How often the history's database is read during a round.
POLL_INTERVAL = 0.005
#: A round that has not reached its end state by then fails.
ROUND_TIMEOUT = 30.0
#: After a round, how long to wait for every event to be handled, then for the
#: automation's ticks (every 0.5 s) to have run before the checks.
HANDLED_TIMEOUT, SETTLE = 10.0, 1.2
#: prometheus-client's directory for the per-process metric files (``serve --workers``
#: keeps one given to it): each worker's own counters, not only their sum.
MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
_OPEN = "open"


def automation_table(agents: int) -> dict[str, Any]:
    """The ``[automation]`` table: queue "support", ``agents`` agents of CAPACITY."""
    return {
        "queue": QUEUE,
        "queues": [{"name": QUEUE}],
        "agents": [{"id": f"agent{n:02d}", "capacity": CAPACITY} for n in range(agents)],
    }


def _automation_toml(table: dict[str, Any]) -> str:
    lines = ["", "[automation]", f'queue = "{table["queue"]}"']
    for queue in table["queues"]:
        lines += ["", "[[automation.queues]]", f'name = "{queue["name"]}"']
    for agent in table["agents"]:
        lines += ["", "[[automation.agents]]", f'id = "{agent["id"]}"']
        lines.append(f"capacity = {agent['capacity']}")
    return "\n".join(lines) + "\n"


@dataclass
class Round:
    """What one round measured and found."""

    assigned_in: float | None  # s from the first write; None: not within ROUND_TIMEOUT
    acks: list[float]
    errors: int
    steal: float
    above_cap: int  # agents holding more unhandled conversations than their capacity
    handled: dict[int, float]  # events handled in the round by each serving process
    cpu: dict[int, float]  # CPU seconds of each serving process during the round
    problems: list[str]


@dataclass
class Setup:
    """One server: a history backend and a team."""

    kind: str  # sqlite or postgres
    target: str  # the history's path or URL
    agents: int
    work: Path
    table: dict[str, Any] = field(init=False)
    config: Path = field(init=False)
    metrics: Path = field(init=False)
    base: str = ""
    rounds: list[Round] = field(default_factory=list)
    failure: str | None = None
    previous: list[str] = field(default_factory=list)  # the last round's conversations

    def __post_init__(self) -> None:
        self.table = automation_table(self.agents)
        name = f"assignment-{self.kind}-{self.agents}"
        self.metrics = self.work / f"{name}-metrics"
        history = f'kind = "{self.kind}"\n' + (
            f'path = "{self.target}"' if self.kind == "sqlite" else f'url = "{self.target}"'
        )
        self.config = _history_config(self.work / f"{name}.toml", str(self.work), name, history)
        with self.config.open("a") as file:
            file.write(_automation_toml(self.table))

    @property
    def name(self) -> str:
        return f"{'SQLite' if self.kind == 'sqlite' else 'PostgreSQL'} history, {WORKERS} workers"

    @property
    def slots(self) -> int:
        return self.agents * CAPACITY

    @property
    def expected(self) -> int:
        """How many of the round's conversations end assigned (the rest wait)."""
        return min(CONVERSATIONS, self.slots)


def run(rounds: int = ROUNDS) -> list[str]:
    """One table row per setup: SQLite, then PostgreSQL; 100 slots, then 50."""
    setups, why = _run(rounds)
    rows = [_row(setup) for setup in setups]
    if why is not None:
        rows.append(f"| PostgreSQL history | {why} | | | | | |")
    return rows


def _run(rounds: int) -> tuple[list[Setup], str | None]:
    """The setups, measured; why there is no PostgreSQL setup (None: there is)."""
    with (
        tempfile.TemporaryDirectory() as work,
        _postgres("assignment") as (url, why),
        ExitStack() as servers,
    ):
        setups = []
        for agents in TEAMS:
            path = f"{work}/assignment-history-{agents}.db"
            setups.append(Setup("sqlite", path, agents, Path(work)))
            if url is not None:
                target = _database(url, f"assignment_{agents}")
                setups.append(Setup("postgres", target, agents, Path(work)))
        for setup in setups:
            servers.enter_context(_serving(setup))
        for index in range(rounds):
            for setup in setups:
                if setup.failure is None:
                    _round(setup, index)
    return sorted(setups, key=lambda s: s.kind != "sqlite"), why if url is None else None


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


@contextmanager
def _serving(setup: Setup) -> Iterator[None]:
    """``serve --workers 2`` for ``setup``, its metric files in a directory of ours (set
    for the server alone: this process keeps its in-memory metrics)."""
    setup.metrics.mkdir()
    with ExitStack() as stack:
        with _environment(MULTIPROC, str(setup.metrics)):
            setup.base, _ = stack.enter_context(
                cli_server("serve", *_serve_args(setup.config, WORKERS))
            )
        yield


def _round(setup: Setup, index: int) -> None:
    """Run a round of ``setup``; anything failing it (an exception included: the
    automation's tables not what the reads expect, a server gone) fails the setup."""
    try:
        _measure(setup, index)
    except Exception as exc:
        setup.failure = f"round {index + 1}: {type(exc).__name__}: {exc}"


def _measure(setup: Setup, index: int) -> None:
    tag = f"{setup.kind[0]}{setup.agents}r{index}"
    senders = [
        f"1{index}{setup.agents:02d}{len(setup.kind)}55{n:04d}" for n in range(CONVERSATIONS)
    ]
    assert len(set(senders)) == CONVERSATIONS
    problem = anyio.run(_prepare_within, setup)
    if problem is not None:
        setup.failure = f"round {index + 1}: {problem}"
        return
    port = int(setup.base.rpartition(":")[2])
    raw = [_raw(port, request) for request in _webhooks(tag, senders)]
    handled_before = _handled(setup.metrics)
    cpu_before = {pid: _cpu_seconds(pid) for pid in handled_before}
    reader = _Reader(setup.kind, setup.target, senders)
    try:
        steal_before = _steal()
        assigned_in, acks, errors, seen = asyncio.run(_burst(port, raw, reader, setup.expected))
        steal = _steal(steal_before)
        _wait_handled(setup.metrics, handled_before, CONVERSATIONS)
        time.sleep(SETTLE)
        handled = _since(_handled(setup.metrics), handled_before)
        above_cap, problems, after = _check(setup, reader)
        busy = [pid for pid, n in handled.items() if n > 0]
        if len(busy) < WORKERS:
            problems.append(f"events handled by {len(busy)} process(es) only: {handled}")
    finally:
        reader.close()
    cpu = {pid: _cpu_seconds(pid) - cpu_before.get(pid, 0.0) for pid in handled}
    setup.previous = after.ids
    measured = Round(assigned_in, acks, errors, steal, above_cap, handled, cpu, problems)
    setup.rounds.append(measured)
    if assigned_in is None:
        setup.failure = (
            f"round {index + 1}: not there after {ROUND_TIMEOUT:g} s: {seen.describe()} "
            f"({sum(handled.values()):.0f} of {CONVERSATIONS} events handled; "
            f"{_failures(setup.metrics)})"
        )
    elif problems:
        setup.failure = f"round {index + 1}: {'; '.join(problems)}"


def _webhooks(tag: str, senders: list[str]) -> list[WebhookRequest]:
    """A signed WhatsApp text message from each of ``senders``, ids ``wamid.{tag}x{n}``."""
    return [
        whatsapp_kit.sign(
            whatsapp_kit.webhook(
                whatsapp_kit.inbound("text", {"body": "hi"}, sender=sender, id=f"wamid.{tag}x{n}")
            )
        )
        for n, sender in enumerate(senders)
    ]


async def _prepare_within(setup: Setup) -> str | None:
    with anyio.move_on_after(ROUND_TIMEOUT):
        return await _prepare(setup)
    return f"the preparation took over {ROUND_TIMEOUT:g} s"


async def _prepare(setup: Setup) -> str | None:
    """Resolve and release the previous round's conversations (the waiting ones first:
    resolved, a held one frees its agent's room, which the next tick would fill with a
    waiting one), set every agent online; what is wrong if the agents do not start
    empty (None: they do). The history is closed again: the round's reads are the
    poller's."""
    history = _open_history(setup.kind, setup.target)
    async with history:
        assignments = Assignments.from_config(history, setup.table)
        waiting = [w.conversation_id for w in await assignments.waiting(limit=1000)]
        for conversation in waiting + [c for c in setup.previous if c not in waiting]:
            await history.resolve(conversation)
            await assignments.release(conversation)
        for agent in assignments.agents:
            await assignments.online(agent)
        loads = {a: n for a, n in (await assignments.load()).items() if n}
        left = await assignments.waiting(limit=1000)
        online = await assignments.status()
    if loads or left or not all(online.values()):
        offline = sorted(a for a, on in online.items() if not on)
        return f"did not start empty: loads {loads}, {len(left)} waiting, offline {offline}"
    return None


@dataclass
class Seen:
    """The round's conversations as one read of the database showed them."""

    ids: list[str]
    assigned: int
    waiting: int
    lost: int  # neither assigned nor waiting

    def done(self, expected: int) -> bool:
        return (
            len(self.ids) == CONVERSATIONS
            and self.assigned == expected
            and self.waiting == CONVERSATIONS - expected
        )

    def describe(self) -> str:
        return (
            f"{len(self.ids)} of {CONVERSATIONS} conversations, {self.assigned} assigned, "
            f"{self.waiting} waiting, {self.lost} neither"
        )


#: The round's conversations, by their senders' addresses (SQLite's list test;
#: PostgreSQL's is ``= ANY(%s)``): their state, assignee, first response and route
#: (``agent`` NULL: it waits in its queue).
_CONVERSATIONS = (
    "SELECT c.id, c.state, c.assignee, c.first_response_at, r.conversation_id, r.queue, "
    "r.agent FROM identities i JOIN conversations c ON c.customer_id = i.customer_id "
    "LEFT JOIN routes r ON r.conversation_id = c.id WHERE i.channel = 'whatsapp' "
    "AND i.address IN (SELECT value FROM json_each(?))"
)
_SQLITE_LIST = "IN (SELECT value FROM json_each(?))"
#: Each agent's unhandled conversations, the whole database's.
_LOADS = (
    "SELECT assignee, COUNT(*) FROM conversations WHERE assignee IS NOT NULL AND state = ? "
    "AND first_response_at IS NULL GROUP BY assignee"
)


class _Reader:
    """Read-only reads of the history's database: the round's conversations (those of
    its senders' customers), their assignee and route (table ``routes``: ``agent``
    NULL while it waits in its queue), and the agents' unhandled loads."""

    def __init__(self, kind: str, target: str, senders: list[str]) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.db: Any = sqlite3.connect(f"file:{target}?mode=ro", uri=True, isolation_level=None)
            self.senders: Any = json.dumps(senders)
            self.conversations = _CONVERSATIONS
            self.loads_query = _LOADS
        else:
            import psycopg

            self.db = psycopg.connect(target, autocommit=True)
            self.db.execute("SET default_transaction_read_only = on")
            self.senders = list(senders)
            self.conversations = _CONVERSATIONS.replace(_SQLITE_LIST, "= ANY(%s)")
            self.loads_query = _LOADS.replace("?", "%s")

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.db.execute(self.conversations, (self.senders,))]

    def seen(self) -> Seen:
        rows = self.rows()
        assigned = sum(1 for row in rows if row[2] is not None)
        waiting = sum(
            1
            for _, state, assignee, _, routed, _, agent in rows
            if assignee is None and state == _OPEN and routed is not None and agent is None
        )
        return Seen([row[0] for row in rows], assigned, waiting, len(rows) - assigned - waiting)

    def loads(self) -> dict[str, int]:
        """Every agent's unhandled conversations (assigned, open, unanswered), the
        whole database's."""
        return {agent: int(count) for agent, count in self.db.execute(self.loads_query, (_OPEN,))}

    def close(self) -> None:
        self.db.close()


async def _burst(
    port: int, requests: list[bytes], reader: _Reader, expected: int
) -> tuple[float | None, list[float], int, Seen]:
    """Open one connection per request; once all are open, write every request at once
    and, from the first write, read the database every POLL_INTERVAL until it shows
    ``expected`` of the round's conversations assigned and the rest waiting (None: not
    within ROUND_TIMEOUT); also the acknowledgement latencies (each write to its whole
    answer), the errors (no connection, no 2xx within BURST_TIMEOUT) and the last read.
    The reads are synchronous, in this loop: each takes well under a millisecond, which
    an answer may wait."""
    opened = await asyncio.gather(
        *(
            asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), BURST_TIMEOUT)
            for _ in requests
        ),
        return_exceptions=True,
    )
    streams = [s for s in opened if not isinstance(s, BaseException)]
    errors = len(opened) - len(streams)
    latencies: list[float] = []

    async def answer(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter], at: float) -> None:
        nonlocal errors
        source, writer = stream
        try:
            async with asyncio.timeout(BURST_TIMEOUT):
                head = await _answer(source)
            if head[9:10] == b"2":  # "HTTP/1.1 2xx"
                latencies.append(time.monotonic() - at)
            else:
                errors += 1
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    tasks = []
    first = time.monotonic()
    for stream, raw in zip(streams, requests, strict=False):
        at = time.monotonic()
        stream[1].write(raw)
        tasks.append(asyncio.create_task(answer(stream, at)))
    assigned_in = None
    while True:
        seen = reader.seen()
        now = time.monotonic()
        if seen.done(expected):
            assigned_in = now - first
            break
        if now - first > ROUND_TIMEOUT:
            break
        await asyncio.sleep(POLL_INTERVAL)
    await asyncio.gather(*tasks)
    return assigned_in, latencies, errors, seen


def _check(setup: Setup, reader: _Reader) -> tuple[int, list[str], Seen]:
    """The invariants, on the database once the round settled: no agent holds more
    unhandled conversations than CAPACITY (nor is anyone not in the team given one);
    every conversation of the round is assigned or waiting in the queue (none lost),
    ``expected`` of them assigned; each assigned one's route is held by its assignee.
    The agents above their cap, what is wrong, and the read."""
    problems = []
    loads = reader.loads()
    above = {agent: n for agent, n in loads.items() if n > CAPACITY}
    if above:
        problems.append(f"above cap: {above}")
    if sum(loads.values()) != setup.expected:  # the earlier rounds' are resolved
        problems.append(f"{sum(loads.values())} unhandled conversations held, not {setup.expected}")
    strangers = sorted(set(loads) - {a["id"] for a in setup.table["agents"]})
    if strangers:
        problems.append(f"assigned to unknown agents {strangers}")
    seen = reader.seen()
    if not seen.done(setup.expected):
        problems.append(f"after the round: {seen.describe()}")
    held = [row for row in reader.rows() if row[2] is not None]
    unheld = sum(1 for row in held if row[4] is None or row[6] != row[2])
    if unheld:
        problems.append(
            f"{unheld} assigned conversation(s) whose route their assignee does not hold"
        )
    return len(above), problems, seen


def _handled(directory: Path) -> dict[int, float]:
    """Events handled so far by each serving process, from its own metric file
    (``counter_<pid>.db``: prometheus-client's multiprocess mode)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    for path in sorted(directory.glob("counter_*.db")):
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "chatbridge_events_handled_total":
                    total += sample.value
        counts[int(path.stem.rpartition("_")[2])] = total
    return counts


def _failures(directory: Path) -> str:
    """The events retried and dead-lettered so far, all processes."""
    from prometheus_client.multiprocess import MultiProcessCollector

    found = dict.fromkeys(("retried", "dead_lettered"), 0.0)
    files = [str(path) for path in directory.glob("counter_*.db")]
    for metric in MultiProcessCollector.merge(files, accumulate=True):  # type: ignore[no-untyped-call]
        for sample in metric.samples:
            for what in found:
                if sample.name == f"chatbridge_events_{what}_total":
                    found[what] += sample.value
    return ", ".join(f"{n:.0f} {what.replace('_', '-')}" for what, n in found.items())


def _since(now: dict[int, float], before: dict[int, float]) -> dict[int, float]:
    return {pid: count - before.get(pid, 0.0) for pid, count in now.items()}


def _wait_handled(directory: Path, before: dict[int, float], count: int) -> dict[int, float]:
    deadline = time.monotonic() + HANDLED_TIMEOUT
    while True:
        handled = _since(_handled(directory), before)
        if sum(handled.values()) >= count or time.monotonic() > deadline:
            return handled
        time.sleep(0.05)


def _row(setup: Setup) -> str:
    rounds = setup.rounds
    slots = f"{setup.slots} ({setup.agents} x {CAPACITY})"
    if setup.slots < CONVERSATIONS:
        slots += f", {CONVERSATIONS - setup.slots} wait"
    times = [r.assigned_in for r in rounds if r.assigned_in is not None]
    shown = (
        f"**{median(times):.2f} s** ({min(times):.2f}–{max(times):.2f}), "  # noqa: RUF001
        f"{_rounds(len(times))}"
        if times
        else "none"
    )
    if setup.failure is not None:
        shown += f"; **FAILED** {setup.failure}"
    acks = [a for r in rounds for a in r.acks]
    errors = sum(r.errors for r in rounds)
    ack = f"{_p(acks, 99) * 1000:.0f} ms" if len(acks) > 1 else "n/a"
    ack += f" ({errors} errors)" if errors else ""
    above = sum(r.above_cap for r in rounds)
    steal = [r.steal for r in rounds]
    stolen = f"{median(steal):.0%} ({max(steal):.0%})" if steal else "n/a"
    return f"| {setup.name} | {slots} | {shown} | {ack} | {above} | {stolen} | < {TARGET:g} s |"


def _split(setup: Setup) -> str:
    """Each round's time to all assigned, and the events handled (CPU seconds) by each
    serving process."""
    parts = []
    for r in setup.rounds:
        busy = [pid for pid, n in sorted(r.handled.items()) if n or r.cpu.get(pid)]
        took = f"{r.assigned_in:.2f} s" if r.assigned_in is not None else "timed out"
        split = " / ".join(
            f"{r.handled[pid]:.0f} ({r.cpu.get(pid, 0) * 1000:.0f} ms)" for pid in busy
        )
        parts.append(f"{took}, {split}")
    return "; ".join(parts)


HEADER = [
    "| setup | slots | all assigned: median (min–max) | ack p99 | agents above cap | steal "  # noqa: RUF001
    "| target |",
    "|---|---|---:|---:|---:|---:|---:|",
]


def section(rounds: int = ROUNDS) -> list[str]:
    """The docs/benchmarks.md section."""
    started = time.perf_counter()
    setups, why = _run(rounds)
    rows = [_row(setup) for setup in setups]
    rows += [f"| PostgreSQL history | {why} | | | | | |"] if why is not None else []
    splits = [f"- {setup.name}, {setup.slots} slots: {_split(setup)}" for setup in setups]
    took = time.perf_counter() - started
    return [
        f"{HEADING} (`python -m benchmarks.assignment`)",
        "",
        *_paragraph(
            f"`chatbridge serve --workers {WORKERS}` on 127.0.0.1 (SQLite store and outbox, a "
            "`[history]` both processes share, SQLite or PostgreSQL) with an `[automation]` "
            f'whose `queue` is "{QUEUE}" (one `[[automation.queues]]`, least-loaded) and a '
            f"team of agents of capacity {CAPACITY}: {TEAMS[0]} (enough for every "
            f"conversation) or {TEAMS[1]} (half of them wait in the queue). Before each round "
            "the previous round's conversations are resolved and released (`History.resolve`, "
            "`Assignments.release`; the waiting ones first) and every agent is set online "
            "(`Assignments.online`, from this process, on the same database); the round "
            f"starts only if no agent holds a conversation and none waits. Then {CONVERSATIONS} "
            f"connections are opened and {CONVERSATIONS} signed WhatsApp webhooks from as "
            "many new senders are written on them at once. All assigned: from the first write "
            "until the history's database, read (read-only, the round's conversations by "
            f"their senders) every {POLL_INTERVAL * 1000:g} ms, shows every conversation "
            "assigned (50 slots: 50 assigned and 50 waiting in the queue's routes); a round "
            f"has {ROUND_TIMEOUT:g} s. Ack p99: of every round's acknowledgements (write to "
            "the whole answer). Once every event was handled and "
            f"{SETTLE:g} s more passed (two ticks), each round checks on the database: no "
            "agent holds more unhandled conversations (assigned, open, unanswered) than "
            "the cap (the agents above it are counted) and all of them hold as many as the "
            "conversations assigned, every conversation is assigned or "
            "waiting, as many assigned as there are slots, each assigned one's route held by "
            "its assignee; and both serving processes handled events (each process's own "
            f"`chatbridge_events_handled_total`, read from its metrics file: `serve` keeps "
            f"the `{MULTIPROC}` given to it, and the files are per process id). A round "
            "failing a check fails its setup. Steal: the share of the machine's CPU time its "
            "host took during the rounds (/proc/stat), median (max). The four servers run "
            "side by side and take their rounds in turn; the client shares the 2 cores. "
            f"{_rounds(rounds)} per setup; it took {took:.0f} s."
        ),
        "",
        *HEADER,
        *rows,
        "",
        "Round by round: all assigned, then the events each serving process handled (its CPU",
        "time from the first write to the checks):",
        "",
        *splits,
    ]


def _rounds(count: int) -> str:
    return f"{count} round{'s' * (count != 1)}"


def _paragraph(text: str) -> list[str]:
    return textwrap.wrap(text, width=88, break_long_words=False, break_on_hyphens=False)


def main() -> None:
    """``[ROUNDS]``: rewrite this section of docs/benchmarks.md (appended if absent)."""
    rewrite_section(HEADING, section(*map(int, sys.argv[1:])))


if __name__ == "__main__":
    main()
