"""WeChat account features: QR codes and the scans they bring back, user tags, user
info, menus (default and conditional) and the typing status, against the fake; and
the fake driven by wechatpy through a running sandbox, refusing what WeChat refuses."""

from __future__ import annotations

import json
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from chatbridge import FakeClock, MessageInvalidError, ProviderPolicyError
from chatbridge.errors import ProviderError
from chatbridge.models import ChannelEvent, Followed
from chatbridge.wechat import WeChatChannel, kit, menu, qrcode, tags
from chatbridge.wechat.fake import FakeWeChatAPI
from chatbridge.wechat.menu import Button, MatchRule, Menu
from chatbridge.wechat.qrcode import QRScan, image_url
from tests.loopback import cli_server
from tests.test_official_sdks import RequestsToSandbox

CUSTOMER = kit.CUSTOMER
OTHER = "oLVPpjqs9BhvzwPj5A-vTYAX3GLd"


@pytest.fixture
async def wx() -> AsyncIterator[tuple[WeChatChannel, FakeWeChatAPI]]:
    api = FakeWeChatAPI(kit.CONFIG)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(host=api.hosts[0]).mock(side_effect=api)
        channel = WeChatChannel(kit.CONFIG, clock=FakeClock())
        yield channel, api
        await channel.aclose()


def _errcode(exc: pytest.ExceptionInfo[ProviderError]) -> object:
    return exc.value.code


# -- QR codes ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_temporary_and_permanent_codes_with_numeric_and_string_scenes(wx: Any) -> None:
    channel, api = wx
    temporary = await channel.qrcodes.temporary(123, timedelta(days=7))
    assert temporary.expire_seconds == 7 * 86400 and not temporary.permanent
    permanent = await channel.qrcodes.permanent("shop-42")
    assert permanent.permanent and permanent.expire_seconds is None
    assert api.qrcodes == {temporary.ticket: 123, permanent.ticket: "shop-42"}
    sent = api.requests[-1]
    assert sent.url.path == "/cgi-bin/qrcode/create"
    url = urlsplit(permanent.image_url)
    assert url.netloc == "mp.weixin.qq.com" and url.path == "/cgi-bin/showqrcode"
    assert parse_qs(url.query)["ticket"] == [permanent.ticket]
    assert "%2B" in image_url("a+b/c") and "access_token" not in permanent.image_url


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda q: q.temporary(1, timedelta(days=31)), "30 days"),
        (lambda q: q.temporary(0, timedelta(hours=1)), "1 to 4294967295"),
        (lambda q: q.permanent(100_001), "1 to 100000"),
        (lambda q: q.permanent("x" * 65), "1 to 64"),
        (lambda q: q.permanent(""), "1 to 64"),
        (lambda q: q.permanent(True), "int or a str"),
    ],
)
async def test_codes_wechat_refuses_are_refused_before_sending(
    wx: Any, make: Callable[[Any], Any], why: str
) -> None:
    channel, api = wx
    with pytest.raises(MessageInvalidError, match=why):
        await make(channel.qrcodes)
    assert api.requests == []


@pytest.mark.anyio
async def test_a_scan_by_a_follower_carries_the_scene() -> None:
    channel = WeChatChannel(kit.CONFIG, clock=FakeClock())
    body = kit.push("event", Event="SCAN", EventKey="shop-42", Ticket="T")
    (event,) = (await channel.receive(kit.sign(kit.webhook(body)))).events
    assert isinstance(event, ChannelEvent) and event.opens_window
    assert event.data["scene"] == "shop-42" and event.data["EventKey"] == "shop-42"
    assert QRScan.of(event) == QRScan(scene="shop-42", ticket="T", followed=False)


@pytest.mark.anyio
async def test_a_follow_through_a_code_is_followed_then_the_scan() -> None:
    channel = WeChatChannel(kit.CONFIG, clock=FakeClock())
    body = kit.push("event", Event="subscribe", EventKey="qrscene_77", Ticket="T")
    followed, scan = (await channel.receive(kit.sign(kit.webhook(body)))).events
    assert isinstance(followed, Followed) and isinstance(scan, ChannelEvent)
    assert scan.event_id == f"{followed.event_id}:SCAN" and scan.contact == followed.contact
    assert QRScan.of(followed) == QRScan.of(scan) == QRScan(scene="77", ticket="T", followed=True)
    again = await channel.receive(kit.sign(kit.webhook(body)))  # WeChat's retry
    assert again.events == [] and len(again.duplicates) == 2


