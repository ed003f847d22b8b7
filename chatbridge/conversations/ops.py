"""The history's operations, written once for every backend.

Each operation is a generator that yields queries (``?`` placeholders) and is sent back
their rows; a driver (:mod:`.sqlite`, :mod:`.postgres`) runs one whole operation in one
transaction of its database. So the logic (who a customer is, which conversation a
message joins, how statuses combine) is stated once, and a driver is only I/O.

Customers form trees: linking merges one customer into another (``merged_into``); every
identity, conversation and entry keeps its ``home_id`` (the customer it came with) and
its ``customer_id`` (the root it shows under now), so a timeline is one index range and
unlinking moves exactly what came with the customer back.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from chatbridge.conversations.linking import LinkPolicy, phone_of
from chatbridge.conversations.model import ConversationState, EntryKind
from chatbridge.conversations.schema import Dialect
from chatbridge.errors import HistoryError
from chatbridge.models import (
    DeliveryState,
    Direction,
    Event,
    Identity,
    Message,
    MessageReceived,
    StatusUpdate,
)
from chatbridge.recorder import SendOutcome, SendRecord
from chatbridge.redaction import redact

T = TypeVar("T")
Row = tuple[Any, ...]
Query = tuple[str, tuple[Any, ...]]
Op = Generator[Query, list[Row], T]
"""An operation: yields queries, is sent their rows, returns its result."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


#: The text of a query that stands for the queries in its parameters (:func:`together`).
TOGETHER = "-- together"


def together(*queries: Query) -> Op[list[list[Row]]]:
    """Run ``queries``, none of which needs the rows of another, at once where the
    driver can (PostgreSQL: in one round trip); their rows, in order."""
    if not queries:
        return []
    results = yield (TOGETHER, queries)
    return [list(rows) for rows in results]


#: The text of a query that stands for an operation's last queries (:func:`finish`).
LAST = "-- last"


def finish(*queries: Query) -> Op[None]:
    """Run ``queries`` as the operation's last ones (it returns once they ran), none of
    which needs the rows of another, their rows unread: a driver may send them with the
    commit (PostgreSQL: the writes and COMMIT in one round trip)."""
    if queries:
        yield (LAST, queries)


def comparable(text: str) -> str:
    """``text`` as either backend gives it back, to match rows read back with what was
    written: PostgreSQL cannot store NUL and keeps U+FFFD instead."""
    return text.replace("\x00", "\ufffd")


def nothing() -> Op[None]:
    """An operation that only asks the database to answer."""
    yield ("SELECT 1", ())


def micros(at: datetime) -> int:
    """``at`` as integer microseconds since the epoch (how the history stores times)."""
    return (at - _EPOCH) // _MICROSECOND


def moment(value: int | None) -> datetime | None:
    """The datetime of a stored time."""
    return None if value is None else _EPOCH + value * _MICROSECOND


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class Settings:
    """The choices a history's operations depend on."""

    dialect: Dialect
    #: "auto": link identities with the same phone number at once; "suggest": list
    #: them as :class:`~chatbridge.conversations.LinkSuggestion`; "off".
    link: LinkPolicy = "suggest"
    #: A resolved conversation the customer writes to again within this is reopened
    #: (None: always); later, a new conversation starts.
    reopen_within: timedelta | None = timedelta(days=7)


# -- customers and identities ---------------------------------------------------------


#: The customers merged into ? (directly or not), itself included, as ``subtree (id)``.
_SUBTREE = (
    "WITH RECURSIVE subtree (id) AS (SELECT id FROM customers WHERE id = ? "
    "UNION SELECT c.id FROM customers c JOIN subtree s ON c.merged_into = s.id)"
)


def customer_of(identity: Identity) -> Op[tuple[str, str] | None]:
    """(customer_id, home_id) of ``identity``, if the history knows it."""
    rows = yield (
        "SELECT customer_id, home_id FROM identities WHERE channel = ? AND address = ?",
        (identity.channel, identity.address),
    )
    return (rows[0][0], rows[0][1]) if rows else None


def root_of(customer: str) -> Op[str]:
    """The customer ``customer`` shows under now: the root of the merges it went into."""
    seen = set()
    while customer not in seen:
        seen.add(customer)
        rows = yield ("SELECT merged_into FROM customers WHERE id = ?", (customer,))
        if not rows or rows[0][0] is None:
            break
        customer = rows[0][0]
    return customer


def identify(
    settings: Settings, identity: Identity, name: str | None, at: datetime
) -> Op[tuple[str, str]]:
    """(customer_id, home_id) of ``identity``, making it a new customer the first time
    (and looking for a customer with the same phone number, per ``settings.link``)."""
    known = yield from customer_of(identity)
    if known is not None:
        return known
    customer = new_id("cus")
    phone = phone_of(identity)
    if phone is not None:  # two new identities, one number: the second sees the first
        yield from together(*_phone_locks(settings, [phone]))
    yield (
        "INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)",
        (customer, name, micros(at)),
    )
    rows = yield (
        "INSERT INTO identities (channel, address, customer_id, home_id, phone, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel, address) DO NOTHING RETURNING 1",
        (identity.channel, identity.address, customer, customer, phone, micros(at)),
    )
    if not rows:  # another transaction made it first
        yield ("DELETE FROM customers WHERE id = ?", (customer,))
        known = yield from customer_of(identity)
        assert known is not None
        return known
    if (
        phone is not None
        and settings.link != "off"
        and (yield from _phone_candidates(settings, identity, phone, at))
    ):
        return (yield from customer_of(identity)) or (customer, customer)  # merged just now
    return customer, customer


def _phone_locks(settings: Settings, phones: Sequence[str]) -> list[Query]:
    """The statement that holds ``phones`` (in their order) until the commit, if the
    backend needs it: a transaction making an identity with one of them waits until
    this one has made its own."""
    if not settings.dialect.lock_names or not phones:
        return []
    rows, params = _rows(settings, "text", [(f"phone:{phone}",) for phone in phones])
    return [(settings.dialect.lock_names.format(rows=rows), params)]


