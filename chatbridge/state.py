"""The one path by which inbound events change stored state.

The ASGI app, direct ``Channel.receive`` calls and tests all go through
:func:`apply_event`, so a window opens (or a follow registers) the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chatbridge.models import (
    ChannelEvent,
    Event,
    Followed,
    MessageReceived,
    OptedIn,
    OptedOut,
    Suppressed,
    Unfollowed,
)
from chatbridge.store.base import ContactState, Store, merged


def opens_window(event: Event) -> bool:
    """Whether the provider counts ``event`` as a customer interaction."""
    return isinstance(event, MessageReceived | Followed) or (
        isinstance(event, ChannelEvent) and event.opens_window
    )


def only_opens_window(event: Event) -> bool:
    """Whether applying ``event`` changes nothing but the customer's last interaction
    time (no reply token, follow, opt-out or suppression)."""
    return event.reply_token is None and not isinstance(
        event, Followed | Unfollowed | OptedOut | OptedIn | Suppressed
    )


async def apply_event(store: Store, event: Event, now: datetime) -> None:
    """Update ``store`` for ``event``: interaction time, reply token, follower and
    opt-out state. An event the provider dates after ``now`` (a clock ahead of ours)
    counts as of ``now``, so it keeps no window open longer than the provider does."""
    await apply_events(store, [event], now)


async def apply_events(store: Store, events: Sequence[Event], now: datetime) -> None:
    """:func:`apply_event` for each of ``events``, in order, all of one contact: in one
    atomic change of its state (so a worker applying another event of that contact at
    the same time cannot undo it)."""
    contact = next((event.contact for event in events if event.contact is not None), None)
    if contact is None:
        return

    def change(current: ContactState) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for event in events:
            if step := _changes(event, current, now):
                current = merged(current, step)
                changes.update(step)
        return changes

    await store.change_contact_state(contact, change)


def _changes(event: Event, current: ContactState, now: datetime) -> dict[str, Any]:
    """What ``event`` changes in ``current``."""
    if event.contact is None:
        return {}
    at = min(event.timestamp, now)
    changes: dict[str, Any] = {}
    match event:
        case Followed():
            changes["follower"] = True
        case Unfollowed():
            changes.update(follower=False, reply_token=None, reply_token_at=None)
        case OptedOut():
            changes["opted_out"] = True
        case OptedIn():
            changes["opted_out"] = False
        case Suppressed(reason=reason):
            changes["suppressed"] = reason
    newer = current.last_inbound_at is None or current.last_inbound_at <= at
    if opens_window(event) and newer:
        changes["last_inbound_at"] = at
        if isinstance(event, MessageReceived) and event.message.id:
            changes["last_message_id"] = event.message.id
    token_at = current.reply_token_at
    if event.reply_token and (token_at is None or token_at <= at):
        changes.update(reply_token=event.reply_token, reply_token_at=at)
    return changes
