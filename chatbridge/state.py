"""The one path by which inbound events change stored state.

The ASGI app, direct ``Channel.receive`` calls and tests all go through
:func:`apply_event`, so a window opens (or a follow registers) the same way everywhere.
"""

from __future__ import annotations

from chatbridge.models import Event, Followed, MessageReceived, OptedIn, OptedOut, Unfollowed
from chatbridge.store.base import Store


async def apply_event(store: Store, event: Event) -> None:
    """Update ``store`` for ``event`` (window, follower and opt-out state)."""
    if event.contact is None:
        return
    match event:
        case MessageReceived():
            current = await store.contact_state(event.contact)
            if current.last_inbound_at is None or current.last_inbound_at < event.timestamp:
                await store.update_contact_state(event.contact, last_inbound_at=event.timestamp)
        case Followed():
            await store.update_contact_state(event.contact, follower=True)
        case Unfollowed():
            await store.update_contact_state(event.contact, follower=False)
        case OptedOut():
            await store.update_contact_state(event.contact, opted_out=True)
        case OptedIn():
            await store.update_contact_state(event.contact, opted_out=False)
        case _:
            return