def _phone_candidates(settings: Settings, identity: Identity, phone: str, at: datetime) -> Op[bool]:
    """Suggest, or link (policy "auto"), the identities with ``phone``; whether
    ``identity`` was linked (its customer merged into another)."""
    rows = yield (
        "SELECT channel, address FROM identities WHERE phone = ? AND NOT "
        "(channel = ? AND address = ?) ORDER BY created_at",
        (phone, identity.channel, identity.address),
    )
    for channel, address in rows:
        other = Identity(channel=channel, address=address)
        if settings.link == "auto":
            yield from link(settings, other, identity, at)
        else:
            yield from suggest(identity, other, "same phone number", at)
    return settings.link == "auto" and bool(rows)


def suggest(identity: Identity, other: Identity, reason: str, at: datetime) -> Op[None]:
    yield (
        "INSERT INTO link_suggestions (channel, address, other_channel, other_address, "
        "reason, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (identity.channel, identity.address, other.channel, other.address, reason, micros(at)),
    )


def suggestions() -> Op[list[Row]]:
    return (
        yield (
            "SELECT channel, address, other_channel, other_address, reason "
            "FROM link_suggestions ORDER BY created_at",
            (),
        )
    )


def _forget_suggestions(identity: Identity, other: Identity | None = None) -> Op[None]:
    """Forget the suggestions between ``identity`` and ``other`` (None: all of
    ``identity``'s)."""
    one, two = "(channel = ? AND address = ?)", "(other_channel = ? AND other_address = ?)"
    mine = (identity.channel, identity.address)
    if other is None:
        yield (f"DELETE FROM link_suggestions WHERE {one} OR {two}", mine * 2)
        return
    theirs = (other.channel, other.address)
    yield (
        f"DELETE FROM link_suggestions WHERE ({one} AND {two}) OR ({one} AND {two})",
        (*mine, *theirs, *theirs, *mine),
    )


