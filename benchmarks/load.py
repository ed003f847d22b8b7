"""Open-loop load on ``chatbridge serve``: ``python -m benchmarks.load [RATE] [SECONDS]``.

Distinct signed WhatsApp webhooks go to 127.0.0.1 at a fixed rate (request *i* leaves at
``i / RATE`` seconds whatever the earlier ones did), bounded in count and time, against
``serve`` with a SQLite store and outbox (1 and 2 worker processes) and with Redis (2
workers, when ``redis-server`` is installed). Reported: acknowledgement latency p50 and
p99 (the client's send to the answer), handling latency p99 (acknowledgement to the
handler's return, from ``/metrics``), the error rate (no 2xx, or no answer within 10 s)
and the servers' CPU time per request (user + system of every serving process, from
/proc). The load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import quantiles

import anyio
import httpx

from chatbridge.webhook import WebhookRequest
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.loopback import cli_server
from tests.redis_server import redis_server

CONFIG = """
[store]
{store}

[outbox]
{outbox}

[channels.whatsapp]
type = "whatsapp"
phone_number_id = "{phone}"
access_token = "{token}"
app_secret = "{secret}"
verify_token = "{verify}"
"""


def run(rate: int = 500, seconds: int = 60) -> list[str]:
    """One markdown table row per setup."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for workers in (1, 2):
            state = f'kind = "sqlite"\npath = "{work}/state-{workers}.db"'
            outbox = f'kind = "sqlite"\npath = "{work}/outbox-{workers}.db"'
            rows.append(
                _setup(f"SQLite, {workers} worker(s)", state, outbox, workers, rate, seconds, work)
            )
        if shutil.which("redis-server"):
            with redis_server() as url:
                shared = f'kind = "redis"\nurl = "{url}"'
                rows.append(_setup("Redis, 2 workers", shared, shared, 2, rate, seconds, work))
    return rows


def _setup(
    name: str, store: str, outbox: str, workers: int, rate: int, seconds: int, work: str
) -> str:
    config = Path(work) / f"{name.split(',')[0]}-{workers}.toml"
    secrets = whatsapp_kit.CONFIG
    config.write_text(
        CONFIG.format(
            store=store,
            outbox=outbox,
            phone=secrets.phone_number_id,
            token=secrets.access_token.get_secret_value(),
            secret=secrets.app_secret.get_secret_value(),
            verify=secrets.verify_token.get_secret_value(),
        )
    )
    total = rate * seconds
    requests = [
        whatsapp_kit.sign(
            whatsapp_kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"}, id=f"wamid.L{i}"))
        )
        for i in range(total)
    ]
    args = [
        "--config",
        str(config),
        "--workers",
        str(workers),
        "--handler",
        "benchmarks.load:ignore",
    ]
    with cli_server("serve", *args) as (base, server):
        cpu_before = _cpu_seconds(server.pid)
        latencies, errors = anyio.run(_open_loop, f"{base}/whatsapp", requests, rate)
        handled_p99 = _handled_p99(base, total)
        cpu = _cpu_seconds(server.pid) - cpu_before
    p50, p99 = _p(latencies, 50), _p(latencies, 99)
    return (
        f"| {name} | {rate}/s for {seconds} s | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms "
        f"| {handled_p99} | {errors / total:.2%} | {cpu / total * 1e6:,.0f} µs |"
    )


async def ignore(event: object, channel: object) -> None:
    """The handler: does nothing, so the server's own work is what is measured."""


async def _open_loop(
    url: str, requests: list[WebhookRequest], rate: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0

    async def send(client: httpx.AsyncClient, request: WebhookRequest) -> None:
        nonlocal errors
        start = time.perf_counter()
        try:
            headers = dict(request.headers)
            answer = await client.post(url, content=request.body, headers=headers)
            if not answer.is_success:
                errors += 1
                return
        except httpx.HTTPError:
            errors += 1
            return
        latencies.append(time.perf_counter() - start)

    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    async with (
        httpx.AsyncClient(limits=limits, timeout=10) as client,
        anyio.create_task_group() as group,
    ):
        start = time.perf_counter()
        for index, request in enumerate(requests):
            # Yield even when late, or a generator behind schedule would only queue tasks.
            await anyio.sleep(max(start + index / rate - time.perf_counter(), 0))
            group.start_soon(send, client, request)
    return latencies, errors


def _handled_p99(base: str, total: int) -> str:
    """The handling latency p99 from /metrics' histogram (a bucket's upper bound), once
    every event is handled (or 60 s passed)."""
    deadline = time.monotonic() + 60
    while True:
        samples = _metrics(base)
        handled = samples.get('chatbridge_events_handled_total{channel="whatsapp"}', 0.0)
        if handled >= total or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    buckets = sorted(
        (float(key.split('le="')[1].split('"')[0]), value)
        for key, value in samples.items()
        if key.startswith("chatbridge_handling_seconds_bucket") and 'le="+Inf"' not in key
    )
    count = samples.get('chatbridge_handling_seconds_count{channel="whatsapp"}', 0.0)
    bound = next((le for le, cumulative in buckets if cumulative >= 0.99 * count), None)
    shown = f"≤ {bound:g} s" if bound is not None else "> 60 s"
    return shown if handled >= total else f"{shown} ({handled:.0f} of {total} handled)"


def _metrics(base: str) -> dict[str, float]:
    samples = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for process in _family(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _family(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        todo += [int(child) for child in children]
    return found


def _p(values: list[float], percent: int) -> float:
    if len(values) < 2:
        return float("nan")
    return quantiles(values, n=100, method="inclusive")[percent - 1]


HEADER = [
    "| setup | load | ack p50 | ack p99 | handled p99 | errors | server CPU / request |",
    "|---|---|---:|---:|---:|---:|---:|",
]


def section(rate: int = 500, seconds: int = 60) -> list[str]:
    """The docs/benchmarks.md section."""
    return [
        "## Open-loop load on `chatbridge serve` (`python -m benchmarks.load`)",
        "",
        f"{rate} distinct signed WhatsApp webhooks a second for {seconds} s to 127.0.0.1, each",
        "sent on schedule whatever the earlier ones did; the load generator shares the 2",
        "cores. Targets: ack p99 < 50 ms, handled p99 < 1 s, errors < 0.1%.",
        "",
        *HEADER,
        *run(rate, seconds),
    ]


def main() -> None:
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    print("\n".join([*HEADER, *run(rate, seconds)]))


if __name__ == "__main__":
    main()
