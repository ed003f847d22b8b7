"""Checks of how the channel meets its provider's API: media round-trips, a corrupted
download is refused where the provider gives a hash, no error the channel raises (on a
send, a token fetch, an upload or a download, whatever the provider answers) is untyped
or shows a secret, and a configuration the provider never issues is refused when the
channel is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from chatbridge.clock import FakeClock
from chatbridge.errors import ChatbridgeError, ConfigurationError
from chatbridge.plugin.kit import ChannelKit
from chatbridge_conformance.harness import Harness, Trouble

_FAILURES = (Trouble.CLIENT_ERROR, Trouble.SERVER_ERROR, Trouble.UNREACHABLE)


async def _fails_cleanly(
    harness: Harness, operation: Callable[[], Awaitable[object]], when: str
) -> None:
    before = harness.calls
    try:
        await operation()
    except ChatbridgeError as error:
        harness.assert_no_secret(error, when)
    except Exception as error:
        pytest.fail(f"{when}: an untyped {type(error).__name__} escaped")
    else:
        if harness.calls != before:
            pytest.fail(f"{when}: no error although the provider failed")


class ProviderChecks:
    @pytest.mark.anyio
    async def test_media_round_trips(self, harness: Harness) -> None:
        media = harness.kit.media
        if media is None:
            pytest.skip(f"{harness.kit.name} has no media upload API")
        uploaded = await harness.channel.upload_media(media)
        assert uploaded.provider_id
        assert await harness.channel.download_media(uploaded) == media.data

    @pytest.mark.anyio
    async def test_corrupted_media_is_refused(self, harness: Harness) -> None:
        media = harness.kit.media
        if media is None or not harness.kit.facts.media_hash:
            pytest.skip(f"{harness.kit.name} downloads come with no hash")
        uploaded = await harness.channel.upload_media(media)
        with harness.trouble(Trouble.CORRUPT_MEDIA), pytest.raises(ChatbridgeError):
            await harness.channel.download_media(uploaded)

    @pytest.mark.anyio
    async def test_secrets_stay_out_of_reprs_and_errors(self, harness: Harness) -> None:
        channel = harness.channel
        for index, secret in enumerate(harness.kit.secrets):
            shown = (repr(channel), str(vars(channel).get("config", "")))
            assert all(secret not in text for text in shown), f"a repr shows secret #{index}"
        harness.in_process_only()
        if harness.api is not None and not harness.api.hosts:
            return  # not an HTTP provider: nothing to make fail here
        await harness.open_conversation()
        text = harness.messages()["text"]
        for trouble in _FAILURES:  # before any token is cached
            with harness.trouble(trouble):
                await _fails_cleanly(
                    harness, lambda: channel.send(text), f"send; API {trouble.value}"
                )
        media = harness.kit.media
        if media is None:
            return
        uploaded = await channel.upload_media(media)
        for trouble in _FAILURES:
            how = f"API {trouble.value}"
            with harness.trouble(trouble):
                await _fails_cleanly(harness, lambda: channel.upload_media(media), f"upload; {how}")
                await _fails_cleanly(
                    harness, lambda: channel.download_media(uploaded), f"download; {how}"
                )

    @pytest.mark.anyio
    async def test_misconfigurations_are_refused_when_the_channel_is_built(
        self, harness: Harness
    ) -> None:
        """Each of the kit's ``misconfigured`` values fails the config's validation or
        the channel's construction with a typed error that shows no secret (the wrong
        value included)."""
        kit = harness.kit
        if not kit.misconfigured:
            pytest.skip(f"{kit.name} declares no misconfigurations")
        accepted = []
        for what, update in kit.misconfigured.items():
            fields = dict(kit.config)
            wrong = [
                str(value)
                for key, value in update.items()
                if value is not None and isinstance(fields.get(key), SecretStr)
            ]
            try:
                _build_with(kit, update)
            except (ValidationError, ConfigurationError) as error:
                harness.assert_no_secret(error, f"misconfigured: {what}", also=wrong)
            else:
                accepted.append(what)
        assert not accepted, f"built with a misconfiguration: {', '.join(accepted)}"

    def test_configurations_at_the_edge_are_accepted(self, kit: ChannelKit) -> None:
        """Each of the kit's ``edge_configs`` (just inside what is valid) builds."""
        if not kit.edge_configs:
            pytest.skip(f"{kit.name} declares no edge configurations")
        for update in kit.edge_configs.values():
            _build_with(kit, update)  # raises if refused


def _build_with(kit: ChannelKit, update: Mapping[str, Any]) -> None:
    """Validate the kit's config with ``update`` applied, and build the channel with it."""
    config = type(kit.config).model_validate({**dict(kit.config), **update})
    replace(kit, config=config).build({"clock": FakeClock()})