def link(settings: Settings, identity: Identity, other: Identity, at: datetime) -> Op[str]:
    """Merge the customer of ``other`` into the customer of ``identity`` (both made if
    new); returns the customer both show under."""
    yield from _forget_suggestions(identity, other)
    while True:  # until both are still customers no other was merged into, once locked
        keep, _ = yield from identify(settings, identity, None, at)
        gone, _ = yield from identify(settings, other, None, at)
        if keep == gone:
            return keep
        held = True
        for customer in sorted((keep, gone)):  # one lock order: no deadlock
            held = (yield from _lock(settings, customer)) and held
        moved = (yield from customer_of(identity)), (yield from customer_of(other))
        if held and [known and known[0] for known in moved] == [keep, gone]:
            break
    yield ("UPDATE customers SET merged_into = ? WHERE id = ?", (keep, gone))
    for table in ("identities", "conversations", "entries"):
        yield (f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?", (keep, gone))
    return keep


def unlink(settings: Settings, identity: Identity, at: datetime) -> Op[str | None]:
    """Split ``identity`` from the customer it shows under: with everything of its home
    customer when that one was merged in (undoing the merge), else alone into a new
    customer (unless it is its customer's only identity). Returns the customer it shows
    under now (None: unknown identity)."""
    while True:  # until, with root and home locked, nothing moved since the read
        known = yield from customer_of(identity)
        if known is None:
            return None
        root, home = known
        still_root = True
        for customer in sorted({root, home}):  # one lock order: no deadlock
            is_root = yield from _lock(settings, customer)
            still_root = is_root if customer == root else still_root
        if still_root and (yield from customer_of(identity)) == known:
            break
    yield from _forget_suggestions(identity)
    if home != root:  # its customer was merged into root: take that subtree back out
        subtree = [row[0] for row in (yield (f"{_SUBTREE} SELECT id FROM subtree", (home,)))]
        yield ("UPDATE customers SET merged_into = NULL WHERE id = ?", (home,))
        for table in ("identities", "conversations", "entries"):
            yield (
                f"UPDATE {table} SET customer_id = ? WHERE home_id IN ({marks(subtree)})",
                (home, *subtree),
            )
        return home
    others = yield ("SELECT 1 FROM identities WHERE customer_id = ? LIMIT 2", (root,))
    if len(others) < 2:  # its customer's only identity: nothing to split it from
        return root
    alone = new_id("cus")
    yield ("INSERT INTO customers (id, created_at) VALUES (?, ?)", (alone, micros(at)))
    where = "channel = ? AND address = ?"
    for table in ("identities", "entries"):
        yield (
            f"UPDATE {table} SET customer_id = ?, home_id = ? WHERE {where}",
            (alone, alone, identity.channel, identity.address),
        )
    return alone


def customer_rows(root: str) -> Op[tuple[list[Row], list[Row], list[Row]] | None]:
    """The rows of the view of ``root`` (a customer no other was merged into): the
    customers merged into it (itself first), its identities, their tags."""
    customers = yield (
        f"{_SUBTREE} SELECT c.id, c.name, c.language, c.fields FROM customers c "
        "JOIN subtree s ON s.id = c.id ORDER BY c.created_at, c.id",
        (root,),
    )
    if not customers:
        return None
    customers.sort(key=lambda row: row[0] != root)
    identities = yield (
        "SELECT channel, address FROM identities WHERE customer_id = ? "
        "ORDER BY created_at, channel, address",
        (root,),
    )
    tags = yield (
        f"{_SUBTREE} SELECT DISTINCT tag FROM customer_tags t JOIN subtree s "
        "ON s.id = t.customer_id ORDER BY tag",
        (root,),
    )
    return customers, identities, tags


def update_customer(
    settings: Settings,
    customer: str,
    name: str | None,
    language: str | None,
    fields: dict[str, Any] | None,
) -> Op[None]:
    """Set what is given; ``fields`` are merged into the customer's (None removes one)."""
    rows = yield (
        f"SELECT fields FROM customers WHERE id = ?{settings.dialect.for_update}",
        (customer,),
    )
    if not rows:
        raise LookupError(f"no customer {customer!r}")
    current = json.loads(rows[0][0])
    current.update(fields or {})
    current = {key: value for key, value in current.items() if value is not None}
    yield (
        "UPDATE customers SET name = COALESCE(?, name), language = COALESCE(?, language), "
        "fields = ? WHERE id = ?",
        (name, language, json.dumps(current), customer),
    )


def tag(owner: str, tags: Sequence[str], on: bool) -> Op[list[str]]:
    """Tag (``on``) or untag a customer (``cus_...``) or a conversation (``con_...``);
    the tags that changed (put on, or taken off)."""
    kind = {"cus_": "customer", "con_": "conversation"}.get(owner[:4])
    found = kind and (yield (f"SELECT 1 FROM {kind}s WHERE id = ?", (owner,)))
    if not found:
        raise LookupError(f"no customer (cus_...) or conversation (con_...) {owner!r}")
    table, column = f"{kind}_tags", f"{kind}_id"
    changed = []
    for name in tags:
        if on:
            rows = yield (
                f"INSERT INTO {table} ({column}, tag) VALUES (?, ?) ON CONFLICT DO NOTHING "
                "RETURNING tag",
                (owner, name),
            )
        else:
            rows = yield (
                f"DELETE FROM {table} WHERE {column} = ? AND tag = ? RETURNING tag",
                (owner, name),
            )
        changed += [row[0] for row in rows]
    return changed


# -- conversations --------------------------------------------------------------------

_CONVERSATION = (
    "SELECT id, customer_id, state, channel, opened_at, updated_at, resolved_at, "
    "first_response_at, opened_by_customer, assignee, priority FROM conversations"
)


#: The columns a conversation is opened with (the others take their defaults).
_CONVERSATION_FIELDS = (
    "id, customer_id, home_id, state, opened_on, opened_at, channel, updated_at, opened_by_customer"
)
_CONVERSATION_TYPES = "text text text text text bigint text bigint integer"


def _conversation_row(
    conversation: str,
    customer: str,
    opened: tuple[int, str],
    latest: tuple[int, str],
    *,
    by_customer: bool,
    state: ConversationState = ConversationState.OPEN,
) -> tuple[Any, ...]:
    """The values of :data:`_CONVERSATION_FIELDS`: opened at ``opened`` (at, channel),
    its latest message at ``latest``."""
    by = int(by_customer)
    return (conversation, customer, customer, state.value, *opened[::-1], *latest[::-1], by)


def _conversations_insert(settings: Settings, rows: Sequence[tuple[Any, ...]]) -> Query:
    values, params = _rows(settings, _CONVERSATION_TYPES, rows)
    return f"INSERT INTO conversations ({_CONVERSATION_FIELDS}) {values}", params


def _open_conversation(
    settings: Settings,
    customer: str,
    channel: str,
    at: datetime,
    *,
    by_customer: bool,
    state: ConversationState,
) -> Op[str]:
    conversation = new_id("con")
    opened = (micros(at), channel)
    row = _conversation_row(
        conversation, customer, opened, opened, by_customer=by_customer, state=state
    )
    yield _conversations_insert(settings, [row])
    return conversation


def _lock(settings: Settings, customer: str) -> Op[bool]:
    """Hold ``customer`` until the commit (two workers recording messages of one
    customer then choose or open its conversation one after the other, and a merge
    waits for them); whether it is still a customer no other was merged into."""
    rows = yield (
        f"SELECT merged_into FROM customers WHERE id = ?{settings.dialect.for_update}",
        (customer,),
    )
    return bool(rows) and rows[0][0] is None


def _held(
    settings: Settings, identity: Identity, name: str | None, at: datetime
) -> Op[tuple[str, str]]:
    """:func:`identify`, with the identity and its customer locked until the commit, in
    one statement: PostgreSQL reads the rows again when a merge or an unlink changed
    them before the lock was granted (SQLite runs one writer at a time)."""
    for _ in range(3):
        rows = yield (
            "SELECT i.customer_id, i.home_id FROM identities i JOIN customers c "
            "ON c.id = i.customer_id WHERE i.channel = ? AND i.address = ? "
            f"AND c.merged_into IS NULL{settings.dialect.for_update}",
            (identity.channel, identity.address),
        )
        if rows:
            return rows[0][0], rows[0][1]
        yield from identify(settings, identity, name, at)  # a new identity: made now
    raise HistoryError(f"the customer of {identity} was merged into a customer that was not")


def _current(customer: str) -> Op[str | None]:
    """The customer's latest conversation that is not resolved."""
    rows = yield (
        "SELECT id FROM conversations WHERE customer_id = ? AND state <> ? "
        "ORDER BY updated_at DESC LIMIT 1",
        (customer, ConversationState.RESOLVED.value),
    )
    return rows[0][0] if rows else None


def _inbound_conversation(
    settings: Settings, customer: str, message: Message, at: datetime
) -> Op[str]:
    """The conversation a customer's message joins: its email thread's, else the latest
    one (reopened when resolved within ``reopen_within``), else a new one. The caller
    holds the customer's lock (:func:`_held`)."""
    rows: list[Row] = []
    if message.thread:
        rows = yield (
            "SELECT c.id, c.state, c.resolved_at FROM threads t JOIN conversations c "
            "ON c.id = t.conversation_id WHERE t.channel = ? AND t.thread = ? "
            "AND c.customer_id = ?",
            (message.channel, message.thread, customer),
        )
    if not rows:
        rows = yield (
            "SELECT id, state, resolved_at FROM conversations WHERE customer_id = ? "
            "ORDER BY updated_at DESC LIMIT 1",
            (customer,),
        )
        if (
            rows
            and rows[0][1] == ConversationState.RESOLVED
            and not _reopens(settings, rows[0][2], at)
        ):
            rows = []
    if not rows:
        conversation = yield from _open_conversation(
            settings, customer, message.channel, at, by_customer=True, state=ConversationState.OPEN
        )
    else:
        conversation = rows[0][0]
        yield (
            f"UPDATE conversations SET state = ?, resolved_at = NULL, {_TOUCHED_BY} WHERE id = ?",
            (ConversationState.OPEN.value, *_touched(message.channel, at), conversation),
        )
    if message.thread:
        yield from _thread(message.channel, message.thread, conversation)
    return conversation


def _reopens(settings: Settings, resolved_at: int | None, at: datetime) -> bool:
    if settings.reopen_within is None or resolved_at is None:
        return True
    return micros(at) - resolved_at <= settings.reopen_within // _MICROSECOND


#: SET clauses: the conversation's latest message came on {channel} at {at} (unless a
#: later one did).
_TOUCHED = (
    "channel = CASE WHEN updated_at <= {at} THEN {channel} ELSE channel END, "
    "updated_at = CASE WHEN updated_at <= {at} THEN {at} ELSE updated_at END"
)
_TOUCHED_BY = _TOUCHED.format(at="?", channel="?")


def _touched(channel: str, at: datetime) -> tuple[Any, ...]:
    return (micros(at), channel, micros(at), micros(at))


def _touch(conversation: str, channel: str, at: datetime) -> Op[None]:
    """The conversation's latest message came on ``channel`` at ``at``."""
    yield (
        f"UPDATE conversations SET {_TOUCHED_BY} WHERE id = ?",
        (*_touched(channel, at), conversation),
    )


def _thread(channel: str, thread: str, conversation: str) -> Op[None]:
    yield (
        "INSERT INTO threads (channel, thread, conversation_id) VALUES (?, ?, ?) "
        "ON CONFLICT (channel, thread) DO NOTHING",
        (channel, thread, conversation),
    )


#: What of a conversation is set from outside (History.set_state, assign, set_priority).
_SETTABLE = frozenset({"state", "resolved_at", "assignee", "priority"})


def set_conversation(conversation: str, changes: dict[str, Any]) -> Op[bool]:
    """Set ``changes`` (columns of :data:`_SETTABLE`) in one update; whether the
    conversation exists."""
    assert changes.keys() <= _SETTABLE
    sets = ", ".join(f"{column} = ?" for column in changes)
    rows = yield (
        f"UPDATE conversations SET {sets} WHERE id = ? RETURNING id",
        (*changes.values(), conversation),
    )
    return bool(rows)


def conversation_rows(
    where: str, params: tuple[Any, ...], limit: int
) -> Op[tuple[list[Row], dict[str, list[str]]]]:
    rows = yield (
        f"{_CONVERSATION} c WHERE {where} ORDER BY updated_at DESC, id DESC LIMIT ?",
        (*params, limit),
    )
    tags: dict[str, list[str]] = {row[0]: [] for row in rows}
    if rows:
        found = yield (
            f"SELECT conversation_id, tag FROM conversation_tags "
            f"WHERE conversation_id IN ({marks(rows)}) ORDER BY tag",
            tuple(tags),
        )
        for conversation, name in found:
            tags[conversation].append(name)
    return rows, tags


# -- entries --------------------------------------------------------------------------


#: The columns an entry is inserted with (those not given are NULL), and their types.
_ENTRY_FIELDS = (
    "key", "kind", "at", "customer_id", "home_id", "conversation_id", "channel", "address",
    "direction", "text", "body", "outcome", "reason", "message_id",
)  # fmt: skip
_ENTRY_TYPES = "text text bigint " + "text " * 11


def _entry(
    key: str,
    kind: EntryKind,
    at: datetime,
    customer: tuple[str, str],
    conversation: str | None,
    identity: Identity,
    **columns: Any,
) -> tuple[Any, ...]:
    """The values of an entry's :data:`_ENTRY_FIELDS`."""
    values = {
        "key": key,
        "kind": kind.value,
        "at": micros(at),
        "customer_id": customer[0],
        "home_id": customer[1],
        "conversation_id": conversation,
        "channel": identity.channel,
        "address": identity.address,
        **columns,
    }
    return tuple(values.get(field) for field in _ENTRY_FIELDS)


def _entries_insert(settings: Settings, entries: Sequence[tuple[Any, ...]]) -> Query:
    """Insert ``entries`` in one statement, but those whose key is recorded already."""
    values, params = _rows(settings, _ENTRY_TYPES, entries)
    return (
        f"INSERT INTO entries ({', '.join(_ENTRY_FIELDS)}) {values} ON CONFLICT (key) DO NOTHING",
        params,
    )


def _message_text(message: Message) -> str | None:
    parts = [message.subject, message.stripped_text or message.text]
    parts += [media.caption for media in message.media]
    if message.template:
        parts.append(message.template.name)
    if message.interactive:
        parts.append(message.interactive.body)
    if message.interactive_reply:
        parts.append(message.interactive_reply.title)
    return "\n".join(part for part in parts if part) or None


def record_events(settings: Settings, events: Sequence[Event], now: datetime) -> Op[None]:
    """Record inbound ``events``: messages join a conversation (opening or reopening
    one), statuses update their message's delivery, other events are kept in the
    customer's timeline. Each is recorded once per channel and event id.

    A call costs a few round trips whatever the number of its events and contacts
    (queries sent :func:`together`): the statuses, the events recorded before, the
    contacts' identities and customers locked (in one order: two calls never deadlock
    over them) and their latest conversations; the new identities made (:func:`_make`);
    every conversation chosen (:func:`_record_alone`) and written with the entries. A
    contact whose conversation depends on what another contact of the call writes (two
    identities of one customer, an email thread, a phone number another identity has;
    with link "auto", every contact of a call that makes an identity) costs a few
    statements of its own (:func:`_record_contact`)."""
    statuses = [_status_query(e) for e in events if isinstance(e, StatusUpdate)]
    keyed = {  # an event without contact is nobody's: not a customer's history
        inbound_key(e): e
        for e in events
        if not isinstance(e, StatusUpdate) and e.contact is not None
    }
    everyone = {event.contact for event in keyed.values() if event.contact is not None}
    order = sorted(everyone, key=lambda identity: (identity.channel, identity.address))
    seen = [_where_in(settings, "SELECT key FROM entries WHERE key", keys)
            for keys in _chunks(list(keyed))]  # fmt: skip
    found = yield from together(*statuses, *seen, *_hold(settings, order))
    found = found[len(statuses) :]
    asked = {comparable(key): key for key in keyed}
    for rows in found[: len(seen)]:
        for (key,) in rows:
            keyed.pop(asked[comparable(key)], None)
    held, latest = _held_rows(found[len(seen) :], order)
    contacts: dict[Identity, dict[str, Event]] = {}
    for key, event in keyed.items():
        assert event.contact is not None
        contacts.setdefault(event.contact, {})[key] = event
    order = [contact for contact in order if contact in contacts]
    made = yield from _make(settings, [c for c in order if c not in held], contacts, now)
    held.update(made)
    shared = Counter(held[contact][0] for contact in order if contact in held)
    alone = [
        contact
        for contact in order
        if contact in held
        and shared[held[contact][0]] == 1
        and not any(_thread_of(event) for event in contacts[contact].values())
    ]
    if settings.link == "auto" and any(contact not in held for contact in order):
        alone = []  # a new identity may merge customers: each reads what the one before did
    entries: list[tuple[Any, ...]] = []
    for contact in order:
        if contact not in alone:
            entries += yield from _record_contact(settings, contact, contacts[contact], now)
    yield from _record_alone(settings, alone, held, latest, contacts, now, entries)


#: Rows (or keys) per statement: well under the bound parameters SQLite and PostgreSQL
#: take (32,766 and 65,535) at an entry's 14 columns.
_CHUNK = 1000


def _chunks(items: list[T]) -> list[list[T]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]


def marks(items: Sequence[object]) -> str:
    """One ``?`` placeholder per item, for ``IN (...)``."""
    return ", ".join("?" * len(items))


def _rows(settings: Settings, types: str, rows: Sequence[tuple[Any, ...]]) -> Query:
    """A query of ``rows`` (columns ``column1``... of the SQL ``types``) and its
    parameters, the backend's way (:attr:`Dialect.rows`)."""
    return settings.dialect.rows(rows, types.split())


def _where_in(settings: Settings, query: str, values: Sequence[str]) -> Query:
    """``query`` (ending in a text column) ``IN`` the ``values``."""
    rows, params = _rows(settings, "text", [(value,) for value in values])
    return f"{query} IN ({rows})", params


def _thread_of(event: Event) -> str | None:
    return event.message.thread if isinstance(event, MessageReceived) else None


def _hold(settings: Settings, contacts: list[Identity]) -> list[Query]:
    """Two queries per chunk of ``contacts`` the history may know: (channel, address,
    customer_id, home_id) of each, the identity and its customer locked until the
    commit, in one order (as :func:`_held`, which a contact not found takes: new, or
    its customer merged while it waited); then (customer_id, id, state, resolved_at)
    of their customers' latest conversations, read once the locks are held."""
    queries = []
    for chunk in _chunks(contacts):
        rows, params = _rows(settings, "text text", [(c.channel, c.address) for c in chunk])
        which = f"(i.channel, i.address) IN ({rows})"
        queries.append(
            (
                "SELECT i.channel, i.address, i.customer_id, i.home_id FROM identities i "
                f"JOIN customers c ON c.id = i.customer_id WHERE {which} "
                f"AND c.merged_into IS NULL ORDER BY i.channel, i.address"
                f"{settings.dialect.for_update}",
                params,
            )
        )
        queries.append(
            (
                "SELECT l.customer_id, l.id, l.state, l.resolved_at FROM identities i "
                "JOIN conversations l ON l.id = (SELECT x.id FROM conversations x "
                f"WHERE x.customer_id = i.customer_id ORDER BY x.updated_at DESC LIMIT 1) "
                f"WHERE {which}",
                params,
            )
        )
    return queries


def _held_rows(
    results: list[list[Row]], contacts: list[Identity]
) -> tuple[dict[Identity, tuple[str, str]], dict[str, Row]]:
    """The rows of :func:`_hold`'s queries for ``contacts``: (customer_id, home_id) per
    identity, and (id, state, resolved_at) of the latest conversation per customer."""
    asked = {(c.channel, comparable(c.address)): c for c in contacts}
    held: dict[Identity, tuple[str, str]] = {}
    latest: dict[str, Row] = {}
    for locked, conversations in zip(results[::2], results[1::2], strict=True):
        for channel, address, customer, home in locked:
            held[asked[channel, comparable(address)]] = (customer, home)
        latest.update((row[0], row[1:]) for row in conversations)
    return held, latest


def _make(
    settings: Settings,
    new: list[Identity],
    contacts: dict[Identity, dict[str, Event]],
    at: datetime,
) -> Op[dict[Identity, tuple[str, str]]]:
    """Make each of the ``new`` identities a customer of its own (as :func:`identify`),
    but those with a phone number another identity has or gets in this call (their
    link candidates), and those another transaction made meanwhile: both are left to
    :func:`identify`. Returns (customer_id, home_id) of those made. One round trip: the
    numbers are locked first (whoever makes one of them now waits for us), then the
    inserts leave out the numbers another identity has."""
    if not new:
        return {}
    phones = {contact: phone_of(contact) for contact in new}
    numbers = sorted({phone for phone in phones.values() if phone is not None})
    shared: set[str | None] = set()
    unless = " WHERE 1 = 1"  # SQLite's upsert after INSERT ... SELECT needs a WHERE
    if settings.link != "off":
        counts = Counter(phones.values())
        shared = {phone for phone in numbers if counts[phone] > 1}
        unless = " WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.phone = v.{})"
    made = {contact: new_id("cus") for contact in new if phones[contact] not in shared}
    inserts = []
    for chunk in _chunks(list(made)):
        rows = [
            (
                made[c],
                next((e.contact_name for e in contacts[c].values() if e.contact_name), None),
                micros(at),
                phones[c],
            )
            for c in chunk
        ]
        values, params = _rows(settings, "text text bigint text", rows)
        inserts.append(
            (
                "INSERT INTO customers (id, name, created_at) SELECT column1, column2, "
                f"column3 FROM ({values}) AS v{unless.format('column4')} RETURNING id",
                params,
            )
        )
        values, params = _rows(
            settings,
            "text text text text text bigint",
            [(c.channel, c.address, made[c], made[c], phones[c], micros(at)) for c in chunk],
        )
        inserts.append(
            (
                "INSERT INTO identities (channel, address, customer_id, home_id, phone, "
                f"created_at) SELECT * FROM ({values}) AS v{unless.format('column5')} "
                "ON CONFLICT (channel, address) DO NOTHING RETURNING customer_id",
                params,
            )
        )
    locks = _phone_locks(settings, numbers)
    found = (yield from together(*locks, *inserts))[len(locks) :]
    customers = {row[0] for rows in found[::2] for row in rows}
    inserted = {row[0] for rows in found[1::2] for row in rows}
    made = {contact: customer for contact, customer in made.items() if customer in inserted}
    lost = sorted(customers - inserted)  # another transaction made the identity meanwhile
    yield from together(
        *(_where_in(settings, "DELETE FROM customers WHERE id", ids) for ids in _chunks(lost))
    )
    return {contact: (customer, customer) for contact, customer in made.items()}


def _record_alone(
    settings: Settings,
    alone: list[Identity],
    held: dict[Identity, tuple[str, str]],
    latest: dict[str, Row],
    contacts: dict[Identity, dict[str, Event]],
    now: datetime,
    entries: list[tuple[Any, ...]],
) -> Op[None]:
    """:func:`_record_contact` for contacts each the only one of its customer in this
    call, without email threads, their customers locked (``held``) and their latest
    conversations read (``latest``: (id, state, resolved_at) per customer); then every
    write of the call at once: the conversations opened, those reopened or touched,
    ``entries`` and theirs."""
    opened: list[tuple[Any, ...]] = []  # _CONVERSATION_FIELDS of the new conversations
    reopened: list[tuple[Any, ...]] = []  # (id, at, channel) of the latest message
    for contact in alone:
        customer = held[contact]
        row = latest.get(customer[0])
        events = contacts[contact]
        current = None  # for other events before a message: the conversation under way
        if row is not None and row[1] != ConversationState.RESOLVED:
            current = row[0]
        elif row is not None and not isinstance(next(iter(events.values())), MessageReceived):
            current = yield from _current(customer[0])  # an older one, not resolved
        joined: str | None = None  # the conversation the messages join
        first: tuple[int, str] = (0, "")  # (at, channel) of the message that chose it
        last: tuple[int, str] | None = None  # and of the latest message after it
        for key, event in events.items():
            at = min(event.timestamp, now)
            if not isinstance(event, MessageReceived):
                entries.append(_inbound_entry(key, event, at, customer, joined or current))
                continue
            if joined is None:
                first = (micros(at), event.channel)
                reopens = row is not None and (
                    row[1] != ConversationState.RESOLVED or _reopens(settings, row[2], at)
                )
                joined = row[0] if reopens and row is not None else new_id("con")
            elif last is None or last[0] <= micros(at):
                last = (micros(at), event.channel)
            entries.append(_inbound_entry(key, event, at, customer, joined))
        if joined is None:
            continue
        touched = last if last is not None and last[0] >= first[0] else first
        if row is not None and joined == row[0]:
            reopened.append((joined, *touched))
        else:
            opened.append(_conversation_row(joined, customer[0], first, touched, by_customer=True))
    reopen = (
        "UPDATE conversations SET state = ?, resolved_at = NULL, "
        f"{_TOUCHED.format(at='v.column2', channel='v.column3')} "
        "FROM ({}) AS v WHERE conversations.id = v.column1"
    )
    reopens = [_rows(settings, "text bigint text", rows) for rows in _chunks(reopened)]
    yield from finish(
        *(_conversations_insert(settings, rows) for rows in _chunks(opened)),
        *(
            (reopen.format(rows), (ConversationState.OPEN.value, *params))
            for rows, params in reopens
        ),
        *(_entries_insert(settings, rows) for rows in _chunks(entries)),
    )


def _inbound_entry(
    key: str, event: Event, at: datetime, customer: tuple[str, str], conversation: str | None
) -> tuple[Any, ...]:
    """The entry of an inbound event (a message, or another event of the customer's)."""
    assert event.contact is not None
    body = event.model_dump_json(exclude={"reply_token"})
    if event.reply_token:  # a one-time credential: not kept, not in raw payloads either
        body = redact(body, [event.reply_token])
    if not isinstance(event, MessageReceived):
        return _entry(key, EntryKind.EVENT, at, customer, conversation, event.contact, body=body)
    message = event.message
    return _entry(
        key,
        EntryKind.MESSAGE,
        at,
        customer,
        conversation,
        event.contact,
        direction=Direction.INBOUND.value,
        message_id=message.id,
        text=_message_text(message),
        body=body,
    )


def _record_contact(
    settings: Settings, contact: Identity, events: dict[str, Event], now: datetime
) -> Op[list[tuple[Any, ...]]]:
    """The entries of new ``events`` of ``contact`` (by key), in order, their conversation
    chosen (and opened, reopened or touched) with the customer locked, each choice
    reading what the one before wrote."""
    name = next((event.contact_name for event in events.values() if event.contact_name), None)
    customer = yield from _held(settings, contact, name, now)
    entries = []
    joined: str | None = None  # the conversation this call's messages joined
    latest: tuple[datetime, str] | None = None  # the latest message since it was chosen
    current: str | None = None  # for other events: the conversation under way
    for key, event in events.items():
        at = min(event.timestamp, now)  # a sender's clock ahead of ours (as state.py)
        if not isinstance(event, MessageReceived):
            if joined is None and current is None:
                current = yield from _current(customer[0])
            entries.append(_inbound_entry(key, event, at, customer, joined or current))
            continue
        message = event.message
        if joined is None or message.thread:  # the next ones join it too (it is open now)
            if joined is not None and latest is not None:
                yield from _touch(joined, latest[1], latest[0])
            joined, latest = (
                (yield from _inbound_conversation(settings, customer[0], message, at)),
                None,
            )
        elif latest is None or latest[0] <= at:
            latest = (at, message.channel)
        entries.append(_inbound_entry(key, event, at, customer, joined))
    if joined is not None and latest is not None:
        yield from _touch(joined, latest[1], latest[0])
    return entries


def record_send(settings: Settings, send: SendRecord) -> Op[None]:
    """Record a send pending, or its outcome (creating the record if it was never
    recorded pending: a refusal). A sent reply counts as the conversation's first
    response; its thread keys (the email Message-ID) lead the customer's answer back."""
    receipt = send.receipt
    for index, message in enumerate(send.messages):
        key = send_key(message.channel, send.key) + (f":{index}" if index else "")
        columns: dict[str, Any] = {
            "outcome": send.outcome.value,
            "reason": _reason(send),
            "message_id": receipt.message_id if receipt else None,
        }
        rows = yield ("SELECT customer_id, conversation_id FROM entries WHERE key = ?", (key,))
        if rows:  # its outcome, or a retry's: never a step back (_OUTCOME_RANK)
            sets = ", ".join(f"{column} = ?" for column in columns)
            rank = _OUTCOME_RANK[send.outcome]
            allowed = _AFTER_NOTHING_WENT if send.outcome is SendOutcome.PENDING else _RANK
            yield (
                f"UPDATE entries SET {sets} WHERE key = ? AND {allowed} <= ?",
                (*columns.values(), key, rank),
            )
            conversation = rows[0][1]
        else:
            customer = yield from _held(settings, message.contact, None, send.at)
            conversation = yield from _current(customer[0])
            if conversation is None and send.outcome is not SendOutcome.REFUSED:
                conversation = yield from _open_conversation(
                    settings,
                    customer[0],
                    message.channel,
                    send.at,
                    by_customer=False,
                    state=ConversationState.PENDING,
                )
            entry = _entry(
                key,
                EntryKind.MESSAGE,
                send.at,
                customer,
                conversation,
                message.contact,
                direction=Direction.OUTBOUND.value,
                text=_message_text(message),
                body=message.model_dump_json(),
                **columns,
            )
            yield _entries_insert(settings, [entry])
        if send.outcome is SendOutcome.SENT and conversation is not None:
            if not send.automated:  # automation's replies are not the team's response
                yield (
                    "UPDATE conversations SET first_response_at = ? WHERE id = ? "
                    "AND first_response_at IS NULL AND opened_by_customer = 1",
                    (micros(send.at), conversation),
                )
            yield from _touch(conversation, message.channel, send.at)
            for thread in {message.thread, receipt.message_id if receipt else None} - {None}:
                yield from _thread(message.channel, str(thread), conversation)


#: How far a send got, by what its attempts recorded: a retry records its own outcome
#: only if it is as far as the recorded one (a refused retry of an attempt whose outcome
#: is unknown may have been delivered by that attempt; a sent message stays sent). A
#: retry's pending record replaces a refusal or a failure (nothing went out then), so
#: that an attempt that dies during its request leaves "pending", not the failure before.
_OUTCOME_RANK = {
    SendOutcome.PENDING: 0,
    SendOutcome.REFUSED: 1,
    SendOutcome.FAILED: 1,
    SendOutcome.UNKNOWN: 2,
    SendOutcome.SENT: 3,
}
_RANK = "CASE outcome {} END".format(
    " ".join(f"WHEN '{outcome.value}' THEN {rank}" for outcome, rank in _OUTCOME_RANK.items())
)
#: A pending record's rank test: 0 (replace) where the recorded attempt went nowhere.
_AFTER_NOTHING_WENT = "CASE WHEN outcome IN ('pending', 'refused', 'failed') THEN 0 ELSE 1 END"


def inbound_key(event: Event) -> str:
    """The key an inbound event's entry is recorded under."""
    return f"in:{event.channel}:{event.event_id}"


def send_key(channel: str, key: str) -> str:
    """The key of the entry of a send on ``channel`` under ``key`` (its first message)."""
    return f"out:{channel}:{key}"


def _reason(send: SendRecord) -> str | None:
    if send.decision is not None and send.decision.reason is not None:
        return send.decision.reason.value
    return send.error


_STATE_COLUMN = {
    DeliveryState.SENT: "sent_at",
    DeliveryState.DELIVERED: "delivered_at",
    DeliveryState.READ: "read_at",
    DeliveryState.PLAYED: "played_at",
    DeliveryState.FAILED: "failed_at",
}


def _status_query(status: StatusUpdate) -> Query:
    """Keep the earliest time of each state reported for a message (and the errors of
    its earliest failure): the same result whatever order the reports come in."""
    column = _STATE_COLUMN[status.state]
    at = micros(status.timestamp)
    failed = status.state is DeliveryState.FAILED
    # Only a failure's errors count: another report's would be kept by arriving first.
    errors = json.dumps([e.model_dump() for e in status.errors]) if failed else None
    errors_key = f"{at:020d}:{errors}" if failed else None
    return (
        f"INSERT INTO deliveries (channel, message_id, {column}, errors, errors_key) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, message_id) DO UPDATE SET "
        f"{column} = CASE WHEN deliveries.{column} IS NULL OR excluded.{column} < "
        f"deliveries.{column} THEN excluded.{column} ELSE deliveries.{column} END, "
        "errors = CASE WHEN excluded.errors_key IS NOT NULL AND (deliveries.errors_key IS NULL "
        "OR excluded.errors_key < deliveries.errors_key) THEN excluded.errors "
        "ELSE deliveries.errors END, "
        "errors_key = CASE WHEN excluded.errors_key IS NOT NULL AND (deliveries.errors_key IS "
        "NULL OR excluded.errors_key < deliveries.errors_key) THEN excluded.errors_key "
        "ELSE deliveries.errors_key END",
        (status.channel, status.message_id, at, errors, errors_key),
    )


def add_note(
    settings: Settings, owner: str, text: str, author: str | None, at: datetime
) -> Op[int]:
    """A note on a conversation (an id starting ``con_``) or a customer; its entry id."""
    if owner.startswith("con_"):
        rows = yield ("SELECT customer_id, home_id FROM conversations WHERE id = ?", (owner,))
        conversation: str | None = owner
    else:
        rows = yield ("SELECT id FROM customers WHERE id = ?", (owner,))
        if rows:  # a merged customer's note shows under the customer it went into
            rows = [((yield from root_of(owner)), owner)]
        conversation = None
    if not rows:
        raise LookupError(f"no conversation or customer {owner!r}")
    rows = yield (
        "INSERT INTO entries (key, kind, at, customer_id, home_id, conversation_id, text, "
        "author) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            new_id("note"),
            EntryKind.NOTE.value,
            micros(at),
            rows[0][0],
            rows[0][1],
            conversation,
            text,
            author,
        ),
    )
    return int(rows[0][0])


