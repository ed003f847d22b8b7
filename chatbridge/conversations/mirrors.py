"""Customer tags mirrored onto a provider's own tags (WeChat's user tags).

The history is the source of truth. A change that alters a mirrored customer's tags
(tagging, untagging, linking, unlinking) marks the customer in ``tag_mirrors`` in the
same transaction; :meth:`History.sync_tags` (the serving worker's tick runs it) then
makes the provider's mirrored tags of each of the customer's identities on the mirror's
channel exactly the customer's. Each sync reads the provider's tags first, so running it
twice, or in two processes at once, does no harm, and a crash anywhere leaves the mark
to be synced again. A failing sync is retried with backoff; after :data:`MAX_ATTEMPTS`
it is set aside with its reason (:meth:`History.tag_mirror_failures`) and holds up no
other customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from chatbridge.conversations.ops import Op, Row, micros, moment, root_of

#: Syncs of one customer tried before it is set aside.
MAX_ATTEMPTS = 8
#: The wait after the first failure, doubled after each next one, up to :data:`LONGEST_WAIT`.
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
#: How long a sync taken by one process is left to it.
LEASE = timedelta(minutes=5)


class MirrorFailure(BaseModel):
    """A customer whose tags could not be mirrored: ``next_at`` None means set aside
    (:meth:`History.sync_tags` no longer tries it; :meth:`History.mirror_again` does)."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    attempts: int
    error: str
    next_at: datetime | None


def mark(customers: Sequence[str], at: datetime) -> Op[None]:
    """Have ``customers`` (any customer ids, merged ones too) synced at the next run."""
    roots = []
    for customer in customers:
        roots.append((yield from root_of(customer)))
    for customer in dict.fromkeys(roots):
        yield (
            "INSERT INTO tag_mirrors (customer_id, mark, due_at, attempts) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (customer_id) DO UPDATE "
            "SET mark = excluded.mark, due_at = excluded.due_at, attempts = 0, error = NULL",
            (customer, uuid.uuid4().hex, micros(at)),
        )


def take(at: datetime, limit: int) -> Op[list[Row]]:
    """Up to ``limit`` marks due at ``at``, the longest due first, as (customer, mark,
    attempts): each is put off by :data:`LEASE` meanwhile, so that another process
    running at once takes others (and one that dies mid-sync has it tried again)."""
    return (
        yield (
            "UPDATE tag_mirrors SET due_at = ? WHERE due_at <= ? AND customer_id IN "
            "(SELECT customer_id FROM tag_mirrors WHERE due_at <= ? ORDER BY due_at LIMIT ?) "
            "RETURNING customer_id, mark, attempts",
            (micros(at + LEASE), micros(at), micros(at), limit),
        )
    )


def done(customer: str, mark_: str) -> Op[None]:
    """The sync of ``mark_`` went through (a mark made since stays)."""
    yield ("DELETE FROM tag_mirrors WHERE customer_id = ? AND mark = ?", (customer, mark_))


def failed(customer: str, mark_: str, attempts: int, error: str, at: datetime) -> Op[None]:
    """The sync of ``mark_`` failed for the ``attempts``-th time: try again later, or
    set it aside after :data:`MAX_ATTEMPTS`."""
    wait = min(FIRST_WAIT * 2 ** (attempts - 1), LONGEST_WAIT)
    next_at = micros(at + wait) if attempts < MAX_ATTEMPTS else None
    yield (
        "UPDATE tag_mirrors SET attempts = ?, error = ?, due_at = ? "
        "WHERE customer_id = ? AND mark = ?",
        (attempts, error, next_at, customer, mark_),
    )


def failures(limit: int) -> Op[list[MirrorFailure]]:
    rows = yield (
        "SELECT customer_id, attempts, error, due_at FROM tag_mirrors WHERE error IS NOT NULL "
        "ORDER BY customer_id LIMIT ?",
        (limit,),
    )
    return [
        MirrorFailure(customer_id=c, attempts=n, error=e, next_at=moment(d)) for c, n, e, d in rows
    ]
