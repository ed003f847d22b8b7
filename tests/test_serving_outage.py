"""The webhook app through a Redis outage: while the outbox is down every request is
answered 503 (not acknowledged, so the provider retries) with one log line for the
whole outage; after redis-server restarts, requests succeed at once."""

import logging

import httpx
import pytest

from chatbridge import Channel, Event
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox.redis import RedisOutbox
from chatbridge.whatsapp import kit
from tests.loopback import free_port
from tests.redis_server import redis_server

pytestmark = pytest.mark.anyio


async def ignore(event: Event, channel: Channel) -> None:
    return None


async def test_an_outage_is_503_logged_once_and_over_when_redis_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    with redis_server(port) as url:
        outbox = RedisOutbox.from_url(url)
        app = WebhookApp({"whatsapp": kit.kit.build({})}, ignore, outbox=outbox)
        transport = httpx.ASGITransport(app=app)
        http = httpx.AsyncClient(transport=transport, base_url="https://h.example")

        async def post(n: int) -> int:
            body = kit.inbound("text", {"body": f"m{n}"}, at=kit._T0 + n)
            request = kit.sign(kit.webhook(body))
            response = await http.post("/whatsapp", content=body, headers=dict(request.headers))
            return response.status_code

        assert await post(0) == 200
    with caplog.at_level(logging.WARNING, logger="chatbridge.server.app"):
        assert [await post(n) for n in range(1, 4)] == [503, 503, 503]
        with redis_server(port):
            assert [await post(n) for n in range(1, 6)] == [200] * 5
            assert len(await outbox.due(app.clock.now(), 10)) == 5  # a new, empty server
            await outbox.aclose()
    await http.aclose()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "answering 503" in errors[0].getMessage()
    assert any("recovered after 3 failures" in r.getMessage() for r in caplog.records)
