"""End-to-end throughput over real loopback HTTP: 100 concurrent signed webhooks through
the ASGI app under uvicorn, timed until the application's handler has seen all of them
(outbound sends: benchmarks/outbound.py).
"""

from __future__ import annotations

import time
from datetime import timedelta

import anyio
import httpx

from chatbridge.channel import Channel
from chatbridge.models import Event
from chatbridge.server.app import WebhookApp
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.loopback import free_port


def inbound(count: int = 100) -> float:
    """Seconds from firing ``count`` concurrent webhooks to the handler seeing them all."""
    return anyio.run(_inbound, count)


async def _inbound(count: int) -> float:
    import uvicorn

    seen = anyio.Event()
    received: list[Event] = []

    async def handler(event: Event, channel: Channel) -> None:
        received.append(event)
        if len(received) == count:
            seen.set()

    channel = whatsapp_kit.kit.build({})
    app = WebhookApp(
        {"whatsapp": channel}, handler, poll_interval=0.05, backoff=timedelta(seconds=1)
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    bodies = [
        whatsapp_kit.inbound("text", {"body": f"m{i}"}, sender=f"1650555{i:04d}")
        for i in range(count)
    ]
    requests = [whatsapp_kit.sign(whatsapp_kit.webhook(body)) for body in bodies]
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.01)
        url = f"http://127.0.0.1:{port}/whatsapp"
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=count)) as client:
            start = time.perf_counter()
            async with anyio.create_task_group() as senders:
                for request in requests:
                    senders.start_soon(
                        lambda r=request: client.post(url, content=r.body, headers=dict(r.headers))
                    )
            with anyio.fail_after(30):
                await seen.wait()
            elapsed = time.perf_counter() - start
        server.should_exit = True
    return elapsed