# -- reading --------------------------------------------------------------------------

ENTRY_COLUMNS = (
    "e.id, e.kind, e.at, e.customer_id, e.conversation_id, e.channel, e.address, "
    "e.direction, e.text, e.body, e.outcome, e.reason, e.message_id, e.author, "
    "d.sent_at, d.delivered_at, d.read_at, d.played_at, d.failed_at, d.errors"
)
_DELIVERY_JOIN = "LEFT JOIN deliveries d ON d.channel = e.channel AND d.message_id = e.message_id"


def entry_by_key(key: str) -> Op[list[Row]]:
    """The entry recorded under ``key`` (:func:`inbound_key`, :func:`send_key`)."""
    return (
        yield (f"SELECT {ENTRY_COLUMNS} FROM entries e {_DELIVERY_JOIN} WHERE e.key = ?", (key,))
    )


def timeline(who: str | Identity, before: tuple[int, int] | None, limit: int) -> Op[list[Row]]:
    """The newest ``limit`` entries older than ``before`` (at, id) of the timeline of
    ``who``: a customer id or an identity. One query, but for a customer id that shows
    no entry (it may have been merged: its entries are under the root it went into)."""
    at, entry = before or (2**62, 0)
    query = (
        f"SELECT {ENTRY_COLUMNS} FROM entries e {_DELIVERY_JOIN} "
        "WHERE e.customer_id = {} AND (e.at, e.id) < (?, ?) "
        "ORDER BY e.at DESC, e.id DESC LIMIT ?"
    )
    if isinstance(who, Identity):
        owner = "(SELECT customer_id FROM identities WHERE channel = ? AND address = ?)"
        return (yield (query.format(owner), (who.channel, who.address, at, entry, limit)))
    rows = yield (query.format("?"), (who, at, entry, limit))
    if rows or (root := (yield from root_of(who))) == who:
        return rows
    return (yield (query.format("?"), (root, at, entry, limit)))


