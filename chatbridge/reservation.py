"""Quota and rate units taken before a send, and given back only when the send surely
did not go out: the one place a send's counters are settled.

A :class:`Reservation` is made by :meth:`chatbridge.policy.PolicyEngine.reservation` for
one provider request (or one multicast). Used as an async context manager around the
delivery, it gives back the units of what did not go out only when the delivery surely
failed (a typed chatbridge error other than
:class:`~chatbridge.errors.DeliveryUnknownError`: a refusal, a connection never made).
When it succeeded or may have (an ambiguous answer, a cancellation, an unexpected
exception), the units stay and the idempotency key is remembered, so a retry with the
key counts nothing twice. Over-counting a quota is the safe side of not knowing.
"""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType

import anyio

from chatbridge.errors import ChatbridgeError, DeliveryUnknownError, PolicyRefusedError
from chatbridge.models import Contact, Message
from chatbridge.policy import (
    QUOTA_RETENTION,
    PolicyEngine,
    PolicyRules,
    quota_key,
    quota_limit,
    rate_window,
)

#: The limit of a quota with an overage and no cap: every send counted (to price the
#: overage), none refused.
_UNLIMITED = 2**53


class Reservation:
    """The counter units one send takes, settled when it ends.

    ``held`` is true when an earlier, ambiguous send with the same idempotency key
    already took the units: this one takes none, and must not be refused for quota.
    """

    def __init__(
        self,
        engine: PolicyEngine,
        channel: str,
        rules: PolicyRules,
        idempotency_key: str | None,
        key_ttl: timedelta | None,
        held: bool,
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._rules = rules
        self._key_ttl = key_ttl
        self.idempotency_key = idempotency_key
        self.held = held
        self._quota: str | None = None  # the quota counter taken from, if any
        self._rate: str | None = None  # the rate counter taken from, if any
        self._units = self._unsent = 0

    async def take(
        self, message: Message, contact: Contact | None, *, billable: bool, units: int = 1
    ) -> None:
        """Atomically take ``units`` of the monthly quota (when ``billable``) and one of
        the per-contact rate, or raise :class:`~chatbridge.errors.PolicyRefusedError`
        with nothing taken."""
        if units < 1:
            raise ValueError(f"a send takes at least 1 unit, not {units}")
        self._units = self._unsent = units
        if self.held:
            return
        store, rules, now = self._engine.store, self._rules, self._engine.now()
        if rules.monthly_quota is not None and billable:  # counted, to price an overage too
            key, limit = quota_key(self._channel, rules, now), quota_limit(rules)
            most = _UNLIMITED if limit is None else limit
            if not await store.consume(key, units, most, now + QUOTA_RETENTION):
                await self._refuse(message, contact, billable)
            self._quota = key
        if rules.rate_limit is not None:
            key, ends = rate_window(rules, message.contact, now)
            try:
                taken = await store.consume(key, 1, rules.rate_limit.count, ends)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._give_back(units)
                raise
            if not taken:
                await self._give_back(units)
                await self._refuse(message, contact, billable)
            self._rate = key

    async def _refuse(self, message: Message, contact: Contact | None, billable: bool) -> None:
        decision = await self._engine.check(
            self._channel, self._rules, message, contact, billable=billable, units=self._units
        )
        raise PolicyRefusedError(decision)

    def sent(self, units: int) -> None:
        """Record that ``units`` went out (a multicast's chunk): a later failure gives
        back only the units of what did not."""
        self._unsent -= units

    async def __aenter__(self) -> Reservation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None and (self.idempotency_key is None or self._key_ttl is None):
            return  # out, and no key to remember: nothing to settle
        with anyio.CancelScope(shield=True):
            if isinstance(exc, ChatbridgeError) and not isinstance(exc, DeliveryUnknownError):
                await self._give_back(self._unsent)  # surely not (all) out
            elif isinstance(exc, DeliveryUnknownError):  # LINE's key is the exception's
                await self._remember(exc.idempotency_key or self.idempotency_key)
            else:  # out, or perhaps out: the units stay
                await self._remember(self.idempotency_key)

    async def _give_back(self, units: int) -> None:
        """Give back ``units`` of the quota, and the rate unit when nothing went out."""
        store = self._engine.store
        if self._quota is not None and units:
            await store.consume(self._quota, -units, None)
        if self._rate is not None and units == self._units:
            await store.consume(self._rate, -1, None)
        self._quota = self._rate = None

    async def _remember(self, idempotency_key: str | None) -> None:
        """Remember, as long as the provider remembers the key, that the send with
        ``idempotency_key`` took its units, so sends repeating the key take none."""
        if idempotency_key is not None and self._key_ttl is not None:
            expires_at = self._engine.now() + self._key_ttl
            key = held_key(self._channel, idempotency_key)
            await self._engine.store.consume(key, 1, 1, expires_at)


def held_key(channel: str, idempotency_key: str) -> str:
    """The store key marking that the send with ``idempotency_key`` took its units."""
    return f"{channel}:held:{idempotency_key}"
