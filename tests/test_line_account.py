"""LINE account features: plans (with overage and a spending cap in the policy), the
loading animation, user profiles, rich menus and their aliases; against the loopback
fake, and the fake driven by line-bot-sdk-python through the sandbox."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from linebot.v3 import messaging
from pydantic import ValidationError

from chatbridge import FakeClock, Identity, Message, PolicyRefusedError, RefusalReason
from chatbridge.errors import (
    ConfigurationError,
    InvalidAddressError,
    MessageInvalidError,
    ProviderError,
)
from chatbridge.line import LineChannel, kit, outbound, plans, profile, richmenu
from chatbridge.line.fake import FakeLineAPI
from chatbridge.line.fake_rules import IMAGE_REFUSED, ONLY_USERS
from chatbridge.line.richmenu import (
    RichMenu,
    RichMenuAlias,
    RichMenuArea,
    RichMenuBounds,
    RichMenuSize,
    check_image,
    image_size,
)
from chatbridge.policy import quota_key
from tests.loopback import cli_server

CUSTOMER = kit.CUSTOMER
GROUP = "C" + "0" * 32


def png(width: int, height: int) -> bytes:
    """The header of a PNG of ``width`` x ``height`` (all LINE's size checks read)."""
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0" * 4


def jpeg(width: int, height: int) -> bytes:
    """A JPEG's SOI, an APP0 segment and a SOF0 header of ``width`` x ``height``."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\0" * 9
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof


MENU = RichMenu(
    size=RichMenuSize(width=2500, height=843),
    selected=True,
    name="support",
    chat_bar_text="Menu",
    areas=[
        RichMenuArea(
            bounds=RichMenuBounds(x=0, y=0, width=1250, height=843),
            action={"type": "postback", "data": "talk-to-agent"},
        )
    ],
)


# -- plans --------------------------------------------------------------------------------

SEED_TABLE = {
    # (region, plan): (included, overage price or None)
    ("JP", "free"): (1000, None),
    ("TW", "free"): (500, None),
    ("TH", "free"): (1000, None),
    ("global", "free"): (500, None),
    ("JP", "light"): (15000, "5"),
    ("TW", "light"): (4000, "0.2"),
    ("TH", "light"): (15000, "0.08"),
    ("global", "light"): (15000, "0.05"),
    ("JP", "standard"): (45000, "3"),
    ("TW", "standard"): (25000, "0.15"),
    ("TH", "standard"): (35000, "0.04"),
    ("global", "standard"): (45000, "0.03"),
}
CURRENCIES = {"JP": "JPY", "TW": "TWD", "TH": "THB", "global": "USD"}


def test_the_seed_table_is_a_preset_exactly_as_given() -> None:
    seed = plans.PRESETS["seed-2019"]
    assert len(seed.plans) == len(SEED_TABLE)
    for (region, name), (included, overage) in SEED_TABLE.items():
        plan = seed.plan(region, name)
        assert plan.included == included
        assert plan.overage == (Decimal(overage) if overage else None)
        assert plan.currency == CURRENCIES[region]


def test_every_preset_names_its_sources_and_date() -> None:
    assert set(plans.PRESETS) == {
        "seed-2019",
        "jp-2023-06",
        "tw-2023-09",
        "th-2024-08",
        "global-2026",
    }
    for preset in plans.PRESETS.values():
        assert preset.sources and preset.as_of.year >= 2019
    jp = plans.find("jp-2023-06", "JP", "standard")
    assert (jp.included, jp.monthly_fee, jp.overage, jp.tiered) == (30000, 15000, 3, True)
    assert plans.find("jp-2023-06", "jp", "Communication").overage is None
    thai = {p.name: (p.included, p.monthly_fee, p.overage) for p in plans.TH_2024.plans}
    assert thai == {
        "free": (300, 0, None),
        "basic": (15000, 1280, Decimal("0.10")),
        "pro": (35000, 1780, Decimal("0.06")),
    }
    assert {p.currency for p in plans.TH_2024.plans} == {"THB"}
    other = {p.name: (p.included, p.monthly_fee, p.overage) for p in plans.GLOBAL_2026.plans}
    assert other == {
        "communication": (500, 0, None),
        "light": (10000, 50, None),
        "standard": (40000, 150, Decimal("0.05")),
    }
    with pytest.raises(ConfigurationError, match="no JP/premium"):
        plans.find("jp-2023-06", "JP", "premium")
    with pytest.raises(ConfigurationError, match="no LINE plan preset"):
        plans.find("jp-1999", "JP", "free")


def test_a_spending_cap_needs_a_plan_with_overage() -> None:
    free = plans.find("jp-2023-06", "JP", "communication")
    with pytest.raises(ValidationError, match="spending_cap"):
        kit.CONFIG.model_validate(
            {**kit.CONFIG.model_dump(), "plan": free, "spending_cap": Decimal(100)}
        )
    with pytest.raises(ConfigurationError):
        free.overage_rules(Decimal(1))


@dataclass
class Setup:
    channel: LineChannel
    api: FakeLineAPI
    clock: FakeClock
    router: respx.MockRouter

    async def befriend(self, user: str = CUSTOMER) -> None:
        """Follow + message from ``user``, then let the reply token lapse (pushes)."""
        for body in kit.open_conversation(user, self.clock.now()):
            await self.channel.receive(kit.sign(kit.webhook(body)))
        self.clock.advance(kit.CONFIG.reply_token_ttl)

    async def used(self, count: int) -> None:
        """Count ``count`` billable sends this month, as if sent."""
        key = quota_key("line", self.channel.rules, self.clock.now())
        await self.channel.store.consume(key, count, None)


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    routers: list[Any] = []
    channels: list[LineChannel] = []

    def build(**config: Any) -> Setup:
        cfg = kit.CONFIG.model_copy(update=config)
        clock = FakeClock()
        channel, api = LineChannel(cfg, clock=clock), FakeLineAPI(cfg, quota=None)
        router = respx.mock(assert_all_mocked=True, assert_all_called=False)
        router.__enter__()
        for host in api.hosts:
            router.route(host=host).mock(side_effect=api)
        routers.append(router)
        channels.append(channel)
        return Setup(channel, api, clock, router)

    yield build
    for channel in channels:
        await channel.aclose()
    for router in routers:
        router.__exit__(None, None, None)


@pytest.fixture
def line(make: Any) -> Setup:
    return make()  # type: ignore[no-any-return]


def to(user: str = CUSTOMER) -> Message:
    return Message(contact=Identity(channel="line", address=user), text="your order shipped")


@pytest.mark.anyio
async def test_a_free_plan_refuses_past_its_included_messages(make: Any) -> None:
    setup = make(plan=plans.find("seed-2019", "TW", "free"))
    await setup.befriend()
    await setup.used(499)
    decision = await setup.channel.check(to())
    assert decision.allowed and decision.cost is None
    await setup.channel.send(to())
    with pytest.raises(PolicyRefusedError) as refused:
        await setup.channel.send(to())
    assert refused.value.decision.reason is RefusalReason.QUOTA_SPENT
    assert len(setup.api.pushes) == 1


@pytest.mark.anyio
async def test_a_paid_plan_sends_past_its_quota_and_reports_the_cost(make: Any) -> None:
    setup = make(plan=plans.find("seed-2019", "JP", "light"))
    assert "light" in repr(setup.channel) and "token" not in repr(setup.channel)
    await setup.befriend()
    await setup.used(15000)
    decision = await setup.channel.check(to())
    assert decision.allowed and decision.cost is not None
    assert (decision.cost.amount, decision.cost.currency) == (Decimal(5), "JPY")
    assert "past the plan's included messages" in decision.warnings[0]
    receipt = await setup.channel.send(to())  # the caller learns what it cost
    assert receipt.warnings == decision.warnings
    await setup.channel.send(to())
    after = await setup.channel.check(to())
    assert after.cost is not None and after.cost.month_amount == Decimal(15)
    assert len(setup.api.pushes) == 2


@pytest.mark.anyio
async def test_a_spending_cap_refuses_before_any_call(make: Any) -> None:
    setup = make(plan=plans.find("seed-2019", "global", "standard"), spending_cap=Decimal("0.06"))
    await setup.befriend()
    await setup.used(45000)
    await setup.channel.send(to())  # US$0.03
    await setup.channel.send(to())  # US$0.06: the cap, not past it
    calls = len(setup.router.calls)
    with pytest.raises(PolicyRefusedError) as refused:
        await setup.channel.send(to())
    decision = refused.value.decision
    assert decision.reason is RefusalReason.SPENDING_CAP
    assert decision.cost is not None and decision.cost.month_amount == Decimal("0.09")
    assert len(setup.router.calls) == calls
    # A reply is free, cap or not.
    setup.clock.advance(kit.CONFIG.reply_token_ttl)
    for body in kit.open_conversation(CUSTOMER, setup.clock.now()):
        await setup.channel.receive(kit.sign(kit.webhook(body)))
    await setup.channel.send(to())
    assert len(setup.api.replies) == 1


@pytest.mark.anyio
async def test_multicast_overage_is_counted_per_recipient_and_capped(make: Any) -> None:
    setup = make(plan=plans.find("seed-2019", "TH", "standard"), spending_cap=Decimal("0.08"))
    users = [f"U{i:032x}" for i in range(3)]
    for user in users:
        await setup.channel.store.update_contact_state(setup.channel.identity(user), follower=True)
    await setup.used(34999)
    result = await setup.channel.multicast(to(), [setup.channel.identity(u) for u in users])
    assert len(result.sent) == 3  # 1 included + 2 at ฿0.04 = ฿0.08
    again = await setup.channel.multicast(to(), [setup.channel.identity(users[0])])
    assert not again.sent and again.refused[0].reason is RefusalReason.SPENDING_CAP
    assert len(setup.api.multicasts) == 1


@pytest.mark.anyio
async def test_a_multicast_reports_its_overage_cost_as_a_push_does(make: Any) -> None:
    setup = make(plan=plans.find("th-2024-08", "TH", "basic"), spending_cap=Decimal("0.30"))
    users = [setup.channel.identity(f"U{i:032x}") for i in range(5)]
    for user in users:
        await setup.channel.store.update_contact_state(user, follower=True)
    await setup.used(14999)
    within = await setup.channel.multicast(to(), users[:1])  # the 15,000th: included
    assert within.cost is None and not within.warnings
    result = await setup.channel.multicast(to(), users[1:3])  # 2 at ฿0.10
    assert result.cost is not None
    cost = result.cost
    assert (cost.units, cost.amount, cost.month_amount) == (2, Decimal("0.2"), Decimal("0.2"))
    assert result.warnings and "0.10 THB" in result.warnings[0]
    calls = len(setup.router.calls)
    with pytest.raises(PolicyRefusedError) as capped:  # each fits the cap, the 2 do not
        await setup.channel.multicast(to(), users[3:5])
    decision = capped.value.decision
    assert decision.reason is RefusalReason.SPENDING_CAP
    assert decision.cost is not None and decision.cost.month_amount == Decimal("0.40")
    assert len(setup.router.calls) == calls and len(setup.api.multicasts) == 2


# -- loading animation and profile --------------------------------------------------------


@pytest.mark.anyio
async def test_typing_shows_the_loading_animation(line: Setup) -> None:
    await line.channel.typing(line.channel.identity(CUSTOMER))
    await line.channel.typing(line.channel.identity(CUSTOMER), seconds=60)
    assert line.api.loading == [
        {"chatId": CUSTOMER, "loadingSeconds": 5},
        {"chatId": CUSTOMER, "loadingSeconds": 60},
    ]
    request = line.router.calls[-1].request
    assert request.url == "https://api.line.me/v2/bot/chat/loading/start"
    for seconds in (0, 7, 65):
        with pytest.raises(MessageInvalidError, match="multiple of 5"):
            await line.channel.typing(line.channel.identity(CUSTOMER), seconds=seconds)
    with pytest.raises(InvalidAddressError):
        await line.channel.typing(line.channel.identity(GROUP))
    with pytest.raises(MessageInvalidError):
        await line.channel.typing(Identity(channel="sms", address="+15555550100"))
    assert len(line.api.loading) == 2


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"chatId": GROUP, "loadingSeconds": 5}, "chatId"),
        ({"loadingSeconds": 5}, "chatId"),
        ({"chatId": CUSTOMER, "loadingSeconds": 3}, "loadingSeconds"),
        ({"chatId": CUSTOMER, "loadingSeconds": 61}, "loadingSeconds"),
        ({"chatId": CUSTOMER, "loadingSeconds": "5"}, "loadingSeconds"),
    ],
)
def test_the_fake_refuses_loading_animations_line_refuses(body: dict[str, Any], where: str) -> None:
    api = FakeLineAPI(kit.CONFIG)
    request = httpx.Request(
        "POST",
        "https://api.line.me/v2/bot/chat/loading/start",
        json=body,
        headers={"authorization": f"Bearer {kit.CONFIG.channel_access_token.get_secret_value()}"},
    )
    answer = api(request)
    assert answer.status_code == 400
    error = answer.json()
    assert where in error["message"] or where in [d["property"] for d in error["details"]]
    assert not api.loading


@pytest.mark.anyio
async def test_profile_has_name_picture_status_and_language(line: Setup) -> None:
    line.api.customer_wrote(CUSTOMER)
    line.api.profiles[CUSTOMER] = {
        "displayName": "Aiko",
        "pictureUrl": "https://profile.line-scdn.net/abc",
        "statusMessage": "Hello",
        "language": "ja",
    }
    profile = await line.channel.profile(line.channel.identity(CUSTOMER))
    assert (profile.display_name, profile.user_id, profile.language) == ("Aiko", CUSTOMER, "ja")
    assert profile.picture_url and profile.status_message == "Hello"
    stranger = "U" + "1" * 32
    with pytest.raises(ProviderError) as unknown:
        await line.channel.profile(line.channel.identity(stranger))
    assert unknown.value.http_status == 404
    with pytest.raises(InvalidAddressError):
        await line.channel.profile(line.channel.identity(GROUP))


# -- rich menus -------------------------------------------------------------------------


def test_image_checks_follow_lines_limits() -> None:
    assert image_size(png(2500, 1686)) == (2500, 1686)
    assert image_size(jpeg(1200, 405)) == (1200, 405)
    assert image_size(b"GIF89a") is None
    check_image(png(2500, 843), "image/png")
    check_image(jpeg(800, 250), "image/jpeg")
    for data, kind in [
        (png(2500, 843), "image/gif"),  # JPEG or PNG only
        (png(799, 250), "image/png"),  # 800 to 2500 wide
        (png(2501, 843), "image/png"),
        (png(800, 249), "image/png"),  # at least 250 high
        (png(1000, 700), "image/png"),  # width / height at least 1.45
        (png(2500, 843) + b"\0" * (1024 * 1024), "image/png"),  # at most 1 MB
        (b"not an image", "image/png"),
    ]:
        with pytest.raises(MessageInvalidError):
            check_image(data, kind)


def test_rich_menu_objects_keep_lines_limits() -> None:
    with pytest.raises(ValidationError):
        MENU.model_validate({**MENU.wire(), "chatBarText": "x" * 15})
    with pytest.raises(ValidationError):
        MENU.model_validate({**MENU.wire(), "name": "x" * 301})
    with pytest.raises(ValidationError):
        MENU.model_validate({**MENU.wire(), "areas": [MENU.wire()["areas"][0]] * 21})
    assert MENU.wire()["chatBarText"] == "Menu"


@pytest.mark.anyio
async def test_rich_menu_lifecycle(line: Setup) -> None:
    menus = line.channel.rich_menus
    menu_id = await menus.create(MENU)
    assert menu_id.startswith("richmenu-")
    assert (await menus.get(menu_id)).chat_bar_text == "Menu"
    assert [m.rich_menu_id for m in await menus.menus()] == [menu_id]
    with pytest.raises(ProviderError, match="upload richmenu image"):
        await menus.set_default(menu_id)  # no image yet
    await menus.upload_image(menu_id, png(2500, 843), "image/png")
    upload = line.router.calls[-1].request
    assert upload.url.host == "api-data.line.me" and upload.headers["content-type"] == "image/png"
    assert await menus.download_image(menu_id) == png(2500, 843)
    with pytest.raises(ProviderError, match="already been uploaded"):
        await menus.upload_image(menu_id, png(2500, 843), "image/png")
    assert await menus.default() is None
    await menus.set_default(menu_id)
    assert await menus.default() == menu_id
    await menus.link(CUSTOMER, menu_id)
    assert await menus.of_user(CUSTOMER) == menu_id
    await menus.unlink(CUSTOMER)
    assert await menus.of_user(CUSTOMER) is None
    await menus.clear_default()
    assert await menus.default() is None
    await menus.delete(menu_id)
    with pytest.raises(ProviderError) as gone:
        await menus.get(menu_id)
    assert gone.value.http_status == 404


@pytest.mark.anyio
async def test_rich_menu_aliases(line: Setup) -> None:
    menus = line.channel.rich_menus
    first, second = await menus.create(MENU), await menus.create(MENU)
    for menu_id in (first, second):
        await menus.upload_image(menu_id, jpeg(2500, 1686), "image/jpeg")
    await menus.create_alias("richmenu-alias-a", first)
    with pytest.raises(ProviderError, match="conflict"):
        await menus.create_alias("richmenu-alias-a", second)
    assert (await menus.get_alias("richmenu-alias-a")).rich_menu_id == first
    await menus.update_alias("richmenu-alias-a", second)
    aliases = await menus.aliases()
    assert [(a.rich_menu_alias_id, a.rich_menu_id) for a in aliases] == [
        ("richmenu-alias-a", second)
    ]
    await menus.delete_alias("richmenu-alias-a")
    assert await menus.aliases() == []
    with pytest.raises(ProviderError) as missing:
        await menus.get_alias("richmenu-alias-a")
    assert missing.value.http_status == 404
    with pytest.raises(MessageInvalidError, match="not a LINE rich menu alias id"):
        await menus.create_alias("x" * 33, first)
    with pytest.raises(MessageInvalidError):
        await menus.get_alias("../richmenu")


@pytest.mark.anyio
async def test_the_fake_refuses_uploads_to_the_wrong_host_and_bad_menus(line: Setup) -> None:
    menu_id = await line.channel.rich_menus.create(MENU)
    auth = {"authorization": f"Bearer {kit.CONFIG.channel_access_token.get_secret_value()}"}
    wrong_host = httpx.Request(
        "POST",
        f"https://api.line.me/v2/bot/richmenu/{menu_id}/content",
        content=png(2500, 843),
        headers={**auth, "content-type": "image/png"},
    )
    assert line.api(wrong_host).status_code == 404
    gif = httpx.Request(
        "POST",
        f"https://api-data.line.me/v2/bot/richmenu/{menu_id}/content",
        content=b"GIF89a",
        headers={**auth, "content-type": "image/gif"},
    )
    assert line.api(gif).status_code == 415
    tiny = httpx.Request(
        "POST",
        f"https://api-data.line.me/v2/bot/richmenu/{menu_id}/content",
        content=png(400, 200),
        headers={**auth, "content-type": "image/png"},
    )
    assert line.api(tiny).status_code == 400
    bad = {**MENU.wire(), "chatBarText": "x" * 15, "areas": []}
    answer = line.api(
        httpx.Request("POST", "https://api.line.me/v2/bot/richmenu", json=bad, headers=auth)
    )
    assert answer.status_code == 400
    assert [d["property"] for d in answer.json()["details"]] == ["chatBarText"]
    link = httpx.Request(
        "POST", f"https://api.line.me/v2/bot/user/{GROUP}/richmenu/{menu_id}", headers=auth
    )
    assert line.api(link).status_code == 400


# -- the fake reads LINE's rules itself --------------------------------------------------


async def _multicast_501(setup: Setup) -> None:
    users = [setup.channel.identity(f"U{i:032x}") for i in range(501)]
    for user in users:
        await setup.channel.store.update_contact_state(user, follower=True)
    await setup.channel.multicast(to(), users)


async def _send_six(setup: Setup) -> None:
    await setup.befriend()
    await setup.channel.send_all([to()] * 6)


async def _loading_7s(setup: Setup) -> None:
    await setup.channel.typing(setup.channel.identity(CUSTOMER), seconds=7)


async def _square_image(setup: Setup) -> None:
    menu_id = await setup.channel.rich_menus.create(MENU)
    await setup.channel.rich_menus.upload_image(menu_id, png(1000, 1000), "image/png")


async def _big_image(setup: Setup) -> None:
    menu_id = await setup.channel.rich_menus.create(MENU)
    padded = png(2500, 843) + b"\0" * (1024 * 1024)
    await setup.channel.rich_menus.upload_image(menu_id, padded, "image/png")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("module", "name", "wrong", "act"),
    [
        (outbound, "MAX_MULTICAST_RECIPIENTS", 600, _multicast_501),
        (outbound, "MAX_MESSAGES_PER_REQUEST", 6, _send_six),
        (profile, "LOADING_SECONDS", range(1, 61), _loading_7s),
        (richmenu, "IMAGE_MIN_RATIO", 1.0, _square_image),
        (richmenu, "IMAGE_MAX_BYTES", 4 * 1024 * 1024, _big_image),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
async def test_a_client_limit_read_wrong_is_refused_by_the_fake(
    make: Any, monkeypatch: pytest.MonkeyPatch, module: Any, name: str, wrong: Any, act: Any
) -> None:
    """The fake states LINE's limits itself (``fake_rules``): a wrong client constant
    lets the request out, and the fake refuses it as LINE would."""
    setup = make(monthly_quota=None)
    monkeypatch.setattr(module, name, wrong)
    with pytest.raises(ProviderError) as refused:
        await act(setup)
    assert refused.value.http_status == 400
    sent = (setup.api.multicasts, setup.api.pushes, setup.api.loading, setup.api.rich_menu_images)
    assert not any(sent)


def _call(api: FakeLineAPI, method: str, url: str, **kwargs: Any) -> httpx.Response:
    token = kit.CONFIG.channel_access_token.get_secret_value()
    headers = {"authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return api(httpx.Request(method, url, headers=headers, **kwargs))


def test_the_fake_answers_with_the_error_bodies_lines_reference_shows() -> None:
    api, base = FakeLineAPI(kit.CONFIG), "https://api.line.me/v2/bot"
    seconds = _call(
        api, "POST", f"{base}/chat/loading/start", json={"chatId": CUSTOMER, "loadingSeconds": 61}
    )
    assert [d["message"] for d in seconds.json()["details"]] == [
        "Must be between 5 and 60",
        "must be a multiple of five",
    ]
    group = _call(api, "POST", f"{base}/chat/loading/start", json={"chatId": GROUP})
    assert group.json()["details"] == [{"message": ONLY_USERS, "property": "chatId"}]
    multicast = {"to": [CUSTOMER, GROUP], "messages": [{"type": "text", "text": "hi"}]}
    answer = _call(api, "POST", f"{base}/message/multicast", json=multicast)  # users only
    assert answer.json()["message"].startswith("The property, to[1], in the request body")
    menu_id = _call(api, "POST", f"{base}/richmenu", json=MENU.wire()).json()["richMenuId"]
    alias = {"richMenuAliasId": "a", "richMenuId": menu_id}
    imageless = _call(api, "POST", f"{base}/richmenu/alias", json=alias)
    assert imageless.json() == {"message": "richmenu not found", "details": []}
    malformed = _call(api, "POST", f"{base}/richmenu/alias", json={**alias, "richMenuId": "x"})
    assert malformed.json()["details"] == [
        {"message": "invalid richMenuId", "property": "richMenuId"}
    ]
    unnamed = {k: v for k, v in MENU.wire().items() if k != "name"}
    missing = _call(api, "POST", f"{base}/richmenu", json=unnamed)
    assert missing.json()["details"] == [{"message": "must be specified", "property": "name"}]
    image = png(2500, 843) + b"\0" * (1024 * 1024)  # over 1 MB
    upload = f"https://api-data.line.me/v2/bot/richmenu/{menu_id}/content"
    too_big = _call(api, "POST", upload, content=image, headers={"content-type": "image/png"})
    assert (too_big.status_code, too_big.json()["message"]) == (400, IMAGE_REFUSED)
    for path, text in [
        ("/user/all/richmenu", "no default richmenu"),
        (f"/user/{CUSTOMER}/richmenu", "the user has no richmenu"),
        ("/richmenu/alias/a", "richmenu alias not found"),
    ]:
        answer = _call(api, "GET", base + path)
        assert (answer.status_code, answer.json()) == (404, {"message": text, "details": []})


# -- the official SDK against the sandbox ------------------------------------------------


@pytest.fixture(scope="module")
def sdk() -> Iterator[tuple[Any, Any, str]]:
    token = kit.CONFIG.channel_access_token.get_secret_value()
    with cli_server("sandbox") as (url, _):
        configuration = messaging.Configuration(access_token=token, host=f"{url}/line")
        with messaging.ApiClient(configuration) as client:
            yield messaging.MessagingApi(client), messaging.MessagingApiBlob(client), url


def test_line_bot_sdk_shows_the_loading_animation_and_reads_a_profile(
    sdk: tuple[Any, Any, str],
) -> None:
    api, _, url = sdk
    request = messaging.ShowLoadingAnimationRequest(chat_id=CUSTOMER, loading_seconds=10)
    api.show_loading_animation(request)
    with pytest.raises(messaging.ApiException) as refused:
        api.show_loading_animation(messaging.ShowLoadingAnimationRequest(chat_id=GROUP))
    assert refused.value.status == 400
    error = messaging.ErrorResponse.from_json(refused.value.body)
    assert [(d.var_property, d.message[:22]) for d in error.details] == [
        ("chatId", "Only user id is accept")
    ]
    httpx.post(f"{url}/line/_sandbox/customer-wrote", json={"address": CUSTOMER})
    profile = api.get_profile(CUSTOMER)
    assert profile.user_id == CUSTOMER and profile.display_name


def test_line_bot_sdk_manages_rich_menus_and_aliases(sdk: tuple[Any, Any, str]) -> None:
    api, blob, _ = sdk
    request = messaging.RichMenuRequest.from_dict(MENU.wire())
    menu_id = api.create_rich_menu(request).rich_menu_id
    with pytest.raises(messaging.ApiException) as early:
        api.link_rich_menu_id_to_user(CUSTOMER, menu_id)
    assert early.value.status == 400  # no image yet
    image = bytearray(png(2500, 843))  # the SDK sets no Content-Type here: the caller does
    blob.set_rich_menu_image(menu_id, body=image, _headers={"Content-Type": "image/png"})
    assert bytes(blob.get_rich_menu_image(menu_id)) == png(2500, 843)
    api.set_default_rich_menu(menu_id)
    assert api.get_default_rich_menu_id().rich_menu_id == menu_id
    api.link_rich_menu_id_to_user(CUSTOMER, menu_id)
    assert api.get_rich_menu_id_of_user(CUSTOMER).rich_menu_id == menu_id
    api.unlink_rich_menu_id_from_user(CUSTOMER)
    alias = messaging.CreateRichMenuAliasRequest(
        rich_menu_alias_id="sdk-alias", rich_menu_id=menu_id
    )
    api.create_rich_menu_alias(alias)
    with pytest.raises(messaging.ApiException) as twice:
        api.create_rich_menu_alias(alias)
    assert twice.value.status == 400
    assert api.get_rich_menu_alias("sdk-alias").rich_menu_id == menu_id
    update = messaging.UpdateRichMenuAliasRequest(rich_menu_id=menu_id)
    api.update_rich_menu_alias("sdk-alias", update)
    assert [a.rich_menu_alias_id for a in api.get_rich_menu_alias_list().aliases] == ["sdk-alias"]
    api.delete_rich_menu_alias("sdk-alias")
    menus = api.get_rich_menu_list().richmenus
    assert [m.rich_menu_id for m in menus] == [menu_id] and menus[0].chat_bar_text == "Menu"
    api.delete_rich_menu(menu_id)
    with pytest.raises(messaging.ApiException) as gone:
        api.get_rich_menu(menu_id)
    assert gone.value.status == 404


@pytest.mark.parametrize("alias", ["Bad Alias!", "UPPER", "a" * 33, ""])
def test_an_alias_id_is_what_line_takes(alias: str) -> None:
    """line-bot-sdk-python: ``^[a-z0-9_-]{1,32}$``."""
    with pytest.raises(ValidationError):
        RichMenuAlias(rich_menu_alias_id=alias, rich_menu_id="richmenu-" + "0" * 32)