@pytest.mark.anyio
async def test_a_plain_follow_has_no_scan() -> None:
    channel = WeChatChannel(kit.CONFIG, clock=FakeClock())
    for key in ("", "qrscene_"):
        body = kit.push("event", at=len(key), Event="subscribe", EventKey=key)
        (event,) = (await channel.receive(kit.sign(kit.webhook(body)))).events
        assert isinstance(event, Followed) and QRScan.of(event) is None


# -- tags and user info -----------------------------------------------------------------


@pytest.mark.anyio
async def test_tags_create_list_rename_tag_untag_and_delete(wx: Any) -> None:
    channel, _ = wx
    vip = await channel.tags.create("VIP 客户")
    assert vip.id >= 100
    await channel.tags.rename(vip.id, "VIP")
    await channel.tags.tag(vip.id, [CUSTOMER, OTHER])
    assert await channel.tags.of_user(CUSTOMER) == [vip.id]
    listed = {tag.id: tag for tag in await channel.tags.get_all()}
    assert listed[vip.id].name == "VIP" and listed[vip.id].count == 2
    await channel.tags.untag(vip.id, [OTHER])
    assert [o async for o in channel.tags.all_members(vip.id)] == [CUSTOMER]
    await channel.tags.delete(vip.id)
    assert await channel.tags.of_user(CUSTOMER) == []


@pytest.mark.anyio
async def test_tag_members_page_with_next_openid(wx: Any) -> None:
    channel, api = wx
    api.tag_page_size = 2
    tag = await channel.tags.create("many")
    followers = [f"o{i:027d}" for i in range(5)]
    await channel.tags.tag(tag.id, followers)
    first = await channel.tags.members(tag.id)
    assert first.openids == followers[:2] and first.next_openid == followers[1]
    assert [o async for o in channel.tags.all_members(tag.id)] == followers


@pytest.mark.anyio
async def test_tag_limits_are_refused_before_sending(wx: Any) -> None:
    channel, api = wx
    with pytest.raises(MessageInvalidError, match="45158"):
        await channel.tags.create("标签" * 6)  # 36 bytes of UTF-8, 12 characters
    with pytest.raises(MessageInvalidError, match="40032"):
        await channel.tags.tag(100, [f"o{i}" for i in range(51)])
    with pytest.raises(MessageInvalidError, match="45058"):
        await channel.tags.delete(2)
    assert api.requests == []


@pytest.mark.anyio
async def test_the_fake_refuses_tags_as_wechat_does(wx: Any) -> None:
    channel, api = wx
    tag = await channel.tags.create("dup")
    with pytest.raises(ProviderError) as refused:
        await channel.tags.create("dup")
    assert _errcode(refused) == 45157
    with pytest.raises(ProviderError) as refused:
        await channel.tags.tag(99999, [CUSTOMER])
    assert _errcode(refused) == 45159
    for index in range(19):
        await channel.tags.tag((await channel.tags.create(f"t{index}")).id, [CUSTOMER])
    await channel.tags.tag(tag.id, [CUSTOMER])  # the 20th
    with pytest.raises(ProviderError) as refused:
        await channel.tags.tag((await channel.tags.create("21st")).id, [CUSTOMER])
    assert _errcode(refused) == 45059
    while len(api.tags) - 1 < 100:
        await channel.tags.create(f"n{len(api.tags)}")
    with pytest.raises(ProviderError) as refused:
        await channel.tags.create("101st")
    assert _errcode(refused) == 45056


