"""The conversation history: one timeline per customer across channels.

Give a :class:`History` to channels (``history=``) or to ``chatbridge serve`` (the
``[history]`` config table) and it records every event taken in and every send; read it
back per customer, per conversation, by text, or as metrics (:mod:`.metrics`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import TypeAdapter

from chatbridge.clock import Clock, SystemClock
from chatbridge.conversations import mirrors, ops
from chatbridge.conversations.database import Database
from chatbridge.conversations.linking import LinkPolicy
from chatbridge.conversations.metrics import Period, ReportRow, report
from chatbridge.conversations.mirrors import MirrorFailure
from chatbridge.conversations.model import (
    Conversation,
    ConversationState,
    Customer,
    Delivery,
    Entry,
    EntryKind,
    LinkSuggestion,
    Note,
    Page,
)
from chatbridge.conversations.ops import Op, Row, micros, moment
from chatbridge.errors import describe
from chatbridge.models import (
    DeliveryState,
    Direction,
    Event,
    Identity,
    Message,
    MessageReceived,
    ProviderErrorInfo,
)
from chatbridge.recorder import SendRecord, TagMirror

logger = logging.getLogger("chatbridge.conversations")


class History:
    """Customers, conversations and their timelines in ``database`` (see
    :meth:`sqlite` and :meth:`postgres`). ``link`` chooses what happens to two
    identities with the same phone number ("suggest", "auto" or "off"); a resolved
    conversation the customer writes to within ``reopen_within`` is reopened."""

    def __init__(
        self,
        database: Database,
        *,
        link: LinkPolicy = "suggest",
        reopen_within: timedelta | None = timedelta(days=7),
        clock: Clock | None = None,
    ) -> None:
        self.database = database
        self.settings = ops.Settings(database.dialect, link, reopen_within)
        self.clock: Clock = clock or SystemClock()
        #: Where customer tags are mirrored (:meth:`mirror_tags`).
        self.mirrors: list[TagMirror] = []

    @classmethod
    def sqlite(cls, path: str | Path = ":memory:", **options: Any) -> Self:
        """A history in one SQLite file (":memory:": for this process only)."""
        from chatbridge.conversations.sqlite import SQLiteDatabase

        return cls(SQLiteDatabase(path), **options)

    @classmethod
    def postgres(cls, url: str, *, max_connections: int = 10, **options: Any) -> Self:
        """A history in PostgreSQL (``pip install 'chatbridge[postgres]'``)."""
        from chatbridge.conversations.postgres import PostgresDatabase

        return cls(PostgresDatabase(url, max_connections=max_connections), **options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect now rather than at the first call (``chatbridge serve`` does at
        startup, so that its first events wait for no connection)."""
        await self.database.read(ops.nothing)

    async def aclose(self) -> None:
        await self.database.aclose()

    # -- recording (chatbridge.recorder.Recorder) -------------------------------------

    async def record_events(self, events: Sequence[Event]) -> None:
        """Record inbound ``events`` (each once, by channel and event id)."""
        now = self.clock.now()
        await self.database.run(lambda: ops.record_events(self.settings, events, now))

    async def record_send(self, send: SendRecord) -> None:
        """Record a send, or the outcome of one recorded pending before."""
        await self.database.run(lambda: ops.record_send(self.settings, send))

    # -- customers --------------------------------------------------------------------

    async def customer_id(self, who: str | Identity) -> str | None:
        """The id of the customer ``who`` (an id, or an identity) shows under."""
        if not isinstance(who, Identity):  # a merged customer's id: the one it went into
            return await self.database.read(lambda: ops.root_of(who))
        known = await self.database.read(lambda: ops.customer_of(who))
        return known[0] if known else None

    async def customer(self, who: str | Identity) -> Customer | None:
        """The customer ``who`` (an id, or one of their identities) shows under."""
        customer = await self.customer_id(who)
        if customer is None:
            return None
        found = await self.database.read(lambda: ops.customer_rows(customer))
        if found is None:
            return None
        customers, identities, tags = found
        fields: dict[str, Any] = {}
        for row in reversed(customers):  # the root's own values win
            fields.update(json.loads(row[3]))
        return Customer(
            id=customers[0][0],
            name=next((row[1] for row in customers if row[1]), None),
            language=next((row[2] for row in customers if row[2]), None),
            identities=[Identity(channel=c, address=a) for c, a in identities],
            tags=[row[0] for row in tags],
            fields=fields,
        )

    async def link(self, identity: Identity, other: Identity) -> Customer:
        """Make ``identity`` and ``other`` one customer: ``other``'s customer (with its
        timeline, conversations, tags and fields) is merged into ``identity``'s."""
        now = self.clock.now()

        def op() -> Op[str]:
            customer = yield from ops.link(self.settings, identity, other, now)
            yield from mirrors.mark([customer], now)
            return customer

        return await self._customer(await self.database.run(op))

    async def unlink(self, identity: Identity) -> Customer | None:
        """Split ``identity`` off its customer: back into the customer it came with
        when that one was merged in (its timeline with it), else into a new customer
        (a customer's only identity stays). Returns the customer it shows under now;
        None for an unknown identity."""
        now = self.clock.now()

        def op() -> Op[str | None]:
            before = yield from ops.customer_of(identity)
            customer = yield from ops.unlink(self.settings, identity, now)
            if before is not None and customer is not None:
                yield from mirrors.mark([before[0], customer], now)
            return customer

        customer = await self.database.run(op)
        return None if customer is None else await self._customer(customer)

    async def suggestions(self) -> list[LinkSuggestion]:
        """Identities that may be one person, not linked yet (``link`` accepts one)."""
        rows = await self.database.read(ops.suggestions)
        return [
            LinkSuggestion(
                identity=Identity(channel=row[0], address=row[1]),
                other=Identity(channel=row[2], address=row[3]),
                reason=row[4],
            )
            for row in rows
        ]

    async def confirmed(self, identity: Identity, other: Identity) -> None:
        """The customer of ``identity`` confirmed that ``other`` is theirs (answered a
        code sent there, say): linked now if the link policy is "auto", else suggested."""
        now = self.clock.now()
        if self.settings.link == "auto":
            await self.link(identity, other)
        else:
            await self.database.run(lambda: ops.suggest(identity, other, "confirmed", now))

    async def update_customer(
        self,
        customer: str,
        *,
        name: str | None = None,
        language: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        """Set a customer's name, preferred language or custom fields (merged into the
        ones it has; a field set to None is removed). LookupError: no such customer."""
        await self.database.run(
            lambda: ops.update_customer(self.settings, customer, name, language, fields)
        )

    async def tag(self, owner: str, *tags: str) -> None:
        """Tag a customer or a conversation (by id). LookupError: no such one."""
        await self._tag(owner, tags, on=True)

    async def untag(self, owner: str, *tags: str) -> None:
        await self._tag(owner, tags, on=False)

    async def _tag(self, owner: str, tags: Sequence[str], on: bool) -> None:
        now = self.clock.now()

        def op() -> Op[None]:
            changed = yield from ops.tag(owner, tags, on=on)
            if changed and owner.startswith("cus_"):  # marked whether this process mirrors
                yield from mirrors.mark([owner], now)

        await self.database.run(op)

    # -- tag mirrors (chatbridge.conversations.mirrors) -------------------------------

    def mirror_tags(self, mirror: TagMirror) -> None:
        """Mirror the customer tags ``mirror.tags`` onto its channel's own tags (in place
        of this history's mirror for that channel, if any): :meth:`sync_tags` runs the
        syncs. Every process's changes are marked, whether it mirrors or not."""
        self.mirrors = [m for m in self.mirrors if m.channel != mirror.channel] + [mirror]

    async def sync_tags(self, limit: int = 20) -> int:
        """Mirror the tags of up to ``limit`` customers whose sync is due, one after the
        other (a failure is tried again later); returns how many went through.
        ``chatbridge serve`` runs this every poll interval when ``[automation.mirror_tags]``
        is configured."""
        synced = 0
        for _ in range(limit if self.mirrors else 0):
            taken = await self.database.run(partial(mirrors.take, self.clock.now()))
            if taken is None:
                break
            customer, mark, attempt = taken
            try:
                await self._mirror(customer)
            except Exception as exc:  # whatever the provider or the network did
                logger.warning("tags of %s not mirrored: %s", customer, describe(exc))
                await self.database.run(
                    partial(
                        mirrors.failed, customer, mark, attempt, describe(exc), self.clock.now()
                    )
                )
            else:
                await self.database.run(partial(mirrors.done, customer, mark, self.clock.now()))
                synced += 1
        return synced

    async def _mirror(self, customer_id: str) -> None:
        """Sync every identity of the customer on a mirror's channel; the first failure
        is raised after all were tried."""
        customer = await self.customer(customer_id)
        if customer is None:
            return
        failures: list[Exception] = []
        for mirror in self.mirrors:
            for identity in customer.identities:
                if identity.channel == mirror.channel:
                    try:
                        await mirror.mirror(
                            identity.address, frozenset(customer.tags) & mirror.tags
                        )
                    except Exception as exc:
                        failures.append(exc)
        if failures:
            raise failures[0]

    async def mirror_again(self, *customers: str) -> None:
        """Sync ``customers`` (ids) at the next :meth:`sync_tags`: ones set aside after
        failing, or tagged before their mirror was configured."""
        await self.database.run(partial(mirrors.mark, customers, self.clock.now()))

    async def tag_mirror_failures(self, limit: int = 100) -> list[MirrorFailure]:
        """Customers whose last sync failed: waiting to be tried again, or set aside."""
        return await self.database.read(partial(mirrors.failures, limit))

    async def _customer(self, customer: str) -> Customer:
        found = await self.customer(customer)
        assert found is not None
        return found

    # -- conversations ----------------------------------------------------------------

    async def conversation(self, conversation: str) -> Conversation | None:
        found = await self._conversations(["c.id = ?"], [conversation], 1)
        return found[0] if found else None

    async def conversations(
        self,
        *,
        state: ConversationState | None = None,
        tag: str | None = None,
        assignee: str | None = None,
        customer: str | Identity | None = None,
        limit: int = 50,
    ) -> list[Conversation]:
        """Conversations, latest activity first, by state, tag, assignee or customer."""
        _check_limit(limit)
        conditions: list[str] = ["1 = 1"]
        params: list[Any] = []
        if state is not None:
            conditions.append("c.state = ?")
            params.append(state.value)
        if assignee is not None:
            conditions.append("c.assignee = ?")
            params.append(assignee)
        if tag is not None:
            conditions.append(
                "c.id IN (SELECT conversation_id FROM conversation_tags WHERE tag = ?)"
            )
            params.append(tag)
        if customer is not None:
            conditions.append("c.customer_id = ?")
            params.append(await self.customer_id(customer))
        return await self._conversations(conditions, params, limit)

    async def _conversations(
        self, conditions: list[str], params: list[Any], limit: int
    ) -> list[Conversation]:
        rows, tags = await self.database.read(
            lambda: ops.conversation_rows(" AND ".join(conditions), tuple(params), limit)
        )
        return [_conversation(row, tags[row[0]]) for row in rows]

    async def set_state(self, conversation: str, state: ConversationState) -> None:
        """Move a conversation to ``state`` (RESOLVED records when)."""
        state = ConversationState(state)
        resolved = micros(self.clock.now()) if state is ConversationState.RESOLVED else None
        await self._set(conversation, state=state.value, resolved_at=resolved)

    async def resolve(self, conversation: str) -> None:
        await self.set_state(conversation, ConversationState.RESOLVED)

    async def assign(self, conversation: str, assignee: str | None) -> None:
        await self._set(conversation, assignee=assignee)

    async def set_priority(self, conversation: str, priority: int) -> None:
        await self._set(conversation, priority=int(priority))

    async def _set(self, conversation: str, **changes: Any) -> None:
        if not await self.database.run(lambda: ops.set_conversation(conversation, changes)):
            raise LookupError(f"no conversation {conversation!r}")

    # -- timeline ---------------------------------------------------------------------

    async def note(self, owner: str, note: Note | str) -> int:
        """Add an internal note to a conversation or a customer (by id); its entry id."""
        note = Note(text=note) if isinstance(note, str) else note
        now = self.clock.now()
        return await self.database.run(
            lambda: ops.add_note(self.settings, owner, note.text, note.author, now)
        )

    async def timeline(
        self, who: str | Identity, *, limit: int = 50, before: str | None = None
    ) -> Page:
        """The latest ``limit`` entries of a customer's timeline (all channels, oldest
        first), before the cursor ``before`` of a later page."""
        _check_limit(limit)
        cursor = _cursor(before) if before else None
        rows = await self.database.read(lambda: ops.timeline(who, cursor, limit))
        entries = [_entry(row) for row in reversed(rows)]
        earlier = f"{micros(entries[0].at)}.{entries[0].id}" if len(rows) == limit else None
        return Page(entries=entries, before=earlier)

    async def entry(self, key: str) -> Entry | None:
        """The entry recorded under ``key``: ``ops.inbound_key(event)`` for an event taken
        in, ``ops.send_key(channel, key)`` for a send under its history key."""
        rows = await self.database.read(lambda: ops.entry_by_key(key))
        return _entry(rows[0]) if rows else None

    async def search(
        self, words: str, *, customer: str | Identity | None = None, limit: int = 50
    ) -> list[Entry]:
        """Entries whose text has all of ``words`` (SQLite FTS5 / PostgreSQL full-text
        search), the ones recorded last first."""
        _check_limit(limit)
        if not words.split():
            return []
        owner = await self.customer_id(customer) if customer is not None else None
        rows = await self.database.read(lambda: ops.search(self.settings, words, owner, limit))
        return [_entry(row) for row in rows]

    # -- metrics ----------------------------------------------------------------------

    async def report(
        self, since: datetime, until: datetime, *, period: Period = "day", timezone: str = "UTC"
    ) -> list[ReportRow]:
        """Metrics per period and channel of the conversations opened and the messages
        sent between ``since`` and ``until`` (see :mod:`.metrics`)."""
        conversations, sends = await self.database.read(lambda: ops.report_rows(since, until))
        return report(conversations, sends, period, timezone)


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"a limit is at least 1, not {limit}")


