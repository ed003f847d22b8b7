"""The history's tables, and what SQLite and PostgreSQL say differently.

Every query of :mod:`chatbridge.conversations.ops` is written once, with ``?``
placeholders, in the SQL both backends understand (``ON CONFLICT``, ``RETURNING``);
a :class:`Dialect` holds the rest: the schema (row ids, full-text search), row locks and
the text search query. Times are integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

#: The tables both backends share; {id} is the dialect's auto-numbered key column.
_TABLES = """
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, name TEXT, language TEXT, fields TEXT NOT NULL DEFAULT '{{}}',
    merged_into TEXT, created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS customers_merged_into ON customers (merged_into);
CREATE TABLE IF NOT EXISTS customer_tags (
    customer_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (customer_id, tag));
CREATE TABLE IF NOT EXISTS identities (
    channel TEXT NOT NULL, address TEXT NOT NULL, customer_id TEXT NOT NULL,
    home_id TEXT NOT NULL, phone TEXT, created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, address));
CREATE INDEX IF NOT EXISTS identities_customer ON identities (customer_id);
CREATE INDEX IF NOT EXISTS identities_home ON identities (home_id);
CREATE INDEX IF NOT EXISTS identities_phone ON identities (phone);
CREATE TABLE IF NOT EXISTS link_suggestions (
    channel TEXT NOT NULL, address TEXT NOT NULL, other_channel TEXT NOT NULL,
    other_address TEXT NOT NULL, reason TEXT NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (channel, address, other_channel, other_address));
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, home_id TEXT NOT NULL,
    state TEXT NOT NULL, channel TEXT, opened_on TEXT, opened_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL, resolved_at BIGINT, first_response_at BIGINT,
    opened_by_customer INTEGER NOT NULL, assignee TEXT, priority INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS conversations_customer ON conversations (customer_id, updated_at);
CREATE INDEX IF NOT EXISTS conversations_home ON conversations (home_id);
CREATE INDEX IF NOT EXISTS conversations_state ON conversations (state, updated_at);
CREATE INDEX IF NOT EXISTS conversations_assignee ON conversations (assignee, state);
CREATE INDEX IF NOT EXISTS conversations_opened_at ON conversations (opened_at);
CREATE INDEX IF NOT EXISTS conversations_updated_at ON conversations (updated_at);
CREATE TABLE IF NOT EXISTS conversation_tags (
    conversation_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (conversation_id, tag));
CREATE INDEX IF NOT EXISTS conversation_tags_tag ON conversation_tags (tag);
CREATE TABLE IF NOT EXISTS threads (
    channel TEXT NOT NULL, thread TEXT NOT NULL, conversation_id TEXT NOT NULL,
    PRIMARY KEY (channel, thread));
CREATE TABLE IF NOT EXISTS entries (
    id {id}, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, at BIGINT NOT NULL,
    customer_id TEXT NOT NULL, home_id TEXT NOT NULL, conversation_id TEXT,
    channel TEXT, address TEXT, direction TEXT, text TEXT, body TEXT,
    outcome TEXT, reason TEXT, message_id TEXT, author TEXT);
CREATE INDEX IF NOT EXISTS entries_timeline ON entries (customer_id, at, id);
CREATE INDEX IF NOT EXISTS entries_home ON entries (home_id);
CREATE INDEX IF NOT EXISTS entries_identity ON entries (channel, address);
CREATE INDEX IF NOT EXISTS entries_message_id ON entries (channel, message_id);
CREATE INDEX IF NOT EXISTS entries_conversation ON entries (conversation_id);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at);
CREATE TABLE IF NOT EXISTS deliveries (
    channel TEXT NOT NULL, message_id TEXT NOT NULL, sent_at BIGINT, delivered_at BIGINT,
    read_at BIGINT, played_at BIGINT, failed_at BIGINT, errors TEXT, errors_key TEXT,
    PRIMARY KEY (channel, message_id));
"""

_SQLITE_SEARCH = """
CREATE VIRTUAL TABLE IF NOT EXISTS entries_text USING fts5 (
    text, content='entries', content_rowid='id');
CREATE TRIGGER IF NOT EXISTS entries_text_insert AFTER INSERT ON entries
    WHEN new.text IS NOT NULL BEGIN
    INSERT INTO entries_text (rowid, text) VALUES (new.id, new.text); END;
"""

#: How much of an entry's text PostgreSQL indexes for search: a tsvector holds at most
#: 1 MB, and an insert whose text makes a larger one fails.
SEARCHED_CHARACTERS = 100_000

_POSTGRES_SEARCH = """
ALTER TABLE entries ADD COLUMN IF NOT EXISTS words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', left(coalesce(text, ''), {searched}))) STORED;
CREATE INDEX IF NOT EXISTS entries_words ON entries USING GIN (words);
"""


#: The automation's tables (:mod:`chatbridge.automation`) and the tag mirrors'
#: (:mod:`chatbridge.conversations.mirrors`), last: PostgreSQL's driver
#: takes the last table's existence for the whole schema's.
_AUTOMATION = """
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0,
    last_assigned_at BIGINT NOT NULL DEFAULT 0, changed_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS routes (
    conversation_id TEXT PRIMARY KEY, queue TEXT NOT NULL, skills TEXT NOT NULL,
    priority INTEGER NOT NULL, since BIGINT NOT NULL, agent TEXT);