@pytest.mark.anyio
async def test_the_fake_keeps_its_own_limits_so_a_wrong_client_limit_is_caught(
    wx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, _ = wx
    monkeypatch.setattr(tags, "NAME_BYTES", 60)
    monkeypatch.setattr(menu, "TOP_NAME_BYTES", 60)
    monkeypatch.setattr(qrcode, "PERMANENT_SCENE_ID_MAX", 200_000)
    with pytest.raises(ProviderError) as refused:
        await channel.tags.create("标签" * 6)
    assert _errcode(refused) == 45158
    with pytest.raises(ProviderError) as refused:
        await channel.menus.create(Menu(button=[Button(name="菜单" * 3, type="click", key="k")]))
    assert _errcode(refused) == 40018
    with pytest.raises(ProviderError) as refused:
        await channel.qrcodes.permanent(150_000)
    assert _errcode(refused) == 40035


@pytest.mark.anyio
async def test_user_info_is_what_wechat_returns_today(wx: Any) -> None:
    channel, api = wx
    stranger = await channel.users.info(OTHER)
    assert not stranger.follows and stranger.nickname is None
    api.follow(CUSTOMER, scene="shop-42")
    tag = await channel.tags.create("VIP")
    await channel.tags.tag(tag.id, [CUSTOMER])
    info = await channel.users.info(CUSTOMER, lang="en")
    assert info.follows and info.followed_at is not None
    assert info.tagid_list == [tag.id] and info.subscribe_scene == "ADD_SCENE_QR_CODE"
    assert info.scene == "shop-42" and info.nickname is None
    with pytest.raises(ProviderPolicyError):  # 40003
        await channel.users.info("not an openid!")


@pytest.mark.anyio
async def test_user_info_of_many_goes_a_hundred_a_call(wx: Any) -> None:
    channel, api = wx
    api.follow(CUSTOMER)
    openids = [CUSTOMER] + [f"o{i:027d}" for i in range(150)]
    found = await channel.users.info_of(openids, lang="en")
    assert [info.openid for info in found] == openids
    assert found[0].follows and not found[1].follows
    batches = [r for r in api.requests if r.url.path == "/cgi-bin/user/info/batchget"]
    assert [len(json.loads(r.content)["user_list"]) for r in batches] == [100, 51]
    with pytest.raises(TypeError):
        await channel.users.info_of(CUSTOMER)


@pytest.mark.anyio
async def test_user_info_of_many_refuses_an_answer_that_lacks_one() -> None:
    api = FakeWeChatAPI(kit.CONFIG)

    def short(request: httpx.Request) -> httpx.Response:
        answer = api(request)
        if request.url.path.endswith("/batchget"):
            users = json.loads(answer.content)["user_info_list"][:-1]
            return httpx.Response(200, json={"user_info_list": users})
        return answer

    with respx.mock() as router:
        router.route(host=api.hosts[0]).mock(side_effect=short)
        channel = WeChatChannel(kit.CONFIG, clock=FakeClock())
        with pytest.raises(ProviderError, match="lacks 1 of the OpenIDs"):
            await channel.users.info_of([CUSTOMER, OTHER])
        await channel.aclose()


# -- menus ------------------------------------------------------------------------------

MENU = Menu(
    button=[
        Button(type="click", name="今日订单", key="ORDERS"),
        Button(
            name="帮助",
            sub_button=[
                Button(type="view", name="常见问题", url="https://help.example/faq"),
                Button(type="click", name="人工客服", key="AGENT"),
            ],
        ),
    ]
)


@pytest.mark.anyio
async def test_menu_create_get_conditional_try_match_and_delete(wx: Any) -> None:
    channel, api = wx
    assert (await channel.menus.get()).menu is None
    with pytest.raises(ProviderError) as refused:
        await channel.menus.add_conditional(
            MENU.model_copy(update={"matchrule": MatchRule(tag_id="1")})
        )
    assert _errcode(refused) == 65303
    await channel.menus.create(MENU)
    vip = await channel.tags.create("VIP")
    vip_menu = Menu(
        button=[Button(type="click", name="VIP", key="VIP")],
        matchrule=MatchRule(tag_id=str(vip.id)),
    )
    menuid = await channel.menus.add_conditional(vip_menu)
    menus = await channel.menus.get()
    assert menus.menu is not None and menus.menu.button == MENU.button
    assert [m.menuid for m in menus.conditionalmenu] == [menuid]
    api.follow(CUSTOMER)
    assert [b.key for b in await channel.menus.try_match(CUSTOMER)] == ["ORDERS", None]
    await channel.tags.tag(vip.id, [CUSTOMER])
    assert [b.key for b in await channel.menus.try_match(CUSTOMER)] == ["VIP"]
    await channel.menus.delete_conditional(menuid)
    await channel.menus.delete()
    assert (await channel.menus.get()).conditionalmenu == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("menu", "errcode"),
    [
        (Menu(button=[]), 40016),
        (Menu(button=[Button(type="click", name=f"b{i}", key="k") for i in range(4)]), 40016),
        (Menu(button=[Button(type="click", name="一二三四五六", key="k")]), 40018),  # 18 bytes
        (Menu(button=[Button(type="click", name="a", key="k" * 129)]), 40019),
        (Menu(button=[Button(type="view", name="a", url="https://x/" + "y" * 1020)]), 40020),
        (
            Menu(
                button=[Button(name="a", sub_button=[Button(type="click", name="s", key="k")] * 6)]
            ),
            40023,
        ),
        (
            Menu(
                button=[Button(name="a", sub_button=[Button(type="view", name="s" * 61, url="u")])]
            ),
            40025,
        ),
        (Menu(button=[Button(name="a")]), 40017),
    ],
)
async def test_menus_wechat_refuses_are_refused_before_sending(
    wx: Any, menu: Menu, errcode: int
) -> None:
    channel, api = wx
    with pytest.raises(MessageInvalidError, match=str(errcode)):
        await channel.menus.create(menu)
    assert api.requests == []