def _cursor(value: str) -> tuple[int, int]:
    at, _, entry = value.partition(".")
    if not (at.isdigit() and entry.isdigit() and max(int(at), int(entry)) < 2**63):
        raise ValueError(f"{value!r} is not a timeline cursor")
    return int(at), int(entry)


def _conversation(row: Row, tags: list[str]) -> Conversation:
    (id_, customer, state, channel, opened, updated, resolved, first, by, assignee, prio) = row
    return Conversation(
        id=id_,
        customer_id=customer,
        state=state,
        channel=channel,
        opened_at=moment(opened),
        updated_at=moment(updated),
        resolved_at=moment(resolved),
        first_response_at=moment(first),
        opened_by_customer=bool(by),
        assignee=assignee,
        priority=prio,
        tags=tags,
    )


def _entry(row: Row) -> Entry:
    (id_, kind, at, customer, conversation, channel, address, direction, text, body) = row[:10]
    outcome, reason, message_id, author = row[10:14]
    identity = Identity(channel=channel, address=address) if channel else None
    entry = Entry(
        id=id_,
        kind=kind,
        at=moment(at),
        customer_id=customer,
        conversation_id=conversation,
        identity=identity,
        direction=direction,
        text=text,
        outcome=outcome,
        reason=reason,
        message_id=message_id,
        delivery=_delivery(row[14:]),
    )
    if kind == EntryKind.NOTE:
        entry.note = Note(text=text or "", author=author)
    elif kind == EntryKind.MESSAGE and direction == Direction.OUTBOUND:
        entry.message = Message.model_validate_json(body)
    elif kind == EntryKind.MESSAGE:
        entry.message = MessageReceived.model_validate_json(body).message
    else:
        entry.event = _EVENT.validate_json(body)
    return entry


_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_FURTHEST = (DeliveryState.PLAYED, DeliveryState.READ, DeliveryState.DELIVERED)


def _delivery(row: Row) -> Delivery | None:
    sent, delivered, read, played, failed, errors = row
    times = dict(zip(_FURTHEST, (played, read, delivered), strict=True))
    state = next((state for state, at in times.items() if at is not None), None)
    if state is None:
        state = DeliveryState.FAILED if failed else DeliveryState.SENT if sent else None
    if state is None:
        return None
    return Delivery(
        state=state,
        sent_at=moment(sent),
        delivered_at=moment(delivered),
        read_at=moment(read),
        played_at=moment(played),
        failed_at=moment(failed),
        errors=[ProviderErrorInfo.model_validate(e) for e in json.loads(errors or "[]")],
    )
