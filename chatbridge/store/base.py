"""The Store protocol: where windows, friendships, opt-outs, quotas and dedup marks live.

Stores keep no clock of their own: callers pass ``now`` so time stays injectable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from chatbridge.models import Identity


class ContactState(BaseModel):
    """What the policy engine knows about one identity.

    ``last_inbound_at`` is the customer's last interaction (it opens service windows);
    ``last_message_id`` the provider's id of their latest message (WhatsApp's typing
    indicator marks it read); ``follower`` is None until the channel has told us either
    way; ``reply_token`` is the latest unused free-reply token and when it was received.
    Frozen: stores share one default and a memory store hands out the state it keeps.
    """

    model_config = ConfigDict(frozen=True)

    last_inbound_at: AwareDatetime | None = None
    last_message_id: str | None = None
    follower: bool | None = None
    opted_out: bool = False
    suppressed: str | None = None
    reply_token: str | None = None
    reply_token_at: AwareDatetime | None = None


DEFAULT_STATE = ContactState()
"""The state of an identity nothing is known about."""
_FIELDS = frozenset(ContactState.model_fields)
_validate = ContactState.__pydantic_validator__.validate_python


#: What a contact's state should change, given the state: field names to new values.
Change = Callable[[ContactState], Mapping[str, Any]]


def merged(state: ContactState, changes: dict[str, Any]) -> ContactState:
    """``state`` with ``changes`` applied, every field validated; unknown field names are
    an error. (Validating the field values as they are, without ``model_dump``, costs
    less than ``model_copy``, which validates nothing.)"""
    unknown = changes.keys() - _FIELDS
    if unknown:
        raise ValueError(f"unknown contact state fields: {sorted(unknown)}")
    new: ContactState = _validate({**state.__dict__, **changes})
    return new


class Store(Protocol):
    """Async state storage shared by the channels, the policy engine and the webhook path."""

    async def contact_state(self, identity: Identity) -> ContactState:
        """The state of ``identity``; a default state if nothing is known."""
        ...

    async def update_contact_state(self, identity: Identity, **changes: Any) -> ContactState:
        """Apply ``changes`` atomically and return the new state."""
        ...

    async def change_contact_state(self, identity: Identity, change: Change) -> ContactState:
        """Atomically: apply the changes ``change(current state)`` returns (nothing is
        written when there are none); return the new state. ``change`` may be called
        more than once (a store that retries on a conflict), so it must not have side
        effects."""
        ...

    async def first_seen(self, key: str, now: datetime, ttl: timedelta) -> bool:
        """Record ``key``; True if it was not already recorded within ``ttl`` (dedup)."""
        ...

    async def forget(self, key: str) -> None:
        """Drop a dedup mark, so the key counts as never seen."""
        ...

    async def consume(
        self, key: str, amount: int, limit: int | None, expires_at: datetime | None = None
    ) -> bool:
        """Atomically add ``amount`` to counter ``key`` unless that would pass ``limit``.
        Returns whether it was added. ``expires_at`` lets the store forget the counter
        after that time (rate windows, months): its key is never read after then."""
        ...

    async def counter(self, key: str) -> int:
        """The current value of counter ``key`` (0 if unknown)."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...