@pytest.mark.anyio
async def test_conditional_menus_need_a_rule_without_private_data(wx: Any) -> None:
    channel, _ = wx
    await channel.menus.create(MENU)
    with pytest.raises(MessageInvalidError, match="65304"):
        await channel.menus.add_conditional(MENU)
    private = MENU.model_copy(update={"matchrule": MatchRule.model_validate({"sex": "1"})})
    with pytest.raises(MessageInvalidError, match="65320"):
        await channel.menus.add_conditional(private)


# -- typing -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_typing_within_30_seconds_of_a_message(wx: Any) -> None:
    channel, api = wx
    api.window = timedelta(hours=48)
    identity = channel.identity(CUSTOMER)
    with pytest.raises(MessageInvalidError, match="within 30 s"):  # decided before any call
        await channel.typing(identity)
    assert not [r for r in api.requests if r.url.path == "/cgi-bin/message/custom/typing"]
    await channel.store.update_contact_state(identity, last_inbound_at=channel.clock.now())
    with pytest.raises(ProviderPolicyError) as refused:  # WeChat saw no message: 45080
        await channel.typing(identity)
    assert refused.value.code == 45080
    api.customer_wrote(CUSTOMER)
    await channel.typing(identity)
    await channel.typing(identity)  # shown already (45081): what was asked for
    assert CUSTOMER in api.typing
    await channel.cancel_typing(identity)
    assert CUSTOMER not in api.typing
    sent = [r for r in api.requests if r.url.path == "/cgi-bin/message/custom/typing"]
    assert sent[-1].read() == b'{"touser":"%s","command":"CancelTyping"}' % CUSTOMER.encode()


# -- wechatpy against the sandbox -------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with cli_server("sandbox") as (url, _):
        yield url


@pytest.fixture
def wechatpy(sandbox: str) -> Any:
    config = kit.CONFIG
    client = WeChatClient(config.app_id, config.app_secret.get_secret_value())
    origin = "https://api.weixin.qq.com"
    client._http.mount(origin, RequestsToSandbox(origin, f"{sandbox}/wechat"))
    return client


