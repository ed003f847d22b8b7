"""Typing and seen indicators on the Messenger Platform (Messenger and Instagram): the
Send API's ``sender_action`` requests, and the fake's handling of them. Sources:
docs/messenger.md and docs/instagram.md, "Sender actions"."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatbridge import MessageInvalidError, ProviderError, ProviderPolicyError
from chatbridge.instagram import kit as instagram_kit
from chatbridge.messenger import kit as messenger_kit
from chatbridge.messenger.fake import FakeMessengerAPI
from chatbridge.models import Identity
from chatbridge.plugin import ChannelKit
from chatbridge.plugin.graph import error_response as graph_error
from tests.test_messenger import Setup, running

pytestmark = pytest.mark.anyio
KITS = {"messenger": messenger_kit, "instagram": instagram_kit}
ACTION = {"sender_action": "typing_on"}


@pytest.fixture(params=sorted(KITS))
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    channel_kit: ChannelKit[Any] = KITS[request.param].kit
    async with running(channel_kit) as running_setup:
        yield running_setup


def customer(setup: Setup) -> Identity:
    return Identity(channel=setup.channel.name, address=setup.kit.customer)


def last_body(setup: Setup) -> dict[str, Any]:
    request = setup.api.requests[-1]
    assert request.method == "POST"
    assert request.url.path == f"/v25.0/{setup.kit.config.page_id}/messages"
    return dict(json.loads(request.content))


async def test_typing_sends_only_recipient_and_sender_action(setup: Setup) -> None:
    await setup.channel.typing(customer(setup))  # no window needed: it is no message
    body = last_body(setup)
    token = setup.kit.config.access_token.get_secret_value()
    assert body == {
        "recipient": {"id": setup.kit.customer},
        "sender_action": "typing_on",
        "access_token": token,
    }
    assert "access_token" not in str(setup.api.requests[-1].url)
    assert setup.api.actions == [{"recipient": {"id": setup.kit.customer}, **ACTION}]
    assert setup.api.sent == []


@pytest.mark.parametrize(
    ("method", "action"),
    [("typing", "typing_on"), ("cancel_typing", "typing_off"), ("mark_seen", "mark_seen")],
)
async def test_each_indicator_is_its_sender_action(setup: Setup, method: str, action: str) -> None:
    await getattr(setup.channel, method)(customer(setup))
    assert last_body(setup)["sender_action"] == action
    assert [a["sender_action"] for a in setup.api.actions] == [action]


async def test_a_foreign_identity_is_refused_before_any_call(setup: Setup) -> None:
    other = "instagram" if setup.channel.name == "messenger" else "messenger"
    with pytest.raises(MessageInvalidError, match=f"not a {setup.channel.name} identity"):
        await setup.channel.typing(Identity(channel=other, address=setup.kit.customer))
    assert not setup.router.calls


async def test_a_refusal_is_typed_as_for_a_send(setup: Setup) -> None:
    setup.api.fail_next(graph_error(400, 551, "This person isn't available right now."))
    with pytest.raises(ProviderPolicyError) as raised:
        await setup.channel.typing(customer(setup))
    assert raised.value.code == 551


async def test_an_unreadable_success_is_an_error(setup: Setup) -> None:
    setup.api.fail_next(httpx.Response(200, text="<html>"))
    with pytest.raises(ProviderError, match="unexpected typing_on sender action"):
        await setup.channel.typing(customer(setup))


# -- the fake ------------------------------------------------------------------------------


def post(api: FakeMessengerAPI, body: dict[str, Any]) -> httpx.Response:
    config = api.config
    url = f"https://graph.facebook.com/{config.api_version}/{config.page_id}/messages"
    token = config.access_token.get_secret_value()
    return api(httpx.Request("POST", url, json={**body, "access_token": token}))


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
def test_the_fake_accepts_the_documented_body(action: str) -> None:
    api = messenger_kit.kit.fake_api()
    assert isinstance(api, FakeMessengerAPI)
    response = post(api, {"recipient": {"id": "1254"}, "sender_action": action})
    assert (response.status_code, response.json()) == (200, {"recipient_id": "1254"})


@pytest.mark.parametrize(
    ("body", "code", "subcode"),
    [
        (
            {"recipient": {"id": "1254"}, "sender_action": "typing_on", "message": {"text": "x"}},
            100,
            2018014,
        ),
        ({"recipient": {"id": "1254"}, "sender_action": "typing"}, 100, None),
        ({"recipient": {"id": "1254"}, "sender_action": ["typing_on"]}, 100, None),
        ({"recipient": {"id": "1254"}}, 100, 2018015),
        ({"sender_action": "typing_on"}, 100, None),
    ],
)
def test_the_fake_refuses_malformed_bodies_as_graph_does(
    body: dict[str, Any], code: int, subcode: int | None
) -> None:
    api = instagram_kit.kit.fake_api()
    assert isinstance(api, FakeMessengerAPI)
    response = post(api, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error.get("error_subcode")) == (code, subcode)
    assert error["message"].startswith("(#100) ") and error["type"] == "OAuthException"
    assert api.actions == [] and api.sent == []