CREATE INDEX IF NOT EXISTS routes_waiting ON routes (queue, priority DESC, since, conversation_id)
    WHERE agent IS NULL;
CREATE INDEX IF NOT EXISTS routes_agent ON routes (agent) WHERE agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS conversations_unhandled ON conversations (assignee, state)
    WHERE first_response_at IS NULL AND opened_by_customer = 1;
CREATE TABLE IF NOT EXISTS reply_claims (key TEXT PRIMARY KEY, at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS fallback_plans (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, step INTEGER NOT NULL, state TEXT NOT NULL,
    due_at BIGINT, lease TEXT, channel TEXT, message_id TEXT, sent_at BIGINT,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS fallback_plans_due ON fallback_plans (due_at)
    WHERE state IN ('sending', 'waiting');
CREATE INDEX IF NOT EXISTS fallback_plans_message ON fallback_plans (channel, message_id);
CREATE TABLE IF NOT EXISTS tag_mirrors (
    customer_id TEXT PRIMARY KEY, mark TEXT NOT NULL, due_at BIGINT, leased_until BIGINT,
    attempts INTEGER NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS tag_mirrors_due ON tag_mirrors (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS tag_mirrors_failed ON tag_mirrors (customer_id)
    WHERE error IS NOT NULL;
"""

#: The table the schema creates last.
LAST_TABLE = "tag_mirrors"


def _fts5_words(words: str) -> str:
    """``words`` as an FTS5 query that matches them all, each taken literally."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words.split())


def _values(rows: Sequence[tuple[Any, ...]], types: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """SQLite's rows: ``VALUES``, the parameters row by row."""
    marks = f"({', '.join('?' * len(types))})"
    return f"VALUES {', '.join([marks] * len(rows))}", tuple(v for row in rows for v in row)


def _unnest(rows: Sequence[tuple[Any, ...]], types: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
    """PostgreSQL's rows: one array parameter per column, so that the text (its parsing
    by psycopg, its plan) is the same for any number of rows."""
    arrays = ", ".join(f"?::{type_}[]" for type_ in types)
    columns = ", ".join(f"column{n}" for n in range(1, len(types) + 1))
    params = tuple(list(column) for column in zip(*rows, strict=True))
    return f"SELECT * FROM unnest({arrays}) AS r ({columns})", params  # noqa: S608 (our types)


@dataclass(frozen=True)
class Dialect:
    """What one backend's SQL says its own way."""

    name: str
    schema: str
    #: Appended to a SELECT that must lock the rows it reads until the commit.
    for_update: str
    #: ``rows(values, types)``: a query of the rows ``values`` (columns ``column1``,
    #: ``column2``... of SQL ``types``) and its parameters.
    rows: Callable[[Sequence[tuple[Any, ...]], Sequence[str]], tuple[str, tuple[Any, ...]]]
    #: A statement that holds the locks named by the text ``column1`` of the ``{rows}``
    #: until the commit, one after the other (None: transactions never overlap).
    lock_names: str | None
    #: A text search: the tables (entries as ``e``), the condition (one parameter: the
    #: words, as ``search_words`` makes them).
    search_from: str
    search_where: str
    search_words: Callable[[str], str]
    #: The newest matches first (by entry id), as cheaply as the index allows.
    search_order: str

    def statements(self) -> list[str]:
        """The schema, one statement each (for drivers that run one at a time)."""
        return [part.strip() for part in self.schema.split(";\n") if part.strip()]


SQLITE = Dialect(
    name="sqlite",
    schema=_TABLES.format(id="INTEGER PRIMARY KEY") + _SQLITE_SEARCH + _AUTOMATION,
    for_update="",  # one writer at a time: every transaction is serialised
    rows=_values,
    lock_names=None,
    search_from="entries_text JOIN entries e ON e.id = entries_text.rowid",
    search_where="entries_text MATCH ?",
    search_words=_fts5_words,
    search_order="entries_text.rowid DESC",
)

POSTGRES = Dialect(
    name="postgres",
    schema=_TABLES.format(id="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    + _POSTGRES_SEARCH.format(searched=SEARCHED_CHARACTERS)
    + _AUTOMATION,
    for_update=" FOR UPDATE",
    rows=_unnest,
    lock_names="SELECT pg_advisory_xact_lock(hashtext(column1)) FROM ({rows}) AS v",
    search_from="entries e",
    search_where="e.words @@ plainto_tsquery('simple', ?)",
    search_words=str,
    search_order="e.id DESC",
)
