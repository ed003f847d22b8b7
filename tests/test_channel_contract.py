"""The plugin contract: what a channel must declare, and the defaults it gets."""

from datetime import timedelta

import httpx
import pytest
from pydantic import BaseModel

from chatbridge import FakeClock, Media, MediaKind, ProviderAuthError, RateLimitedError
from chatbridge.clock import FAKE_EPOCH
from chatbridge.errors import ProviderUnavailableError, UnsupportedOperationError
from chatbridge.plugin import Channel, PolicyRules, WebhookRequest, WebhookResult
from chatbridge.whatsapp import kit as whatsapp_kit


class Config(BaseModel):
    token: str = "t"


class Minimal(Channel):
    """Only what is required."""

    name = "minimal"
    config_type = Config

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        return WebhookResult()

    async def _deliver(self, message):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_a_channel_without_a_name_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="must set name"):

        class Nameless(Minimal):
            name = ""


def test_a_channel_without_a_config_type_is_refused_when_defined() -> None:
    with pytest.raises(TypeError, match="must set config_type"):

        class Untyped(Channel):
            name = "untyped"

            async def _receive(self, request: WebhookRequest) -> WebhookResult:
                return WebhookResult()

            async def _deliver(self, message):  # type: ignore[no-untyped-def]
                raise NotImplementedError


def test_an_abstract_base_need_not_declare_them() -> None:
    class Base(Channel):
        rules = PolicyRules(window=timedelta(hours=1))

    assert Base.rules.window == timedelta(hours=1)


@pytest.mark.anyio
async def test_media_defaults_are_typed() -> None:
    channel = Minimal(Config())
    with pytest.raises(UnsupportedOperationError, match="minimal has no media upload API"):
        await channel.upload_media(Media(kind=MediaKind.IMAGE, data=b"x", mime_type="image/png"))
    carried = Media(kind=MediaKind.DOCUMENT, data=b"bytes", mime_type="text/plain")
    assert await channel.download_media(carried) == b"bytes"
    with pytest.raises(UnsupportedOperationError):
        await channel.download_media(Media(kind=MediaKind.IMAGE, url="https://x.example/a"))
    await channel.aclose()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, ProviderAuthError), (429, RateLimitedError), (503, ProviderUnavailableError)],
)
def test_provider_errors_default_to_the_http_status(status: int, error: type[Exception]) -> None:
    channel = Minimal(Config(), http_client=httpx.AsyncClient())
    request = httpx.Request("POST", "https://api.example/send")
    with pytest.raises(error, match=f"minimal API answered HTTP {status}"):
        channel._raise_for(httpx.Response(status, request=request, text="nope"))


def test_from_config_validates_with_config_type() -> None:
    channel = Minimal.from_config({"token": "abc"}, http_client=httpx.AsyncClient())
    assert channel.config == Config(token="abc")


def test_receive_and_deliver_must_be_coroutines() -> None:
    with pytest.raises(TypeError, match=r"_receive must be async def"):

        class Sync(Minimal):
            def _receive(self, request: WebhookRequest) -> WebhookResult:  # type: ignore[override]
                return WebhookResult()


def test_an_abstract_base_that_names_itself_is_checked_too() -> None:
    with pytest.raises(TypeError, match="must set name"):

        class Base(Channel):
            name = "Not A Name"


@pytest.mark.anyio
async def test_an_event_dated_ahead_of_the_clock_opens_the_window_as_of_now() -> None:
    """A provider clock ahead of ours must not keep a window open longer than the
    provider's own (the event counts as of now)."""
    clock = FakeClock(FAKE_EPOCH - timedelta(hours=1))  # the sample is ahead
    channel = whatsapp_kit.kit.build({"clock": clock})
    [event] = (
        await channel.receive(
            whatsapp_kit.kit.sign(
                whatsapp_kit.kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"})), None
            )
        )
    ).events
    assert event.timestamp == FAKE_EPOCH
    assert event.contact is not None
    window = await channel.window(event.contact)
    assert window.expires_at == clock.now() + timedelta(hours=24)