def test_wechatpy_uses_the_account_features(wechatpy: Any) -> None:
    code = wechatpy.qrcode.create(
        {
            "expire_seconds": 600,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": "s"}},
        }
    )
    assert code["expire_seconds"] == 600 and code["ticket"]
    assert wechatpy.qrcode.get_url(code) == image_url(code["ticket"])
    wechatpy.menu.create(MENU.body())
    assert wechatpy.menu.get()["menu"]["button"][0]["key"] == "ORDERS"
    tag = wechatpy.tag.create("wechatpy")
    wechatpy.tag.tag_user(tag["id"], CUSTOMER)
    assert wechatpy.tag.get_user_tag(CUSTOMER) == [tag["id"]]
    assert list(wechatpy.tag.iter_tag_users(tag["id"])) == [CUSTOMER]
    assert wechatpy.user.get(CUSTOMER)["openid"] == CUSTOMER
    assert [u["openid"] for u in wechatpy.user.get_batch([CUSTOMER, OTHER])] == [CUSTOMER, OTHER]
    wechatpy.menu.delete()
    assert wechatpy.menu.get() is None  # wechatpy reads 46003 as "no menu"


WECHATPY_REFUSED: list[tuple[str, Callable[[Any], Any], int]] = [
    (
        "a permanent scene_id over 100000",
        lambda w: w.qrcode.create(
            {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100_001}}}
        ),
        40035,
    ),
    ("an unknown QR action", lambda w: w.qrcode.create({"action_name": "QR_X"}), 40053),
    (
        "four top buttons",
        lambda w: w.menu.create({"button": [MENU.body()["button"][0]] * 4}),
        40016,
    ),
    (
        "a conditional menu on sex",
        lambda w: (
            w.menu.create(MENU.body()),
            w.menu.add_conditional({**MENU.body(), "matchrule": {"sex": "1"}}),
        ),
        65320,
    ),
    ("a tag name of 31 bytes", lambda w: w.tag.create("x" * 31), 45158),
    ("renaming a reserved tag", lambda w: w.tag.update(2, "star"), 45058),
    ("tagging 51 users", lambda w: w.tag.tag_user(2, [f"o{i}" for i in range(51)]), 40032),
    ("user info of a malformed openid", lambda w: w.user.get("bad openid!"), 40003),
    (
        "a typing command WeChat lacks",
        lambda w: w.post("message/custom/typing", data={"touser": CUSTOMER, "command": "Sing"}),
        45072,
    ),
]


@pytest.mark.parametrize(
    ("what", "call", "errcode"), WECHATPY_REFUSED, ids=[r[0] for r in WECHATPY_REFUSED]
)
def test_the_sandbox_refuses_wechatpy_as_wechat_does(
    wechatpy: Any, what: str, call: Callable[[Any], Any], errcode: int
) -> None:
    with pytest.raises(WeChatClientException) as refused:
        call(wechatpy)
    assert refused.value.errcode == errcode, what


@pytest.mark.anyio
async def test_an_error_never_shows_the_access_token() -> None:
    """The token is fetched at run time and travels in every URL: an error page that
    echoes the request, an unreadable answer, or a connection error naming the URL must
    not put it in an exception or its traceback."""
    api = FakeWeChatAPI(kit.CONFIG)
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/token":
            answer = api(request)
            tokens.append(answer.json()["access_token"])
            return answer
        if request.url.path.startswith("/cgi-bin/menu/get"):
            return httpx.Response(502, text=f"<html>Bad gateway for {request.url}</html>")
        if request.url.path.startswith("/cgi-bin/user/info"):
            return httpx.Response(
                200, text=f"oops {request.url}", headers={"content-type": "text/html"}
            )
        if request.url.path.startswith("/cgi-bin/tags/get"):
            raise httpx.ConnectError(f"connect failed for {request.url}", request=request)
        return api(request)

    with respx.mock(assert_all_mocked=True) as router:
        router.route(host=api.hosts[0]).mock(side_effect=handler)
        channel = WeChatChannel(kit.CONFIG, clock=FakeClock())
        calls = [channel.menus.get, lambda: channel.users.info(kit.CUSTOMER), channel.tags.get_all]
        for call in calls:
            with pytest.raises(ProviderError) as raised:
                await call()
            shown = "".join(traceback.format_exception(raised.value)) + repr(raised.value.details)
            assert tokens and tokens[-1] not in shown
        await channel.aclose()
