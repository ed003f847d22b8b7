"""The policy engine: decides, before any network call, whether a send is allowed.

A channel declares its rules as data (:class:`PolicyRules`); the engine evaluates them
against the store and the clock and explains every refusal with a reason, the times
that matter and the remedies. Channels do not re-implement this arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chatbridge.clock import Clock
from chatbridge.models import Contact, Identity, Message, MessageKind, Window, WindowState
from chatbridge.store.base import ContactState, Store

if TYPE_CHECKING:
    from chatbridge.reservation import Reservation

#: Kinds of message a business can send (the others only ever arrive).
OUTBOUND_KINDS: tuple[MessageKind, ...] = (
    MessageKind.TEXT,
    MessageKind.MEDIA,
    MessageKind.LOCATION,
    MessageKind.CONTACTS,
    MessageKind.TEMPLATE,
    MessageKind.CARD,
    MessageKind.INTERACTIVE,
    MessageKind.REACTION,
)


class RateLimit(BaseModel):
    """At most ``count`` sends to one contact per ``period`` (fixed windows)."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(gt=0)
    period: timedelta


class Overage(BaseModel):
    """Billable sends past ``PolicyRules.monthly_quota`` are allowed, each at ``price``
    (in ``currency``, ISO 4217); ``cap`` is the most the month's overage may cost
    (None: no cap). A send that would pass the cap is refused (``SPENDING_CAP``)."""

    model_config = ConfigDict(frozen=True)

    price: Decimal = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3)
    cap: Decimal | None = Field(default=None, ge=0)


class PolicyRules(BaseModel):
    """What a channel allows, stated as data.

    - ``window``: how long after the customer's last message free-form sends are allowed;
      None means the channel has no window.
    - ``outside_window``: what may still be sent when the window is closed.
    - ``requires_follower``: the contact must follow / have added the account.
    - ``monthly_quota``: how many billable sends a calendar month allows (None: unlimited);
      ``quota_timezone`` is where the provider's month starts. With ``overage``, it is
      how many the plan includes: later ones are allowed at a price, with a warning and
      their projected cost in the decision.
    - ``rate_limit``: how often one contact may be sent to.
    - ``tags``: the provider's message tags; a message sent with one (``Message.tag``)
      is allowed for the tag's own window after the customer's last message instead of
      ``window`` (None: with no window at all). Refusals offer the usable tags.
    """

    model_config = ConfigDict(frozen=True)

    window: timedelta | None = None
    outside_window: frozenset[MessageKind] = frozenset({MessageKind.TEMPLATE})
    requires_follower: bool = False
    monthly_quota: int | None = None
    quota_timezone: str = "UTC"
    rate_limit: RateLimit | None = None
    tags: Mapping[str, timedelta | None] = Field(default_factory=dict)
    overage: Overage | None = None


class RefusalReason(StrEnum):
    WINDOW_CLOSED = "window_closed"
    WINDOW_NEVER_OPENED = "window_never_opened"
    NOT_A_FOLLOWER = "not_a_follower"
    UNFOLLOWED = "unfollowed"
    OPTED_OUT = "opted_out"
    SUPPRESSED = "suppressed"
    QUOTA_SPENT = "quota_spent"
    RATE_LIMITED = "rate_limited"
    SPENDING_CAP = "spending_cap"


class RemedyKind(StrEnum):
    USE_TEMPLATE = "use_template"
    WAIT_FOR_CUSTOMER = "wait_for_customer"
    WAIT_UNTIL = "wait_until"
    USE_OTHER_CHANNEL = "use_other_channel"
    USE_REPLY = "use_reply"
    USE_TAG = "use_tag"
    RAISE_SPENDING_CAP = "raise_spending_cap"


class Remedy(BaseModel):
    """One way to get the message through anyway."""

    kind: RemedyKind
    description: str
    until: AwareDatetime | None = None
    identities: list[Identity] = Field(default_factory=list)
    #: The message tag to send with (``USE_TAG``).
    tag: str | None = None


class Cost(BaseModel):
    """What a send costs past the plan's included messages (``Overage``)."""

    currency: str
    unit_price: Decimal
    #: This send's billable units past the included count, and their price.
    units: int
    amount: Decimal
    #: The month's overage cost with this send, and the cap it is held to (None: none).
    month_amount: Decimal
    cap: Decimal | None = None


