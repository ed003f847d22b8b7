"""docs/benchmarks.md, where every benchmark writes its results."""

from __future__ import annotations

from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def rewrite_section(heading: str, lines: list[str]) -> None:
    """Put ``lines`` in place of the report's section that starts with ``heading`` (up to
    the next ``## `` heading), or append them when it has none; print them."""
    text = REPORT.read_text() if REPORT.exists() else ""
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    else:
        end = text.find("\n## ", start + len(heading))
        rest = text[end:] if end >= 0 else "\n"
        text = text[:start] + "\n".join(lines) + "\n" + rest
    REPORT.write_text(text)
    print("\n".join(lines))
