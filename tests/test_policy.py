from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chatbridge import (
    Contact,
    FakeClock,
    Identity,
    MemoryStore,
    Message,
    MessageKind,
    PolicyEngine,
    PolicyRules,
    Reaction,
    RefusalReason,
    RemedyKind,
    Template,
    WindowState,
)
from chatbridge.errors import PolicyRefusedError
from chatbridge.policy import Overage, quota_key, quota_limit

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 5, 10, 12, tzinfo=UTC)
WA = Identity(channel="whatsapp", address="1")
RULES_24H = PolicyRules(window=timedelta(hours=24))


def setup() -> tuple[MemoryStore, FakeClock, PolicyEngine]:
    store, clock = MemoryStore(), FakeClock(T0)
    return store, clock, PolicyEngine(store, clock)


def text(to: Identity = WA) -> Message:
    return Message(contact=to, text="hi")


async def test_no_window_channel_allows_everything() -> None:
    _, _, engine = setup()
    assert (await engine.check("email", PolicyRules(), text())).allowed
    window = await engine.window("email", PolicyRules(), WA)
    assert window.state is WindowState.NOT_APPLICABLE


async def test_never_opened_window_refuses_free_form_but_allows_templates() -> None:
    _, _, engine = setup()
    decision = await engine.check("whatsapp", RULES_24H, text())
    assert decision.reason is RefusalReason.WINDOW_NEVER_OPENED
    assert decision.remedies[0].kind is RemedyKind.USE_TEMPLATE
    template = Message(contact=WA, template=Template(name="t", language="en"))
    assert (await engine.check("whatsapp", RULES_24H, template)).allowed


async def test_window_opens_and_closes_exactly_at_24h() -> None:
    store, clock, engine = setup()
    await store.update_contact_state(WA, last_inbound_at=T0)
    clock.advance(timedelta(hours=23, minutes=59))
    assert (await engine.check("whatsapp", RULES_24H, text())).allowed
    window = await engine.window("whatsapp", RULES_24H, WA)
    assert window.state is WindowState.OPEN and window.expires_at == T0 + timedelta(hours=24)
    clock.advance(timedelta(minutes=1))
    decision = await engine.check("whatsapp", RULES_24H, text())
    assert decision.reason is RefusalReason.WINDOW_CLOSED
    assert decision.since == T0 + timedelta(hours=24)
    assert "closed at 2026-05-11T12:00:00+00:00" in decision.explain()
    closed = await engine.window("whatsapp", RULES_24H, WA)
    assert closed.allowed == [MessageKind.TEMPLATE]


async def test_other_identities_of_the_contact_are_offered() -> None:
    _, _, engine = setup()
    email = Identity(channel="email", address="a@example.com")
    contact = Contact(name="Ann", identities=[WA, email])
    decision = await engine.check("whatsapp", RULES_24H, text(), contact)
    other = [r for r in decision.remedies if r.kind is RemedyKind.USE_OTHER_CHANNEL]
    assert other and other[0].identities == [email]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"opted_out": True}, RefusalReason.OPTED_OUT),
        ({"suppressed": "hard bounce"}, RefusalReason.SUPPRESSED),
        ({"follower": False}, RefusalReason.UNFOLLOWED),
    ],
)
async def test_state_refusals_beat_an_open_window(state: dict[str, object], reason: str) -> None:
    store, _, engine = setup()
    await store.update_contact_state(WA, last_inbound_at=T0, **state)
    assert (await engine.check("whatsapp", RULES_24H, text())).reason == reason


async def test_follower_rule() -> None:
    store, _, engine = setup()
    rules = PolicyRules(requires_follower=True)
    assert (await engine.check("line", rules, text())).reason is RefusalReason.NOT_A_FOLLOWER
    await store.update_contact_state(WA, follower=True)
    assert (await engine.check("line", rules, text())).allowed


async def test_quota_refusal_names_the_reset_date() -> None:
    store, clock, engine = setup()
    rules = PolicyRules(monthly_quota=2)
    await store.consume(quota_key("line", rules, clock.now()), 2, 2)
    decision = await engine.check("line", rules, text())
    assert decision.reason is RefusalReason.QUOTA_SPENT
    assert decision.until == datetime(2026, 6, 1, tzinfo=UTC)
    assert (await engine.check("line", rules, text(), billable=False)).allowed


def test_contact_has_one_identity_per_channel() -> None:
    with pytest.raises(ValueError, match="one identity per channel"):
        Contact(identities=[WA, Identity(channel="whatsapp", address="2")])


async def test_quota_month_follows_the_provider_timezone() -> None:
    store, clock, engine = setup()
    tokyo = PolicyRules(monthly_quota=1, quota_timezone="Asia/Tokyo")
    clock.set(datetime(2026, 5, 31, 16, tzinfo=UTC))  # already June 1st in Tokyo
    assert quota_key("line", tokyo, clock.now()) == "line:quota:2026-06"
    await store.consume(quota_key("line", tokyo, clock.now()), 1, 1)
    decision = await engine.check("line", tokyo, text())
    assert decision.until is not None and decision.until.date().isoformat() == "2026-07-01"


TAGGED = PolicyRules(
    window=timedelta(hours=24),
    outside_window=frozenset(),
    tags={"HUMAN_AGENT": timedelta(days=7), "ACCOUNT_UPDATE": None},
)