class Decision(BaseModel):
    """The engine's answer for one send: allowed (perhaps with warnings, such as a paid
    overage and its ``cost``), or refused with reason and remedies."""

    allowed: bool
    channel: str
    contact: Identity
    kind: MessageKind
    reason: RefusalReason | None = None
    message: str = "allowed"
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    remedies: list[Remedy] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    cost: Cost | None = None

    def explain(self) -> str:
        """One readable paragraph: what was decided, why, and what to do instead."""
        if self.allowed:
            lines = [f"{self.kind} to {self.contact} is allowed"]
        else:
            lines = [f"{self.kind} to {self.contact} refused ({self.reason}): {self.message}"]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        lines += [f"  remedy: {remedy.description}" for remedy in self.remedies]
        return "\n".join(lines)


#: How long a month's quota counter is kept (it is never read after its month).
QUOTA_RETENTION = timedelta(days=62)


def quota_key(channel: str, rules: PolicyRules, now: datetime) -> str:
    """The counter key of ``channel``'s monthly quota for the month of ``now``."""
    return f"{channel}:quota:{_quota_month(rules, now):%Y-%m}"


def quota_limit(rules: PolicyRules) -> int | None:
    """The most billable sends ``rules`` allow a month: ``monthly_quota``, plus with an
    ``overage`` as many as its cap pays for (None: no limit)."""
    included = rules.monthly_quota
    if included is None or rules.overage is None:
        return included
    overage = rules.overage
    if overage.cap is None or overage.price == 0:
        return None
    try:
        return included + int(overage.cap // overage.price)
    except InvalidOperation:  # more sends than Decimal's precision counts: no limit
        return None


def rate_window(rules: PolicyRules, identity: Identity, now: datetime) -> tuple[str, datetime]:
    """The counter key of ``identity``'s current rate-limit window, and when it ends."""
    assert rules.rate_limit is not None
    period = rules.rate_limit.period.total_seconds()
    bucket = int(now.timestamp() // period)
    ends = datetime.fromtimestamp((bucket + 1) * period, now.tzinfo)
    return f"{identity.channel}:rate:{identity.address}:{bucket}", ends


def _quota_month(rules: PolicyRules, now: datetime) -> datetime:
    """``now`` in the provider's quota timezone."""
    return now.astimezone(ZoneInfo(rules.quota_timezone))


class PolicyEngine:
    """Evaluates :class:`PolicyRules` for a send against the store and the clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self._clock = clock

    def now(self) -> datetime:
        """The engine's clock reading."""
        return self._clock.now()

    async def reservation(
        self,
        channel: str,
        rules: PolicyRules,
        idempotency_key: str | None = None,
        key_ttl: timedelta | None = None,
    ) -> Reservation:
        """A :class:`~chatbridge.reservation.Reservation` for one send; ``key_ttl`` is
        how long the provider remembers ``idempotency_key`` (None: it has no keys)."""
        from chatbridge.reservation import Reservation, held_key

        held = idempotency_key is not None and (
            await self.store.counter(held_key(channel, idempotency_key)) > 0
        )
        return Reservation(self, channel, rules, idempotency_key, key_ttl, held)

    async def window(self, channel: str, rules: PolicyRules, identity: Identity) -> Window:
        """The current customer-service window of ``identity``."""
        state = await self.store.contact_state(identity)
        return self._window(channel, rules, identity, state, self._clock.now())

    @staticmethod
    def _window(
        channel: str, rules: PolicyRules, identity: Identity, state: ContactState, now: datetime
    ) -> Window:
        if rules.window is None:
            return Window(
                channel=channel,
                contact=identity,
                state=WindowState.NOT_APPLICABLE,
                checked_at=now,
                allowed=list(OUTBOUND_KINDS),
            )
        expires = _expires(rules.window, state)
        is_open = expires is not None and now < expires
        return Window(
            channel=channel,
            contact=identity,
            state=WindowState.OPEN if is_open else WindowState.CLOSED,
            checked_at=now,
            opened_at=state.last_inbound_at,
            expires_at=expires,
            allowed=list(OUTBOUND_KINDS) if is_open else _outside_window(rules),
        )

    async def check(
        self,
        channel: str,
        rules: PolicyRules,
        message: Message,
        contact: Contact | None = None,
        *,
        billable: bool = True,
        units: int = 1,
    ) -> Decision:
        """Decide whether ``message`` may be sent now.

        ``contact`` (the whole person) lets the engine suggest their other channels.
        ``billable`` says whether this send would count against a quota (a LINE reply
        does not, a push does); ``units`` is how many it would count (a multicast's
        recipients). Past an ``overage`` plan's included sends, the decision carries
        the projected ``cost`` and a warning, or refuses when the cap would be passed.
        """
        if units < 1:
            raise ValueError(f"a send counts at least 1 unit, not {units}")
        now = self._clock.now()
        identity = message.contact
        state = await self.store.contact_state(identity)
        refusal = self._refusal(channel, rules, message, state, now)
        cost: Cost | None = None
        included = rules.monthly_quota
        if refusal is None and billable and included is not None:
            used = await self.store.counter(quota_key(channel, rules, now))
            month = _quota_month(rules, now)
            if rules.overage is None:
                if used + units > included:
                    refusal = _quota_refusal(included, used, units, month)
            else:
                cost = _cost(rules.overage, included, used, units)
                if cost is not None and cost.cap is not None and cost.month_amount > cost.cap:
                    refusal = _cap_refusal(cost, used, month)
        if refusal is None and rules.rate_limit is not None:
            key, ends = rate_window(rules, identity, now)
            if await self.store.counter(key) >= rules.rate_limit.count:
                refusal = _rate_refusal(rules.rate_limit, ends)
        if refusal is None:
            return Decision(
                allowed=True,
                channel=channel,
                contact=identity,
                kind=message.kind,
                warnings=[_cost_warning(cost)] if cost is not None else [],
                cost=cost,
            )
        remedies = refusal.remedies
        others = contact.others(channel) if contact else []
        if others:
            remedies.append(
                Remedy(
                    kind=RemedyKind.USE_OTHER_CHANNEL,
                    description="reach the same person on "
                    + ", ".join(str(other) for other in others),
                    identities=others,
                )
            )
        return Decision(
            allowed=False,
            channel=channel,
            contact=identity,
            kind=message.kind,
            reason=refusal.reason,
            message=refusal.text,
            since=refusal.since,
            until=refusal.until,
            remedies=remedies,
            cost=cost,
        )

    def _refusal(
        self,
        channel: str,
        rules: PolicyRules,
        message: Message,
        state: ContactState,
        now: datetime,
    ) -> _Refusal | None:
        if state.suppressed:
            text = f"the address is suppressed ({state.suppressed})"
            return _Refusal(RefusalReason.SUPPRESSED, text)
        if state.opted_out:
            text = "the customer opted out of messages on this channel"
            return _Refusal(RefusalReason.OPTED_OUT, text, [_wait("opts back in")])
        if state.follower is False:
            text = "the customer unfollowed or blocked the account"
            return _Refusal(RefusalReason.UNFOLLOWED, text, [_wait("follows the account again")])
        if rules.requires_follower and state.follower is None and state.last_inbound_at is None:
            text = "the customer has never followed the account or written to it"
            return _Refusal(RefusalReason.NOT_A_FOLLOWER, text, [_wait("follows the account")])
        if message.tag is not None and message.tag in rules.tags:
            tagged = rules.tags[message.tag]  # the tag's own window replaces the channel's
            rules = rules.model_copy(update={"window": tagged, "outside_window": frozenset()})
        if rules.window is None:
            return None
        expires = _expires(rules.window, state)
        if (expires is not None and now < expires) or message.kind in _outside_window(rules):
            return None  # the window is open, or the kind is allowed outside it
        window = self._window(channel, rules, message.contact, state, now)
        remedies = [_wait("writes again, which reopens the window")]
        if MessageKind.TEMPLATE in rules.outside_window:
            template = "send an approved template message instead"
            remedies.insert(0, Remedy(kind=RemedyKind.USE_TEMPLATE, description=template))
        if message.tag is None and message.kind is not MessageKind.REACTION:  # no tag
            remedies[:0] = _tag_remedies(rules.tags, state.last_inbound_at, now)
        allowed = f"{', '.join(window.allowed)} messages" if window.allowed else "nothing"
        if window.expires_at is None:
            text = f"the customer has never written, so only {allowed} may be sent"
            return _Refusal(RefusalReason.WINDOW_NEVER_OPENED, text, remedies)
        hours = rules.window.total_seconds() / 3600
        text = (
            f"the {hours:g}-hour service window closed at {window.expires_at.isoformat()}; "
            f"outside it only {allowed} may be sent"
        )
        return _Refusal(RefusalReason.WINDOW_CLOSED, text, remedies, since=window.expires_at)


def _expires(window: timedelta, state: ContactState) -> datetime | None:
    """When the service window of ``window`` closes (None: it never opened)."""
    return state.last_inbound_at + window if state.last_inbound_at else None


def _outside_window(rules: PolicyRules) -> list[MessageKind]:
    """The kinds ``rules`` allow outside the service window."""
    return [kind for kind in OUTBOUND_KINDS if kind in rules.outside_window]


@dataclass
class _Refusal:
    reason: RefusalReason
    text: str
    remedies: list[Remedy] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None


def _tag_remedies(
    tags: Mapping[str, timedelta | None], last_inbound_at: datetime | None, now: datetime
) -> list[Remedy]:
    """A remedy per message tag still usable now, with the end of its window."""
    remedies = []
    for tag, window in tags.items():
        until = last_inbound_at + window if window and last_inbound_at else None
        if window is None or (until is not None and now < until):
            text = f"send it with the {tag} message tag (Message.tag), if its use fits"
            remedies.append(Remedy(kind=RemedyKind.USE_TAG, description=text, until=until, tag=tag))
    return remedies


def _wait(until: str) -> Remedy:
    return Remedy(kind=RemedyKind.WAIT_FOR_CUSTOMER, description=f"wait until the customer {until}")


def _next_month(now: datetime) -> datetime:
    return (now.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )


def _month_remedies(next_month: datetime) -> list[Remedy]:
    return [
        Remedy(
            kind=RemedyKind.USE_REPLY,
            description="answer the customer's next message with a free reply",
        ),
        Remedy(
            kind=RemedyKind.WAIT_UNTIL,
            description=f"wait for the quota to reset on {next_month.date().isoformat()}",
            until=next_month,
        ),
    ]


def _quota_refusal(limit: int, used: int, units: int, now: datetime) -> _Refusal:
    next_month = _next_month(now)
    wanted = f"; {units} asked, {max(0, limit - used)} left" if units > 1 else ""
    return _Refusal(
        RefusalReason.QUOTA_SPENT,
        f"the monthly quota of {limit} billable messages is spent ({used} used{wanted})",
        _month_remedies(next_month),
        until=next_month,
    )


def _cost(overage: Overage, included: int, used: int, units: int) -> Cost | None:
    """The overage cost of sending ``units`` more when ``used`` of ``included`` are
    spent this month (None: all within the included count)."""
    month_units = max(0, used + units - included)
    if month_units == 0:
        return None
    units_over = min(units, month_units)
    return Cost(
        currency=overage.currency,
        unit_price=overage.price,
        units=units_over,
        amount=overage.price * units_over,
        month_amount=overage.price * month_units,
        cap=overage.cap,
    )


def _cost_warning(cost: Cost) -> str:
    text = (
        f"past the plan's included messages: {cost.units} at {cost.unit_price} "
        f"{cost.currency} = {cost.amount} {cost.currency} "
        f"(this month's overage {cost.month_amount} {cost.currency}"
    )
    cap = f" of a {cost.cap} {cost.currency} cap)" if cost.cap is not None else ")"
    return text + cap


def _cap_refusal(cost: Cost, used: int, now: datetime) -> _Refusal:
    next_month = _next_month(now)
    remedies = _month_remedies(next_month)
    remedies.append(
        Remedy(
            kind=RemedyKind.RAISE_SPENDING_CAP,
            description=f"raise the spending cap of {cost.cap} {cost.currency}",
        )
    )
    return _Refusal(
        RefusalReason.SPENDING_CAP,
        f"sending would bring this month's overage to {cost.month_amount} {cost.currency}, "
        f"past the spending cap of {cost.cap} {cost.currency} ({used} messages sent)",
        remedies,
        until=next_month,
    )


def _rate_refusal(limit: RateLimit, ends: datetime) -> _Refusal:
    return _Refusal(
        RefusalReason.RATE_LIMITED,
        f"at most {limit.count} messages per {limit.period} to one number",
        [
            Remedy(
                kind=RemedyKind.WAIT_UNTIL,
                description=f"wait until {ends.isoformat()}",
                until=ends,
            )
        ],
        until=ends,
    )
