"""The conversation history under load: ``python -m benchmarks.history [PART]``.

Three measures of the issue's targets, in the section "## Conversation history" of
docs/benchmarks.md (``python -m benchmarks.history`` rewrites it; ``python -m
benchmarks.run`` includes it); a PART (``merge``, ``timeline`` or ``cost``) prints its
table alone:

- ``merge [RATE] [SECONDS]``: the cross-channel merge latency. A WhatsApp identity is
  linked (``History.link``) to an email identity before ``chatbridge serve`` (1 worker,
  ``[history]`` on SQLite, then on PostgreSQL) starts; signed webhooks then go to it
  open-loop (:mod:`benchmarks.load`'s client), from that WhatsApp number alone, then from
  MERGE_SENDERS numbers (every LINKED_EVERY-th from it; the others known beforehand, then
  new). Measured: from each webhook's 2xx answer (as the client reads it) to its entry
  being visible in its customer's timeline (the linked one's for that number), seen by a
  poller in another process (:func:`_poll`).
- ``timeline [READS]``: the first page (50 entries) of a customer with 10,000 messages,
  through ``History.timeline``, SQLite and PostgreSQL reads interleaved (the first
  COLD_READS apart).
- ``cost [RATE] [ROUND_SECONDS] [ROUNDS]``: the acknowledgement rate of ``serve`` above
  its capacity (SQLite store and outbox, 1 worker) without and with a SQLite
  ``[history]``, two servers side by side loaded in interleaved rounds; also the events
  the worker handled per second.

PostgreSQL rows use a throwaway server of :mod:`tests.postgres_server` (fsync off), one
database per measure; without PostgreSQL installed they say so.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import urlsplit

import anyio

from benchmarks.load import (
    _config,
    _Connections,
    _cpu_seconds,
    _family,
    _metrics,
    _open_loop,
    _p,
    _raw,
    _serve_args,
    _webhooks,
)
from benchmarks.report import rewrite_section
from chatbridge.conversations import History
from chatbridge.conversations.ops import Op, Row
from chatbridge.conversations.ops import timeline as timeline_op
from chatbridge.models import Event, Identity, MessageReceived
from chatbridge.webhook import WebhookRequest
from chatbridge.whatsapp import WhatsAppChannel
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.loopback import cli_server

HEADING = "## Conversation history"

#: The customer of the merge measure: the kit's WhatsApp number (every webhook of
#: :func:`benchmarks.load._webhooks` comes from it), linked beforehand to an email address.
WHATSAPP = Identity(channel="whatsapp", address=whatsapp_kit.CUSTOMER)
EMAIL = Identity(channel="email", address="sheena.nelson@example.com")

MERGE_RATE, MERGE_SECONDS, MERGE_ROUNDS = 500, 15, 3
#: The many-customer rows: webhooks from MERGE_SENDERS WhatsApp numbers, every
#: LINKED_EVERY-th from the linked one, the others round-robin from the rest.
MERGE_SENDERS, LINKED_EVERY = 500, 10
#: The poller's pause between two looks for new entries.
POLL_INTERVAL = 0.003
#: Every SAMPLE_EVERY-th event (all of them the linked number's: a multiple of
#: LINKED_EVERY) is also looked for with ``History.timeline``.
SAMPLE_EVERY = 50
assert SAMPLE_EVERY % LINKED_EVERY == 0
#: How long the poller reads again the ids it has not seen below the highest it saw (a
#: transaction that commits after one with a higher id, concurrent lanes on PostgreSQL).
GAP_SECONDS = 2.0
#: How long the poller may wait for the last entries once every event was handled.
SETTLE_SECONDS = 5.0

TIMELINE_MESSAGES, TIMELINE_READS, PAGE = 10_000, 200, 50
#: Reads per backend before the measured ones, reported apart: a fresh PostgreSQL
#: connection plans each statement anew for its first executions (PostgreSQL weighs a
#: generic plan after 5 custom ones).
COLD_READS = 10
FILL_BATCH = 100
#: The timeline measure's customer: another WhatsApp number, linked to an email address.
READER = Identity(channel="whatsapp", address="16505550000")
READER_EMAIL = Identity(channel="email", address="reader@example.com")

COST_RATE, COST_SECONDS, COST_ROUNDS = 4000, 10, 5

HISTORY_TABLE = "\n[history]\n{}\n"


# -- 1. cross-channel merge latency ------------------------------------------------------


def merge(
    rate: int = MERGE_RATE, seconds: int = MERGE_SECONDS, rounds: int = MERGE_ROUNDS
) -> list[str]:
    """Three table rows per history backend, SQLite then PostgreSQL: one customer;
    MERGE_SENDERS known beforehand; MERGE_SENDERS of whom all but the linked one are new.
    Each row is run ``rounds`` times, the rounds of all rows interleaved, each round on a
    history, store and outbox of its own."""
    loads = [(1, False), (MERGE_SENDERS, False), (MERGE_SENDERS, True)]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as work, _postgres("merge") as (url, why):
        for round_ in range(rounds):
            for n, (senders, new) in enumerate(loads):
                row = f"{n}r{round_}"
                runs.setdefault(("SQLite", n), []).append(
                    _merge_round(
                        "sqlite", f"{work}/merge-{row}.db", work, rate, seconds, senders, new
                    )
                )
                if url is not None:
                    target = _database(url, f"merge_{row}")
                    runs.setdefault(("PostgreSQL", n), []).append(
                        _merge_round("postgres", target, work, rate, seconds, senders, new)
                    )
    rows = [
        _merge_row(name, rate, seconds, *loads[n], measured)
        for (name, n), measured in sorted(runs.items(), key=lambda run: run[0][0] != "SQLite")
    ]
    if url is None:
        rows.append(f"| PostgreSQL | {why} |{' |' * (len(MERGE_HEADER[1].split('|')) - 3)}")
    return rows


MERGE_HEADER = [
    "| history | load | visible / acknowledged | never visible | merge p50 | merge p99 "
    "| merge p99 of each round (CPU stolen) | merge max | `timeline()` checks "
    "| serve CPU / event | PostgreSQL CPU / event |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def _merge_row(
    name: str, rate: int, seconds: int, senders: int, new: bool, rounds: list[dict[str, Any]]
) -> str:
    """A table row of ``rounds`` of one load: counts summed; p50, p99 and CPU the median
    of the rounds'; max the largest; each round's p99 with the share of this machine's
    CPU time its host took (steal) meanwhile."""
    customers = "1 customer" if senders == 1 else f"{senders} customers"
    customers += f", {senders - 1} new" if new and senders > 1 else ""
    total = {
        key: sum(r[key] for r in rounds)
        for key in ("seen", "answered", "never", "found", "checked", "missed", "elsewhere")
    }
    notes = (
        [f"{sum(r['early'] for r in rounds)} before the answer was read"]
        if any(r["early"] for r in rounds)
        else []
    )
    handled = sum(r["handled"] for r in rounds)
    expected = rate * seconds * len(rounds)
    notes += [f"{handled:.0f} of {expected} handled"] if handled < expected else []
    never = str(total["never"])
    if total["missed"]:
        never += f" ({total['missed']} there at the end, missed by the poller)"
    if total["elsewhere"]:
        never += f" ({total['elsewhere']} entries under the wrong customer)"
    postgres = [r["cpu"][1] for r in rounds if len(r["cpu"]) > 1]
    each = [f"{_ms(r['p99'])} ({r['stolen']:.0%})" for r in rounds]
    return (
        f"| {name} | {rate}/s for {seconds} s, {customers}; {_rounds(len(rounds))} "
        f"| {total['seen']:,} / {total['answered']:,}"
        f"{' (' + ', '.join(notes) + ')' if notes else ''} | {never} "
        f"| {_ms(median(r['p50'] for r in rounds))} | **{_ms(median(r['p99'] for r in rounds))}** "
        f"| {', '.join(each)} "
        f"| {_ms(max(r['max'] for r in rounds))} "
        f"| {total['found']} of {total['checked']} found "
        f"| {median(r['cpu'][0] for r in rounds) * 1e6:,.0f} µs "
        f"| {f'{median(postgres) * 1e6:,.0f} µs' if postgres else 'n/a'} |"
    )


def _rounds(count: int) -> str:
    return f"{count} round{'s' * (count > 1)}"


def _merge_round(
    kind: str,
    target: str,
    work: str,
    rate: int,
    seconds: int,
    senders: int,
    new: bool = False,
) -> dict[str, Any]:
    """One round: ``rate`` webhooks a second for ``seconds`` from ``senders`` WhatsApp
    numbers (1: the linked one alone; more: every LINKED_EVERY-th from it), the others
    ``new`` to the history or each with one message recorded beforehand; its figures."""
    others = [] if new else _others(senders)
    root = anyio.run(_link, _open_history(kind, target), EMAIL, WHATSAPP, others)
    history = f'kind = "{kind}"\n' + (
        f'path = "{target}"' if kind == "sqlite" else f'url = "{target}"'
    )
    files = f"merge-{kind}-{Path(target).name}"
    config = _history_config(Path(work) / f"{files}.toml", work, files, history)
    total = rate * seconds
    tag = f"H{kind}{Path(target).name}x"
    keys = [f"in:whatsapp:wamid.{tag}{i}" for i in range(total)]
    if senders == 1:
        requests = _webhooks(tag, total)
        linked = set(keys)
    else:
        requests = _webhooks_from(tag, total, senders)
        linked = set(keys[::LINKED_EVERY])
    sampled = set(keys[::SAMPLE_EVERY])
    with (
        _poller(kind, target, root, linked, sampled) as poller,
        cli_server("serve", *_serve_args(config, 1)) as (base, server),
    ):
        database = _postgres_pid(target) if kind == "postgres" else None
        cpu_before = [_cpu_seconds(pid) for pid in (server.pid, database) if pid is not None]
        steal_before = _steal()
        acked = anyio.run(_acked_open_loop, base, requests, rate)
        handled = _drain(base)
        stolen = _steal(steal_before)
        cpu = [
            (_cpu_seconds(pid) - before) / total
            for pid, before in zip((server.pid, database), cpu_before, strict=False)
            if pid is not None
        ]
        seen, report = poller.finish(set(keys), SETTLE_SECONDS)
    latencies, early = [], 0
    for key, at in zip(keys, acked, strict=True):
        if at is not None and key in seen:
            latency = seen[key] - at
            early += latency < 0  # committed before the client had read the answer
            latencies.append(max(latency, 0.0))
    answered = {key for key, at in zip(keys, acked, strict=True) if at is not None}
    unseen = answered - seen.keys()
    missed = len(unseen & report["missed"])  # there, but the poller did not see it come
    assert report["checked"] == report["found"], f"timeline() missed sampled events: {report}"
    return {
        "seen": len(latencies),
        "answered": len(answered),
        "early": early,
        "handled": handled,
        "never": len(unseen) - missed,
        "missed": missed,
        "elsewhere": report["elsewhere"],
        "found": report["found"],
        "checked": report["checked"],
        "p50": _p(latencies, 50),
        "p99": _p(latencies, 99),
        "max": max(latencies, default=float("nan")),
        "cpu": cpu,
        "stolen": stolen,
    }


def _steal(before: tuple[int, int] | None = None) -> Any:
    """This machine's CPU time (all cores) and the part of it its host took (steal),
    from /proc/stat; with ``before``, the share stolen since."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    now = (sum(fields[:8]), fields[7])
    if before is None:
        return now
    return (now[1] - before[1]) / max(now[0] - before[0], 1)