def search(settings: Settings, words: str, customer: str | None, limit: int) -> Op[list[Row]]:
    """The ``limit`` entries recorded last whose text has ``words`` (of ``customer``'s),
    in the order the index gives them (SQLite's without a sort)."""
    dialect = settings.dialect
    where = " AND e.customer_id = ?" if customer else ""
    params = (dialect.search_words(words), customer) if customer else (dialect.search_words(words),)
    return (
        yield (
            f"SELECT {ENTRY_COLUMNS} FROM {dialect.search_from} {_DELIVERY_JOIN} "
            f"WHERE {dialect.search_where}{where} ORDER BY {dialect.search_order} LIMIT ?",
            (*params, limit),
        )
    )


def report_rows(since: datetime, until: datetime) -> Op[tuple[list[Row], list[Row]]]:
    """The conversations opened and the outbound messages sent in [since, until)."""
    span = (micros(since), micros(until))
    conversations = yield (
        "SELECT c.opened_on, c.opened_at, c.first_response_at, c.resolved_at, c.state, "
        "(SELECT count(*) FROM entries e WHERE e.conversation_id = c.id AND e.kind = ? "
        "AND (e.direction = ? OR e.outcome = ?)) "
        "FROM conversations c WHERE c.opened_at >= ? AND c.opened_at < ?",
        (EntryKind.MESSAGE.value, Direction.INBOUND.value, SendOutcome.SENT.value, *span),
    )
    sends = yield (
        "SELECT e.channel, e.at, e.outcome, e.reason, d.delivered_at, d.read_at, "
        "d.played_at, d.failed_at FROM entries e "
        f"{_DELIVERY_JOIN} WHERE e.at >= ? AND e.at < ? AND e.direction = ?",
        (*span, Direction.OUTBOUND.value),
    )
    return conversations, sends