async def test_a_message_tag_has_its_own_window_and_is_offered_as_the_remedy() -> None:
    store, clock, engine = setup()
    await store.update_contact_state(WA, last_inbound_at=T0)
    clock.advance(timedelta(days=2))
    refused = await engine.check("messenger", TAGGED, text())
    assert refused.reason is RefusalReason.WINDOW_CLOSED
    offered = {r.tag: r.until for r in refused.remedies if r.kind is RemedyKind.USE_TAG}
    assert offered == {"HUMAN_AGENT": T0 + timedelta(days=7), "ACCOUNT_UPDATE": None}
    agent = Message(contact=WA, text="a person here", tag="HUMAN_AGENT")
    assert (await engine.check("messenger", TAGGED, agent)).allowed
    clock.advance(timedelta(days=5, seconds=1))
    assert not (await engine.check("messenger", TAGGED, agent)).allowed
    update = Message(contact=WA, text="your account", tag="ACCOUNT_UPDATE")
    assert (await engine.check("messenger", TAGGED, update)).allowed
    late = await engine.check("messenger", TAGGED, text())
    assert [r.tag for r in late.remedies if r.kind is RemedyKind.USE_TAG] == ["ACCOUNT_UPDATE"]


async def test_a_reaction_is_not_offered_a_message_tag() -> None:
    store, clock, engine = setup()
    await store.update_contact_state(WA, last_inbound_at=T0)
    clock.advance(timedelta(days=2))
    reaction = Message(contact=WA, reaction=Reaction(message_id="m1", emoji="+1"))
    refused = await engine.check("messenger", TAGGED, reaction)
    assert not [r for r in refused.remedies if r.kind is RemedyKind.USE_TAG]


PAID = PolicyRules(monthly_quota=2, overage=Overage(price=Decimal("5"), currency="JPY"))
CAPPED = PAID.model_copy(
    update={"overage": Overage(price=Decimal("5"), currency="JPY", cap=Decimal("10"))}
)


async def test_overage_is_allowed_with_its_projected_cost_and_a_warning() -> None:
    store, clock, engine = setup()
    key = quota_key("line", PAID, clock.now())
    within = await engine.check("line", PAID, text())
    assert within.allowed and within.cost is None and not within.warnings
    await store.consume(key, 2, None)
    past = await engine.check("line", PAID, text())
    assert past.allowed and past.cost is not None
    assert (past.cost.units, past.cost.amount, past.cost.month_amount) == (1, 5, 5)
    assert past.cost.currency == "JPY" and "5 JPY" in past.warnings[0]
    assert "warning:" in past.explain()
    assert (await engine.check("line", PAID, text(), billable=False)).cost is None
    three = await engine.check("line", PAID, text(), units=3)
    assert three.cost is not None and (three.cost.amount, three.cost.month_amount) == (15, 15)
    assert quota_limit(PAID) is None


async def test_a_multi_unit_send_pays_only_for_what_passes_the_included_count() -> None:
    store, clock, engine = setup()
    await store.consume(quota_key("line", PAID, clock.now()), 1, None)
    decision = await engine.check("line", PAID, text(), units=3)
    assert decision.cost is not None and decision.cost.units == 2
    assert decision.cost.amount == Decimal("10")


async def test_a_spending_cap_refuses_the_send_that_would_pass_it() -> None:
    store, clock, engine = setup()
    assert quota_limit(CAPPED) == 4  # 2 included + 10 JPY / 5 JPY
    await store.consume(quota_key("line", CAPPED, clock.now()), 3, None)
    last = await engine.check("line", CAPPED, text())
    assert last.allowed and last.cost is not None and last.cost.month_amount == 10
    await store.consume(quota_key("line", CAPPED, clock.now()), 1, None)
    refused = await engine.check("line", CAPPED, text())
    assert refused.reason is RefusalReason.SPENDING_CAP
    assert refused.cost is not None and refused.cost.month_amount == Decimal("15")
    assert refused.until == datetime(2026, 6, 1, tzinfo=UTC)
    kinds = [remedy.kind for remedy in refused.remedies]
    assert kinds == [RemedyKind.USE_REPLY, RemedyKind.WAIT_UNTIL, RemedyKind.RAISE_SPENDING_CAP]
    assert "spending cap of 10 JPY" in refused.explain()


async def test_a_reservation_counts_overage_and_stops_at_the_cap() -> None:
    store, clock, engine = setup()
    await store.update_contact_state(WA, follower=True)
    for _ in range(4):  # 2 included + 2 paid
        reservation = await engine.reservation("line", CAPPED)
        await reservation.take(text(), None, billable=True)
    assert await store.counter(quota_key("line", CAPPED, clock.now())) == 4
    with pytest.raises(PolicyRefusedError) as refused:
        await (await engine.reservation("line", CAPPED)).take(text(), None, billable=True)
    assert refused.value.decision.reason is RefusalReason.SPENDING_CAP
    assert await store.counter(quota_key("line", CAPPED, clock.now())) == 4


async def test_an_uncapped_overage_counts_every_send_and_refuses_none() -> None:
    store, clock, engine = setup()
    for _ in range(5):
        await (await engine.reservation("line", PAID)).take(text(), None, billable=True)
    assert await store.counter(quota_key("line", PAID, clock.now())) == 5
    decision = await engine.check("line", PAID, text())
    assert decision.allowed and decision.cost is not None and decision.cost.month_amount == 20


async def test_without_overage_the_quota_is_a_hard_limit_for_several_units() -> None:
    store, clock, engine = setup()
    rules = PolicyRules(monthly_quota=3)
    await store.consume(quota_key("line", rules, clock.now()), 2, None)
    assert (await engine.check("line", rules, text())).allowed
    decision = await engine.check("line", rules, text(), units=2)
    assert decision.reason is RefusalReason.QUOTA_SPENT and decision.cost is None