def _others(senders: int) -> list[str]:
    """The WhatsApp numbers of the many-customer rows but the linked one."""
    return [f"1415555{n:04d}" for n in range(senders - 1)]


def _webhooks_from(tag: str, count: int, senders: int) -> list[WebhookRequest]:
    """:func:`benchmarks.load._webhooks` (ids ``wamid.{tag}{i}``) from ``senders``
    numbers: every LINKED_EVERY-th from the kit's (the linked one), the others from
    ``senders - 1`` other numbers in turn."""
    others = _others(senders)
    requests = []
    for i in range(count):
        if i % LINKED_EVERY == 0:
            sender = whatsapp_kit.CUSTOMER
        else:
            sender = others[(i - i // LINKED_EVERY - 1) % len(others)]
        body = whatsapp_kit.inbound("text", {"body": "hi"}, sender=sender, id=f"wamid.{tag}{i}")
        requests.append(whatsapp_kit.sign(whatsapp_kit.webhook(body)))
    return requests


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _open_history(kind: str, target: str) -> History:
    return History.sqlite(target) if kind == "sqlite" else History.postgres(target)


async def _link(
    history: History, identity: Identity, other: Identity, known: list[str] | None = None
) -> str:
    """Link ``other`` into ``identity``'s customer; the customer id both show under.
    Each WhatsApp number of ``known`` gets a customer of its own, with one message."""
    async with history:
        customer = await history.link(identity, other)
        if known:
            await history.record_events(await _messages(known, "K"))
    return customer.id


def _history_config(path: Path, work: str, name: str, history: str | None) -> Path:
    """A serve config (load.py's, SQLite store and outbox of their own) with ``history``
    as its ``[history]`` table (None: none)."""
    store = f'kind = "sqlite"\npath = "{work}/{name}-state.db"'
    outbox = f'kind = "sqlite"\npath = "{work}/{name}-outbox.db"'
    _config(path, store, outbox)
    if history is not None:
        with path.open("a") as file:
            file.write(HISTORY_TABLE.format(history))
    return path


async def _acked_open_loop(
    base: str, requests: list[WebhookRequest], rate: int
) -> list[float | None]:
    """:func:`benchmarks.load._open_loop`'s schedule and client, keeping when each
    request was answered 2xx (``time.monotonic()``, None: not) rather than its latency:
    the merge latency starts there."""
    port = int(base.rpartition(":")[2])
    raw = [_raw(port, request, close=False) for request in requests]
    connections = _Connections(port)
    acked: list[float | None] = [None] * len(raw)

    async def send(index: int, request: bytes) -> None:
        if await connections.post(request):
            acked[index] = time.monotonic()

    async with anyio.create_task_group() as group:
        start = time.monotonic()
        for index, request in enumerate(raw):
            await anyio.sleep(max(start + index / rate - time.monotonic(), 0))
            group.start_soon(send, index, request)
    connections.close()
    return acked


class _Poller:
    """The parent's end of :func:`_poll`."""

    def __init__(self, process: multiprocessing.process.BaseProcess, pipe: Connection) -> None:
        self.process = process
        self.pipe = pipe

    def finish(self, keys: set[str], settle: float) -> tuple[dict[str, float], dict[str, Any]]:
        """Let the poller look for ``keys`` up to ``settle`` s more, then stop it; when
        each key was first seen under its customer, and its report."""
        self.pipe.send((keys, settle))
        if not self.pipe.poll(settle + 60):
            raise RuntimeError(f"the poller did not answer (exit code {self.process.exitcode})")
        seen, report = self.pipe.recv()
        self.process.join(timeout=30)
        return seen, report


@contextmanager
def _poller(
    kind: str, target: str, root: str, linked: set[str], sampled: set[str]
) -> Iterator[_Poller]:
    """:func:`_poll` in a process of its own (so that its work and the load generator's
    do not wait for one another's GIL), once it is polling."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_poll, args=(kind, target, root, linked, sampled, child))
    process.start()
    child.close()  # the poller's end: once it exits, recv() here fails rather than waits
    try:
        if not parent.poll(60):
            raise RuntimeError(f"the poller did not start (exit code {process.exitcode})")
        assert parent.recv() == "polling"
        yield _Poller(process, parent)
    finally:
        if process.is_alive():
            process.terminate()
            process.join()


def _poll(
    kind: str, target: str, root: str, linked: set[str], sampled: set[str], pipe: Connection
) -> None:
    anyio.run(_polling, kind, target, root, linked, sampled, pipe)


async def _polling(
    kind: str, target: str, root: str, linked: set[str], sampled: set[str], pipe: Connection
) -> None:
    """Every POLL_INTERVAL, read the entries added since the last look (by id: one index
    range, only the new rows) and note when each was first seen under its customer
    (``time.monotonic()``, comparable across processes on Linux): a ``linked`` key under
    ``root``, any other under another customer. Each ``sampled`` key, once seen, is
    looked for in ``History.timeline(EMAIL)`` as well (page by page, in a task of its
    own). An id below the highest seen but not seen itself (a transaction that commits
    after one with a higher id: concurrent lanes on PostgreSQL; or a number never used)
    is read again for GAP_SECONDS. Answers the parent's ``(keys, settle)`` once every key
    was seen or ``settle`` s passed, with the keys it did not see that are there all the
    same, under their customer."""
    if kind == "sqlite":
        db: Any = sqlite3.connect(target, isolation_level=None)  # reads: no write lock
        query = "SELECT id, key, customer_id FROM entries WHERE id > ? ORDER BY id"
        there = "SELECT key, customer_id FROM entries WHERE key IN "
        there += "(SELECT value FROM json_each(?))"
    else:
        import psycopg

        db = psycopg.connect(target, autocommit=True)
        query = "SELECT id, key, customer_id FROM entries WHERE id > %s ORDER BY id"
        there = "SELECT key, customer_id FROM entries WHERE key = ANY(%s)"
    seen: dict[str, float] = {}
    elsewhere = 0  # entries under the wrong customer (in or out of the linked timeline)
    checks = {"checked": 0, "found": 0}
    last = 0
    gaps: dict[int, float] = {}  # ids below ``last`` not seen yet: since when
    history = _open_history(kind, target)

    async def check(key: str) -> None:
        message_id = key.removeprefix("in:whatsapp:")
        before = None
        checks["checked"] += 1
        for _ in range(100):
            page = await history.timeline(EMAIL, limit=PAGE, before=before)
            if any(
                entry.message_id == message_id
                and entry.customer_id == root
                and entry.identity == WHATSAPP
                for entry in page.entries
            ):
                checks["found"] += 1
                return
            if page.before is None:
                return
            before = page.before

    # Its own collector's full passes over the modules it imported (~50-80 ms on this
    # machine) would delay what it notes, as if the entries had come late.
    gc.collect()
    gc.freeze()
    pipe.send("polling")
    wanted: set[str] | None = None
    deadline = float("inf")
    async with history, anyio.create_task_group() as group:
        while True:
            rows = db.execute(query, (min(gaps, default=last + 1) - 1,)).fetchall()
            now = time.monotonic()
            for entry_id, key, customer in rows:
                if entry_id > last:
                    gaps.update(dict.fromkeys(range(last + 1, entry_id), now))
                    last = entry_id
                elif gaps.pop(entry_id, None) is None:
                    continue  # seen at an earlier look
                if (customer == root) != (key in linked):
                    elsewhere += 1
                elif key not in seen:
                    seen[key] = now
                    if key in sampled:
                        group.start_soon(check, key)
            gaps = {gap: since for gap, since in gaps.items() if now - since < GAP_SECONDS}
            if wanted is None and pipe.poll():
                wanted, settle = pipe.recv()
                deadline = now + settle
            if wanted is not None and (wanted <= seen.keys() or now > deadline):
                break
            await anyio.sleep(POLL_INTERVAL)
    unseen = sorted(wanted - seen.keys()) if wanted is not None else []
    argument = json.dumps(unseen) if kind == "sqlite" else unseen
    missed = {
        key
        for key, customer in db.execute(there, (argument,)).fetchall()
        if (customer == root) == (key in linked)
    }
    db.close()
    report = {
        **checks,
        "elsewhere": elsewhere,
        "missed": missed,
    }
    pipe.send((seen, report))


@contextmanager
def _postgres(database: str) -> Iterator[tuple[str | None, str]]:
    """A throwaway PostgreSQL server's URL to a new, empty ``database``; (None, why) when
    there can be none (PostgreSQL or psycopg is not installed)."""
    try:
        import psycopg  # noqa: F401 (the histories and the server helper need it)
        import pytest

        from tests.postgres_server import postgres_server
    except ImportError as exc:
        yield None, f"unavailable ({exc.name} is not installed)"
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except pytest.skip.Exception as skipped:
            yield None, f"unavailable ({skipped.msg})"
            return
        yield _database(url, database), ""


def _database(url: str, name: str) -> str:
    """Create the database ``name`` on the PostgreSQL server of ``url``; its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return url.rpartition("/")[0] + f"/{name}"


def _postgres_pid(url: str) -> int | None:
    """The pid of the PostgreSQL server (our child: tests/postgres_server.py) listening
    at ``url``'s port: its CPU time counts its backends'."""
    option = f"port={urlsplit(url).port}".encode()
    for pid in _family(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command[0].endswith(b"/postgres") and option in command:
            return pid
    return None


# -- 2. timeline reads -------------------------------------------------------------------


def timeline(reads: int = TIMELINE_READS) -> list[str]:
    """One table row per backend."""
    with tempfile.TemporaryDirectory() as work, _postgres("timeline") as (url, why):
        backends = {"SQLite": ("sqlite", str(Path(work) / "timeline-history.db"))}
        if url is not None:
            backends["PostgreSQL"] = ("postgres", url)
        results = anyio.run(_timeline_reads, backends, COLD_READS + reads)
    rows = []
    for name, (filled, total, query) in results.items():
        cold, total, query = total[:COLD_READS], total[COLD_READS:], query[COLD_READS:]
        rows.append(
            f"| {name} | {TIMELINE_MESSAGES:,} in {filled:.1f} s "
            f"({TIMELINE_MESSAGES / filled:,.0f}/s) | {_ms(median(total))} "
            f"| {_ms(_p(total, 99))} | {_ms(max(total))} | {_ms(median(query))} "
            f"| {_ms(_p(query, 99))} | {_ms(median(cold))} ({_ms(max(cold))}) |"
        )
    if url is None:
        rows.append(f"| PostgreSQL | {why} | | | | | | |")
    return rows


TIMELINE_HEADER = [
    "| history | filled with `record_events` | first page median | p99 | max "
    f"| its query alone, median | p99 | first {COLD_READS} reads, median (max) |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]


async def _timeline_reads(
    backends: dict[str, tuple[str, str]], reads: int
) -> dict[str, tuple[float, list[float], list[float]]]:
    """Fill each backend's history with TIMELINE_MESSAGES messages of one customer, then
    read its first page ``reads`` times, the backends taking turns (which goes first
    alternates). Per backend: the fill's seconds, the ``History.timeline`` latencies and
    those of its query alone (the database's part: ``ops.timeline`` through
    ``History.database.run``, without turning rows into entries)."""
    events = await _messages([READER.address] * TIMELINE_MESSAGES, "T")
    filled: dict[str, float] = {}
    histories: dict[str, tuple[History, str]] = {}
    total: dict[str, list[float]] = {name: [] for name in backends}
    query: dict[str, list[float]] = {name: [] for name in backends}
    try:
        for name, (kind, target) in backends.items():
            history = _open_history(kind, target)
            histories[name] = (history, (await history.link(READER_EMAIL, READER)).id)
            started = time.perf_counter()
            for start in range(0, len(events), FILL_BATCH):
                await history.record_events(events[start : start + FILL_BATCH])
            filled[name] = time.perf_counter() - started
            if kind == "postgres":  # what autovacuum does once a table grew by a tenth
                await _analyze(target)
        order = list(histories)
        for index in range(reads):
            for name in order if index % 2 == 0 else reversed(order):
                history, customer = histories[name]
                started = time.perf_counter()
                page = await history.timeline(customer, limit=PAGE)
                total[name].append(time.perf_counter() - started)
                assert len(page.entries) == PAGE, len(page.entries)
                assert page.entries[-1].message_id == events[-1].event_id, page.entries[-1]
                started = time.perf_counter()
                rows = await _first_page(history, customer)
                query[name].append(time.perf_counter() - started)
                assert len(rows) == PAGE
    finally:
        for history, _ in histories.values():
            await history.aclose()
    return {name: (filled[name], total[name], query[name]) for name in backends}


async def _analyze(url: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("ANALYZE")


def _first_page(history: History, customer: str) -> Any:
    def op() -> Op[list[Row]]:
        return timeline_op(customer, None, PAGE)

    return history.database.run(op)


async def _messages(senders: list[str], tag: str) -> list[Event]:
    """A text message from each WhatsApp number of ``senders``, one a second (ids
    ``wamid.{tag}{i}``): signed kit webhooks parsed by the WhatsApp channel, as ``serve``
    takes them in."""
    channel = WhatsAppChannel(whatsapp_kit.CONFIG)
    events: list[Event] = []
    t0 = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())
    try:
        for i, sender in enumerate(senders):
            body = whatsapp_kit.inbound(
                "text",
                {"body": f"message {i}: where is my order?"},
                sender=sender,
                at=t0 + i,
                id=f"wamid.{tag}{i}",
            )
            parsed = await channel.parse_request(whatsapp_kit.sign(whatsapp_kit.webhook(body)))
            events += parsed.events
    finally:
        await channel.aclose()
    assert all(isinstance(event, MessageReceived) for event in events)
    return events


# -- 3. recording cost on the acknowledgement rate ---------------------------------------


def cost(
    rate: int = COST_RATE, round_seconds: int = COST_SECONDS, rounds: int = COST_ROUNDS
) -> list[str]:
    """Two table rows: ``serve`` without and with a SQLite ``[history]``, then the ratio."""
    per_round = rate * round_seconds
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        configs = {
            "none": _history_config(Path(work) / "cost-none.toml", work, "cost-none", None),
            "SQLite": _history_config(
                Path(work) / "cost-sqlite.toml",
                work,
                "cost-sqlite",
                f'kind = "sqlite"\npath = "{work}/cost-history.db"',
            ),
        }
        servers = {
            label: stack.enter_context(cli_server("serve", *_serve_args(config, 1)))
            for label, config in configs.items()
        }
        acks: dict[str, list[float]] = {label: [] for label in servers}
        handled_rate: dict[str, list[float]] = {label: [] for label in servers}
        under_load: dict[str, list[float]] = {label: [] for label in servers}
        cpu: dict[str, list[float]] = {label: [] for label in servers}
        errors = dict.fromkeys(servers, 0)
        order = list(servers)
        for index in range(rounds):
            for label in order if index % 2 == 0 else reversed(order):
                base, server = servers[label]
                requests = _webhooks(f"C{label}{index}x", per_round)
                before_cpu, before = _cpu_seconds(server.pid), _handled(base)
                started = time.perf_counter()
                answered, failed = anyio.run(_open_loop, base, requests, rate)
                load_took = time.perf_counter() - started
                during = _handled(base) - before
                _drain(base)
                all_took = time.perf_counter() - started
                acks[label].append(len(answered) / load_took)
                under_load[label].append(during / load_took)
                handled_rate[label].append((_handled(base) - before) / all_took)
                cpu[label].append((_cpu_seconds(server.pid) - before_cpu) / per_round)
                errors[label] += failed
    rows = []
    for label in servers:
        ratio = median(acks[label]) / median(acks["none"])
        handled_ratio = median(handled_rate[label]) / median(handled_rate["none"])
        rows.append(
            f"| {label} | {rate}/s, {rounds} x {round_seconds} s | {_spread(acks[label])} "
            f"| {ratio:.2f} | {_spread(under_load[label])} | {_spread(handled_rate[label])} "
            f"| {handled_ratio:.2f} | {_spread([c * 1e6 for c in cpu[label]])} µs "
            f"| {errors[label] / (rounds * per_round):.2%} |"
        )
    return rows


COST_HEADER = [
    "| `[history]` | load | acks/s, median (min-max) | acks/s, with / without "
    "| handled/s during the load | handled/s, first send to last handled "
    "| handled/s, with / without | serve CPU / event | errors |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
]


def _handled(base: str) -> float:
    return _metrics(base).get(_HANDLED, 0.0)


_HANDLED = 'chatbridge_events_handled_total{channel="whatsapp"}'
_ACKNOWLEDGED = 'chatbridge_events_acknowledged_total{channel="whatsapp"}'


def _drain(base: str, seconds: float = 120) -> float:
    """Wait until the server handled every event it acknowledged and its outbox is
    empty (or ``seconds`` passed); the events handled. Not a count of the requests
    sent: one the client gave up on may have been acknowledged all the same."""
    deadline = time.monotonic() + seconds
    while True:
        samples = _metrics(base)
        handled = samples.get(_HANDLED, 0.0)
        done = handled >= samples.get(_ACKNOWLEDGED, 0.0) and not samples.get(
            "chatbridge_outbox_depth", 0.0
        )
        if done or time.monotonic() > deadline:
            return handled
        time.sleep(0.2)


def _spread(samples: list[float]) -> str:
    return f"{median(samples):,.0f} ({min(samples):,.0f}-{max(samples):,.0f})"


# -- the section -------------------------------------------------------------------------


def section() -> list[str]:
    """Run the three measures; the section of docs/benchmarks.md as lines."""
    took = {}
    started = time.perf_counter()
    merged = merge()
    took["merge"] = time.perf_counter() - started
    started = time.perf_counter()
    read = timeline()
    took["timeline"] = time.perf_counter() - started
    started = time.perf_counter()
    costs = cost()
    took["cost"] = time.perf_counter() - started
    return [
        f"{HEADING} (`python -m benchmarks.history`)",
        "",
        *_paragraph(
            f"Written on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. PostgreSQL is a throwaway "
            "server on 127.0.0.1 (tests/postgres_server.py: fsync and synchronous_commit "
            "off), sharing the 2 cores with everything else."
        ),
        "",
        "### Cross-channel merge latency",
        "",
        *_paragraph(
            "The kit's WhatsApp number is linked (`History.link`) to an email address before "
            "`chatbridge serve` (1 worker, SQLite store and outbox, the handler does nothing) "
            f"starts with `[history]`; then {MERGE_RATE} distinct signed webhooks a second "
            f"for {MERGE_SECONDS} s go to it open-loop (benchmarks/load.py's client: raw "
            "keep-alive streams). Three loads per backend. Once it answered, the intake "
            "records the new events in the background, one history call for those answered "
            "during the call before, whatever the number of customers; it waits while more "
            "than 4 webhooks are being read, verified or parsed (not those waiting for the "
            "outbox's disk sync, unless over 32 are), and the worker records, before the "
            "handlers, only what it "
            "did not (a backlog at startup, a failed call). On PostgreSQL a call is two round "
            "trips when it knows every identity (the events recorded before, the locks and "
            "the latest conversations together; the writes with the commit), one more to "
            "make new ones; its statements are prepared at their first use. Earlier designs, "
            "measured here: the worker recording each batch it took (p99 49-81 ms on "
            "PostgreSQL; the tail was the wait for the worker and full passes of the garbage "
            "collector, now left out of the loaded modules by `gc.freeze()` at startup); then "
            "the intake recording but waiting while more than 4 webhooks were in flight, "
            "those waiting for the disk sync too (p99 23-58 ms on PostgreSQL, 57.7 ms with "
            "499 new customers). The same recording, in three runs earlier on 2026-12-03 "
            "while the host took more CPU (up to 38% in a round), measured row medians up "
            "to 90.0 ms (rounds up to 127 ms). "
            "1 customer: every webhook from the linked number. "
            f"{MERGE_SENDERS} customers: every {LINKED_EVERY}th webhook from the linked "
            f"number, the others from {MERGE_SENDERS - 1} other numbers in turn, each of which "
            f"had one message recorded beforehand. {MERGE_SENDERS} customers, "
            f"{MERGE_SENDERS - 1} new: the same without that, so the first second or so also "
            "makes each new number's customer, identity and conversation. Merge latency: from "
            "the 2xx answer, as the client reads it, to the entry being visible in its "
            "customer's timeline (the linked customer's for the linked number's events, its "
            "own for the others'; every event is measured). "
            f"A poller in a process of its own reads, every {POLL_INTERVAL * 1000:g} ms, the "
            "entries added since its last look (`id >` the last one seen: only the new rows; "
            "an id below it not seen yet, as when concurrent transactions commit out of order "
            f"on PostgreSQL, is read again for {GAP_SECONDS:g} s, and an entry there at the end "
            "that it did not see come is counted apart) on a plain connection (on SQLite a "
            "read transaction, which takes no write lock), and notes when each entry first "
            "shows under its customer; both clocks are `time.monotonic()` (it leaves its "
            "imports out of its garbage collector's passes, which took 50-80 ms, since "
            "2026-12-03: they made entries look late). So a latency "
            "includes up to one poll interval; one committed before the client had read its "
            f"answer counts as 0. Every {SAMPLE_EVERY}th event (the linked number's), once "
            "seen, is also looked for with the public read, "
            "`History.timeline(<the email identity>)`, page by page: each must be found "
            "there, under the linked customer, as a WhatsApp entry (the run fails otherwise). "
            "Never visible: answered 2xx but not seen within "
            f"{SETTLE_SECONDS:g} s of the server having handled every event. Each row is "
            f"{MERGE_ROUNDS} rounds, the rounds of the six rows interleaved, each on a history, "
            "store and outbox of its own; counts are summed, p50, p99 and CPU are the median "
            "of the rounds'. CPU per event: the serve process's (acknowledging, handling, "
            "recording; the open-loop section above has it without `[history]`) and the "
            "PostgreSQL server's with its backends (the poller's reads included). CPU stolen, "
            "by each round's p99: the share of this virtual machine's CPU time its host took "
            "during the load (/proc/stat); when it is high, everything here waits (the load "
            "generator, the poller and PostgreSQL share the 2 cores with serve). Target: p99 "
            "< 50 ms on both backends at "
            f"{MERGE_RATE} events/s. The {len(merged)} rows took {took['merge']:.0f} s."
        ),
        "",
        *MERGE_HEADER,
        *merged,
        "",
        f"### Timeline read, {TIMELINE_MESSAGES:,} messages",
        "",
        *_paragraph(
            "One customer (a WhatsApp number linked to an email address) with "
            f"{TIMELINE_MESSAGES:,} inbound text messages, from kit webhooks parsed by the "
            "WhatsApp channel and recorded with `History.record_events` in batches of "
            f"{FILL_BATCH} (a transaction each; the fill rate is that path's), then its first "
            f"page (`History.timeline(customer_id, limit={PAGE})`) read {COLD_READS} + "
            f"{TIMELINE_READS} times per backend from this process, the backends taking turns "
            "(which goes first alternates). Each read is checked: 50 entries, the newest "
            f"message last. Median, p99 and max are of the last {TIMELINE_READS}; the first "
            f"{COLD_READS} are apart: a fresh PostgreSQL connection plans a statement anew for "
            "its first executions (PostgreSQL weighs a generic plan after 5 custom ones). "
            "PostgreSQL's tables are analyzed after the "
            "fill, as autovacuum does once a table grew by a tenth: before that, with no "
            "statistics, the planner reads all 10,000 rows and sorts them (p99 17.7 ms in a "
            'separate run, 2.2 ms analyzed). "Its query alone" is the database\'s part, '
            "the same read "
            "without turning the rows into entries (`ops.timeline` through "
            "`History.database.run`), timed right after each read. Target: < 5 ms. It took "
            f"{took['timeline']:.0f} s, the fills included."
        ),
        "",
        *TIMELINE_HEADER,
        *read,
        "",
        "### Recording cost on the acknowledgement rate",
        "",
        *_paragraph(
            "benchmarks/load.py's capacity run: two `serve` processes side by side (1 worker, "
            "SQLite store and outbox each, the handler does nothing), one without "
            "`[history]`, one with a SQLite `[history]`, loaded in interleaved rounds of "
            f"{COST_RATE:,} webhooks a second for {COST_SECONDS} s ({COST_ROUNDS} rounds each, "
            "the first server alternating), above the setup's capacity. Every event is from "
            "the same customer (the kit's number), as in load.py: the best case for the "
            "worker's per-contact batching (the merge rows above show many customers). "
            "Acks/s: answered 2xx over "
            "the load's time (first send to last answer). The intake records each event it "
            "answered in the history, in the background, in the same process (the worker, "
            "before calling the handler, those it did not): "
            "handled/s during the load counts the events handled while the load ran; the "
            "other, those of the round from its first send to its last event handled (a "
            "round waits for that). Serve CPU per event counts acknowledging and handling. "
            "Target: acks/s with `[history]` at least 0.90 of without. It took "
            f"{took['cost']:.0f} s."
        ),
        "",
        *COST_HEADER,
        *costs,
    ]


def _paragraph(text: str) -> list[str]:
    return textwrap.wrap(text, width=88, break_long_words=False, break_on_hyphens=False)


def main() -> None:
    """No argument: rewrite this section of docs/benchmarks.md; ``merge [RATE]
    [SECONDS]``, ``timeline [READS]`` or ``cost [RATE] [ROUND_SECONDS] [ROUNDS]``: print
    that table alone."""
    args = sys.argv[1:]
    parts = {
        "merge": (MERGE_HEADER, merge),
        "timeline": (TIMELINE_HEADER, timeline),
        "cost": (COST_HEADER, cost),
    }
    if args and args[0] in parts:
        header, run = parts[args[0]]
        print("\n".join([*header, *run(*map(int, args[1:]))]))
    elif args:
        raise SystemExit(f"usage: python -m benchmarks.history [{' | '.join(parts)}] [NUMBERS]")
    else:
        rewrite_section(HEADING, section())


if __name__ == "__main__":
    main()
