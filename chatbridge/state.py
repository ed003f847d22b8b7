"""The one path by which inbound events change stored state.

The ASGI app, direct ``Channel.receive`` calls and tests all go through
:func:`apply_event`, so a window opens (or a follow registers) the same way everywhere.
"""

from __future__ import annotations

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
from chatbridge.store.base import Store


def opens_window(event: Event) -> bool:
    """Whether the provider counts ``event`` as a customer interaction."""
    return isinstance(event, MessageReceived | Followed) or (
        isinstance(event, ChannelEvent) and event.opens_window
    )


async def apply_event(store: Store, event: Event) -> None:
    """Update ``store`` for ``event``: interaction time, reply token, follower and
    opt-out state."""
    if event.contact is None:
        return
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
    current = await store.contact_state(event.contact)
    newer = current.last_inbound_at is None or current.last_inbound_at < event.timestamp
    if opens_window(event) and newer:
        changes["last_inbound_at"] = event.timestamp
    token_at = current.reply_token_at
    if event.reply_token and (token_at is None or token_at <= event.timestamp):
        changes.update(reply_token=event.reply_token, reply_token_at=event.timestamp)
    if changes:
        await store.update_contact_state(event.contact, **changes)
