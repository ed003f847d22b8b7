"""Run every benchmark and write docs/benchmarks.md: ``python -m benchmarks.run``.

Needs the official SDKs for comparison: pip install -e '.[bench]'.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import dedup, load, throughput, webhooks
from chatbridge.http import ENGINES

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def main() -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m benchmarks.run` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores ({platform.machine()}).",
        "Numbers are from one run on a shared machine: compare rows of one run, not runs.",
        "",
        *webhooks.section(),
    ]
    sends = {engine: throughput.outbound(engine) for engine in ENGINES}
    seconds = throughput.inbound()
    lines += [
        "",
        "## End to end over loopback HTTP",
        "",
        "| measure | result | target |",
        "|---|---:|---:|",
        *(
            f"| outbound WhatsApp sends/s to the sandbox, 8 in flight, {engine} engine "
            f"| {rate:,.0f} | ≥ 1000 |"
            for engine, rate in sends.items()
        ),
        f"| 100 concurrent inbound webhooks, first sent → all handled | {seconds:.2f} s | ≤ 2 s |",
        "",
        *dedup.section(),
        "",
        *load.section(),
    ]
    REPORT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
