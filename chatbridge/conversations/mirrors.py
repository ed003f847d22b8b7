"""Customer tags mirrored onto a provider's own tags (WeChat's user tags).

The history is the source of truth. Every change to a customer's tags (tagging,
untagging, linking, unlinking) marks the customer in ``tag_mirrors`` in the same
transaction, in any process; :meth:`History.sync_tags` (the serving worker's tick runs
it) takes the marks one at a time under a lease and makes the provider's mirrored tags
of each of the customer's identities on the mirror's channel exactly the customer's.
Each sync reads the provider's tags first, so running one twice does no harm, and a
crash anywhere leaves the mark to be taken again. A failing sync is retried with
backoff; after :data:`MAX_ATTEMPTS` it is set aside with its reason
(:meth:`History.tag_mirror_failures`) and holds up no other customer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from chatbridge.conversations.ops import Op, micros, moment, root_of

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
    """Have ``customers`` (any customer ids, merged ones too) synced at the next run (a
    sync another process holds now is left to it; it makes this mark due when done)."""
    roots = []
    for customer in customers:
        roots.append((yield from root_of(customer)))
    for customer in dict.fromkeys(roots):
        yield (
            "INSERT INTO tag_mirrors (customer_id, mark, due_at, attempts) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (customer_id) DO UPDATE SET mark = excluded.mark, attempts = 0, "
            "error = NULL, due_at = CASE WHEN tag_mirrors.leased_until > excluded.due_at "
            "THEN tag_mirrors.due_at ELSE excluded.due_at END",
            (customer, uuid.uuid4().hex, micros(at)),
        )


def take(at: datetime) -> Op[tuple[str, str, int] | None]:
    """The mark due longest at ``at``, as (customer, mark, attempt), leased for
    :data:`LEASE` (so that another process takes another, and one that dies mid-sync
    has it taken again after); one taken :data:`MAX_ATTEMPTS` times without an outcome
    is set aside. None: nothing is due."""
    now, lease = micros(at), micros(at + LEASE)
    for _ in range(3):  # another process may take the one read first
        due = yield (
            "SELECT customer_id, attempts FROM tag_mirrors WHERE due_at <= ? "
            "ORDER BY due_at LIMIT 1",
            (now,),
        )
        if not due:
            return None
        customer, attempts = due[0]
        if attempts >= MAX_ATTEMPTS:
            yield (
                "UPDATE tag_mirrors SET due_at = NULL, leased_until = NULL, "
                "error = COALESCE(error, ?) WHERE customer_id = ? AND due_at <= ?",
                (_UNFINISHED.format(attempts), customer, now),
            )
            continue
        taken = yield (
            "UPDATE tag_mirrors SET due_at = ?, leased_until = ?, attempts = attempts + 1 "
            "WHERE customer_id = ? AND due_at <= ? RETURNING mark, attempts",
            (lease, lease, customer, now),
        )
        if taken:
            return customer, taken[0][0], taken[0][1]
    return None


_UNFINISHED = "its sync was taken {} times and never finished (did the process stop?)"


def done(customer: str, mark_: str, at: datetime) -> Op[None]:
    """The sync of ``mark_`` went through."""
    yield ("DELETE FROM tag_mirrors WHERE customer_id = ? AND mark = ?", (customer, mark_))
    yield from _release(customer, mark_, at)


def failed(customer: str, mark_: str, attempt: int, error: str, at: datetime) -> Op[None]:
    """The sync of ``mark_`` failed at its ``attempt``-th try: try again later, or set it
    aside after :data:`MAX_ATTEMPTS`."""
    wait = min(FIRST_WAIT * 2 ** (attempt - 1), LONGEST_WAIT)
    next_at = micros(at + wait) if attempt < MAX_ATTEMPTS else None
    yield (
        "UPDATE tag_mirrors SET error = ?, due_at = ?, leased_until = NULL "
        "WHERE customer_id = ? AND mark = ?",
        (error, next_at, customer, mark_),
    )
    yield from _release(customer, mark_, at)


def _release(customer: str, mark_: str, at: datetime) -> Op[None]:
    """A mark made during the sync of ``mark_`` is due now."""
    yield (
        "UPDATE tag_mirrors SET due_at = ?, leased_until = NULL "
        "WHERE customer_id = ? AND mark <> ?",
        (micros(at), customer, mark_),
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
