"""state.apply_events (one read and one write for a contact's events) ends where
apply_event applied to each in turn ends, whatever the events and their order."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatbridge.models import (
    Event,
    Followed,
    Identity,
    MessageReceived,
    OptedIn,
    OptedOut,
    Unfollowed,
)
from chatbridge.state import apply_event, apply_events
from chatbridge.store.memory import MemoryStore

T0 = datetime(2026, 5, 1, tzinfo=UTC)
WHO = Identity(channel="line", address="U1")


def event(kind: str, minute: int, token: bool, n: int) -> Event:
    common = {
        "channel": "line",
        "event_id": f"e{n}",
        "contact": WHO,
        "timestamp": T0 + timedelta(minutes=minute),
        "reply_token": f"r{n}" if token else None,
    }
    if kind == "message":
        return MessageReceived.model_validate({**common, "message": {"contact": WHO, "text": "hi"}})
    if kind == "opt_out":
        return OptedOut(**common, reason="STOP")
    return {"follow": Followed, "unfollow": Unfollowed, "opt_in": OptedIn}[kind](**common)


events = st.lists(
    st.tuples(
        st.sampled_from(["message", "follow", "unfollow", "opt_out", "opt_in"]),
        st.integers(0, 120),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
).map(lambda items: [event(kind, m, token, n) for n, (kind, m, token) in enumerate(items)])


@settings(max_examples=200, deadline=None)
@given(events)
@pytest.mark.anyio
async def test_applying_a_contacts_events_at_once_equals_one_by_one(batch: list[Event]) -> None:
    now = T0 + timedelta(minutes=90)  # some events are dated after it
    one_by_one, at_once = MemoryStore(), MemoryStore()
    for item in batch:
        await apply_event(one_by_one, item, now)
    await apply_events(at_once, batch, now)
    assert await at_once.contact_state(WHO) == await one_by_one.contact_state(WHO)
