"""The conformance suite fails plugins with the bugs issue 12 found it let through: each
bug is planted in a built-in channel, and the check that must catch it fails.

(docs/conformance.md measures the suite over many more planted bugs: mutation testing.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from chatbridge_conformance import ConformanceSuite
from chatbridge_conformance.harness import Harness, harness_for
from chatbridge_conformance.tampering import signed_parts, tampered

from chatbridge.errors import ProviderError, SignatureError
from chatbridge.line import kit as line_kit
from chatbridge.line import signature as line_signature
from chatbridge.line.channel import LineChannel
from chatbridge.models import DeliveryState, Message
from chatbridge.plugin.kit import ChannelKit
from chatbridge.policy import PolicyRules
from chatbridge.sms.twilio import inbound as twilio_inbound
from chatbridge.sms.twilio import kit as twilio_kit
from chatbridge.whatsapp import kit as whatsapp_kit
from chatbridge.whatsapp.channel import WhatsAppChannel

pytestmark = pytest.mark.anyio

Check = Callable[[ConformanceSuite, Harness], Awaitable[None]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def run(check: Check, kit: ChannelKit) -> None:
    async for harness in harness_for(kit, None):
        await check(ConformanceSuite(), harness)


async def fails(check: Check, kit: ChannelKit) -> None:
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        await run(check, kit)


def broken(kit: ChannelKit, **methods: Any) -> ChannelKit:
    """``kit`` on a subclass of its channel with ``methods`` replaced."""
    channel = type(f"Broken{kit.channel.__name__}", (kit.channel,), methods)
    return dataclasses.replace(kit, channel=channel)


async def test_the_unbroken_kits_pass() -> None:
    suite = ConformanceSuite
    for kit in (line_kit.kit, whatsapp_kit.kit, twilio_kit.kit):
        await run(suite.test_every_tampered_signature_is_refused, kit)


async def test_a_prefix_of_the_signature_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    def verify(body: bytes, header: str | None, secret: str) -> None:
        expected = line_signature.sign(body, secret)
        if not header or not expected.startswith(header):
            raise SignatureError("bad signature")

    monkeypatch.setattr(line_signature, "verify", verify)
    await fails(ConformanceSuite.test_every_tampered_signature_is_refused, line_kit.kit)


async def test_a_wrong_window_length() -> None:
    kit = broken(whatsapp_kit.kit, rules=PolicyRules(window=timedelta(hours=48)))
    await fails(ConformanceSuite.test_the_window_closes_at_its_documented_length_and_reopens, kit)


async def test_replies_billed() -> None:
    async def is_billable(self: LineChannel, message: Message) -> bool:
        return True

    kit = broken(line_kit.kit, _is_billable=is_billable)
    await fails(ConformanceSuite.test_replies_are_free_until_the_reply_token_expires, kit)


async def test_an_expired_reply_token_used() -> None:
    async def reply_token(self: LineChannel, identity: Any) -> str | None:
        state = await self.store.contact_state(identity)
        return state.reply_token

    kit = broken(line_kit.kit, _reply_token=reply_token)
    await fails(ConformanceSuite.test_replies_are_free_until_the_reply_token_expires, kit)


async def test_the_quota_month_in_utc() -> None:
    def init(self: LineChannel, config: Any, **options: Any) -> None:
        LineChannel.__init__(self, config.model_copy(update={"quota_timezone": "UTC"}), **options)

    kit = broken(line_kit.kit, __init__=init)
    await fails(
        ConformanceSuite.test_the_quota_counts_pushes_and_resets_with_the_providers_month, kit
    )


async def test_media_uploaded_before_the_policy_check() -> None:
    async def send(self: WhatsAppChannel, message: Message, *args: Any, **kwargs: Any) -> Any:
        for media in message.media:
            if media.data is not None:
                await self.upload_media(media)
        return await WhatsAppChannel.send(self, message, *args, **kwargs)

    kit = broken(whatsapp_kit.kit, send=send)
    await fails(ConformanceSuite.test_a_stranger_is_messaged_only_where_the_provider_allows, kit)


async def test_undelivered_mapped_to_delivered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(twilio_inbound._STATES, "undelivered", DeliveryState.DELIVERED)
    await fails(
        ConformanceSuite.test_every_delivery_state_maps_to_the_documented_state, twilio_kit.kit
    )


async def test_the_media_hash_not_checked() -> None:
    async def download_media(self: WhatsAppChannel, media: Any) -> bytes:
        url = f"{self.config.base_url}/{self.config.api_version}/{media.provider_id}"
        info = await self._request(self.http.build_request("GET", url, headers=self._auth()))
        content_url = info.json()["url"]
        request = self.http.build_request("GET", content_url, headers=self._auth())
        return (await self._request(request)).content

    kit = broken(whatsapp_kit.kit, download_media=download_media)
    await fails(ConformanceSuite.test_corrupted_media_is_refused, kit)


async def test_a_token_in_an_error() -> None:
    def raise_for(self: WhatsAppChannel, response: httpx.Response) -> Any:
        token = response.request.headers.get("authorization")
        raise ProviderError(f"failed with {token}", provider="whatsapp")

    kit = broken(whatsapp_kit.kit, _raise_for=raise_for)
    await fails(ConformanceSuite.test_secrets_stay_out_of_reprs_and_errors, kit)


def test_every_part_a_signature_adds_is_found_and_tampered() -> None:
    unsigned = twilio_kit.webhook(twilio_kit.incoming("hi"))
    [part] = signed_parts(unsigned, twilio_kit.sign(unsigned))
    assert (part.where, part.name) == ("header", "x-twilio-signature")
    kinds = dict(tampered(part.value))
    assert set(kinds) == {
        "empty",
        "truncated",
        "a prefix",
        "one character changed",
        "re-cased",
        "re-encoded",
    }
    assert all(value != part.value for value in kinds.values())