def run_sync(op: Callable[[], Op[T]], execute: Callable[[Query], list[Row]]) -> T:
    """Drive ``op`` with a blocking ``execute`` (the SQLite driver's)."""
    generator = op()
    try:
        query = next(generator)
        while True:
            if query[0] == LAST:
                _last(generator, [tuple(execute(one)) for one in query[1]])
            elif query[0] == TOGETHER:
                query = generator.send([tuple(execute(one)) for one in query[1]])
            else:
                query = generator.send(execute(query))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(
    op: Callable[[], Op[T]],
    execute: Callable[[Sequence[Query]], Awaitable[list[list[Row]]]],
    last: Callable[[Sequence[Query]], Awaitable[None]] | None = None,
) -> T:
    """Drive ``op`` with an awaitable ``execute`` of queries sent at once, their rows
    in order (the PostgreSQL driver's: one round trip). ``last``, if given, takes the
    queries of :func:`finish` instead: the operation needs none of their rows, so it
    may send them without waiting (with the commit)."""
    generator = op()
    try:
        query = next(generator)
        while True:
            if query[0] == LAST and last is not None:
                await last(query[1])
                _last(generator, [() for _ in query[1]])
            elif query[0] == LAST:
                _last(generator, [tuple(rows) for rows in await execute(query[1])])
            elif query[0] == TOGETHER:
                query = generator.send([tuple(rows) for rows in await execute(query[1])])
            else:
                query = generator.send((await execute([query]))[0])
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _last(generator: Op[T], rows: list[Any]) -> None:
    """Send ``generator`` the rows of its last queries (:func:`finish`): it must return
    (StopIteration)."""
    generator.send(rows)
    generator.close()
    raise RuntimeError("an operation went on after its last queries (ops.finish)")
