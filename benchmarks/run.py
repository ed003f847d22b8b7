"""Run every benchmark and write docs/benchmarks.md: ``python -m benchmarks.run``.

Needs the official SDKs for comparison: pip install -e '.[bench]'.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

from benchmarks import (
    assignment,
    dedup,
    history,
    load,
    outbound,
    rules,
    throughput,
    webhooks,
)
from benchmarks.report import REPORT


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
    seconds = throughput.inbound()
    lines += [
        "",
        "## End to end over loopback HTTP",
        "",
        "| measure | result | target |",
        "|---|---:|---:|",
        f"| 100 concurrent inbound webhooks, first sent → all handled | {seconds:.2f} s | ≤ 2 s |",
        "",
        *outbound.section(),
        "",
        *dedup.section(),
        "",
        *load.section(),
        "",
        *history.section(),
        "",
        *rules.section(),
        "",
        *assignment.section(),
    ]
    REPORT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
