"""Keyword rule evaluation: 1,000 rules against one message, ``python -m benchmarks.rules``
(prints its section of docs/benchmarks.md; ``python -m benchmarks.run`` includes it).

The rules are a mixture like a support team's: 60% "contains" keywords, 20% "exact",
10% "word", 5% regex, 5% without keywords (channel and tag conditions), one in ten with
an hours condition, English and Japanese keywords. Messages match the 6th rule, only the
last ones, or none (every candidate examined), in ASCII, Japanese and full-width Latin.
Each evaluation's CPU time is taken alone (``time.process_time_ns``), in rounds that
interleave every message and mode; before measuring, each result is checked against the
unindexed evaluation (:meth:`Rules.explain`, every rule and condition), whose time is
shown as well.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Literal, NamedTuple

from benchmarks.report import rewrite_section
from chatbridge.automation.hours import BusinessHours
from chatbridge.automation.rules import Context, Mode, Reply, Rule, Rules, Tag, When

HEADING = "## Rule evaluation"
RULES, ROUNDS, EVALUATIONS = 1_000, 9, 300
TARGET_MS = 1.0

TOPICS = [
    "refund", "invoice", "order", "delivery", "password", "cancel", "subscription", "coupon",
    "warranty", "exchange", "payment", "receipt", "shipping", "tracking", "account", "address",
    "discount", "return", "upgrade", "voucher",
]  # fmt: skip
PRODUCTS = [
    "kettle", "toaster", "blender", "mixer", "grill", "fryer", "juicer", "steamer", "oven",
    "cooker", "heater", "fan", "lamp", "kettle pro", "speaker", "router", "camera", "watch",
    "tablet", "phone", "charger", "cable", "headset", "monitor", "printer",
]  # fmt: skip
TOPICS_JA = [
    "返金",
    "請求書",
    "注文",
    "配送",
    "パスワード",
    "解約",
    "クーポン",
    "保証",
    "交換",
    "支払い",
]
PRODUCTS_JA = [
    "ケトル",
    "トースター",
    "ミキサー",
    "グリル",
    "オーブン",
    "ヒーター",
    "ランプ",
    "カメラ",
]

#: Regex keywords (formatted with the rule's index): a literal start, an alternation, neither.
PATTERNS = [
    r"order\s*#?{index}\d{{4}}\b",
    r"(?:tracking|追跡)\s*(?:no\.?|番号)?\s*{index}[a-z]{{3}}",
    r"\b{index}\d{{2}}-\d{{4}}\b",
]

HOURS = BusinessHours.from_config({"timezone": "Asia/Tokyo", "weekdays": ["09:00-18:00"]})
AT = datetime(2026, 5, 8, 3, tzinfo=UTC)  # Friday 12:00 in Tokyo: open


def _keywords(rng: random.Random, index: int) -> list[str]:
    """Two or three distinct phrases of rule ``index``: one in four Japanese."""
    if index % 4 == 3:
        topic, product = rng.choice(TOPICS_JA), PRODUCTS_JA[index % len(PRODUCTS_JA)]
        return [f"{product}の{topic}", f"{topic}{product}{index}"]
    topic, product = rng.choice(TOPICS), PRODUCTS[index % len(PRODUCTS)]
    return [f"{topic} {product} {index}", f"{product} {topic} {index}", f"{topic}-{index}"]


def rule_set() -> list[Rule]:
    """RULES rules, the last two matched by the "late" messages (and nothing earlier)."""
    rng = random.Random(16)  # noqa: S311
    kinds = ["contains"] * 60 + ["exact"] * 20 + ["word"] * 10 + ["regex"] * 5 + ["none"] * 5
    rules = []
    for index in range(RULES - 2):
        kind = rng.choice(kinds)
        then = (Reply(text=f"answer {index}"),)
        hours = rng.choice([None] * 9 + ["open"])
        if kind == "none":
            channels = (rng.choice(["sms", "email", "instagram"]),)
            when = When(channels=channels, customer_tags=(f"segment-{index}",), hours=hours)
        elif kind == "regex":
            when = When(keywords=(PATTERNS[index % 3].format(index=index),), match="regex")
        else:
            match: Literal["exact", "contains", "word"] = kind  # type: ignore[assignment]
            when = When(keywords=tuple(_keywords(rng, index)), match=match, hours=hours)
        rules.append(Rule(name=f"rule-{index}", when=when, then=then))
    rules += [
        Rule(name="late", when=When(keywords=("where is my parcel", "荷物はどこ")), then=then),
        Rule(name="late-vip", when=When(customer_tags=("vip",)), then=(Tag(tags=("vip",)),)),
    ]
    rules[5] = Rule(name="early", when=When(keywords=("hello",), match="word"), then=then)
    return rules


class Case(NamedTuple):
    name: str
    context: Context


def _context(text: str, tags: Collection[str] = ()) -> Context:
    return Context(text=text, channel="line", at=AT, language="ja", customer_tags=frozenset(tags))


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


CASES = [
    Case("early match, ASCII", _context("Hello! I have a question about my kettle refund")),
    Case(
        "late match, ASCII (78 chars)",
        _context(
            "Hi, where is my parcel? I ordered a kettle and the tracking says nothing", {"vip"}
        ),
    ),
    Case(
        "late match, Japanese",
        _context("こんにちは、荷物はどこですか\uff1fケトルを注文しました", {"vip"}),
    ),
    Case(
        "late match, full-width Latin",
        _context(_full_width("WHERE IS MY PARCEL? Order 12345 kettle"), {"vip"}),
    ),
    Case(
        "no match, ASCII (95 chars)",
        _context(
            "My refund for the kettle order from last week never arrived, please check the invoice"
        ),
    ),
    Case(
        "no match, Japanese",
        _context("先週注文したケトルの返金がまだ届いていません。請求書を確認してください。"),
    ),
    Case(
        "no match, 2 kB email",
        _context(" ".join(["the kettle order refund invoice tracking"] * 50)),
    ),
    Case(
        "no match, 40 kB email (rules read its first 4,000 characters)",
        _context(" ".join(["the kettle order refund invoice tracking"] * 1000)),
    ),
]


def _sample(rules: Rules, context: Context, indexed: bool) -> int:
    """The CPU time of one evaluation, ns."""
    evaluate = rules.evaluate if indexed else rules.explain
    started = time.process_time_ns()
    evaluate(context)
    return time.process_time_ns() - started


class Row(NamedTuple):
    case: str
    mode: Mode
    matched: list[str]
    indexed: list[list[int]]  # per round
    naive: list[list[int]]


def _p(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def measure() -> list[Row]:
    rule_list = rule_set()
    rows = []
    for mode in ("first", "all"):
        rules = Rules(rule_list, mode, HOURS)
        for case in CASES:
            matched = [match.rule.name for match in rules.evaluate(case.context)]
            naive = [e.rule.name for e in rules.explain(case.context) if e.applied]
            assert matched == naive, (case.name, mode, matched, naive)  # like for like
            rows.append(Row(case.name, mode, matched, [], []))
    rulesets = {mode: Rules(rule_list, mode, HOURS) for mode in ("first", "all")}
    for _ in range(ROUNDS):  # interleaved: every row once per round
        for row in rows:
            rules, context = (
                rulesets[row.mode],
                CASES[[c.name for c in CASES].index(row.case)].context,
            )
            row.indexed.append([_sample(rules, context, True) for _ in range(EVALUATIONS)])
            row.naive.append([_sample(rules, context, False) for _ in range(EVALUATIONS // 30)])
    return rows


def section() -> list[str]:
    """Run the benchmark; its section of docs/benchmarks.md as lines."""
    started = time.perf_counter()
    rows = measure()
    lines = [
        f"{HEADING} ({RULES:,} rules, CPU µs per message, lower is better)",
        "",
        f"Written by `python -m benchmarks.rules` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"{ROUNDS} interleaved rounds of {EVALUATIONS} evaluations per row, each timed alone;",
        "p99 is over all of them, the range is that of the rounds' p99s. Unindexed: every",
        "rule and condition checked in order (the dry run, `Rules.explain`), which every",
        "indexed result was checked against first.",
        "",
        "| message | mode | matched | median | p99 | p99 of rounds | unindexed median "
        "| target p99 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        samples = [s for round_ in row.indexed for s in round_]
        rounds = [_p(round_, 0.99) for round_ in row.indexed]
        naive = [s for round_ in row.naive for s in round_]
        p99 = _p(samples, 0.99)
        verdict = "✓" if p99 < TARGET_MS * 1000 else "✗"
        lines.append(
            f"| {row.case} | {row.mode} | {', '.join(row.matched) or 'none'} "
            f"| {statistics.median(samples) / 1000:,.1f} | **{p99:,.1f}** "
            f"| {min(rounds):,.1f}-{max(rounds):,.1f} | {statistics.median(naive) / 1000:,.0f} "
            f"| < {TARGET_MS * 1000:,.0f} {verdict} |"
        )
    lines += ["", f"The run took {time.perf_counter() - started:.0f} s.", ""]
    return lines


def main() -> None:
    """Rewrite only this benchmark's section of docs/benchmarks.md (appended if absent)."""
    rewrite_section(HEADING, section())


if __name__ == "__main__":
    main()
