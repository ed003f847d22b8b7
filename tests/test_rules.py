import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from chatbridge.automation.hours import BusinessHours
from chatbridge.automation.rules import (
    MAX_TEXT,
    Context,
    HandOff,
    Reply,
    ReplyMenu,
    ReplyTemplate,
    RouteTo,
    Rule,
    Rules,
    SetPriority,
    Tag,
    When,
)
from chatbridge.automation.text import KeywordScanner, normalize, occurs_as_word, required_literals
from chatbridge.errors import ConfigurationError
from chatbridge.models import Button, Interactive, Template

HOURS = BusinessHours.from_config({"timezone": "Asia/Tokyo", "weekdays": ["09:00-18:00"]})
FRIDAY_NOON = datetime(2026, 5, 8, 3, tzinfo=UTC)  # 12:00 in Tokyo
SATURDAY = datetime(2026, 5, 9, 11, tzinfo=UTC)  # 20:00 in Tokyo


def context(text: str | None, channel: str = "whatsapp", **facts: Any) -> Context:
    return Context(text=text, channel=channel, at=facts.pop("at", FRIDAY_NOON), **facts)


def names(rules: Rules, ctx: Context) -> list[str]:
    return [match.rule.name for match in rules.evaluate(ctx)]


def full_width(text: str) -> str:
    """ASCII '!'..'~' written full-width, as WeChat and LINE users often type it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _half_width_katakana() -> dict[str, str]:
    """Full-width katakana -> its half-width spelling (voiced ones with a separate mark)."""
    spellings = {}
    for code in range(0xFF66, 0xFF9E):
        for mark in ("", "\uff9e", "\uff9f"):
            full = unicodedata.normalize("NFKC", chr(code) + mark)
            if len(full) == 1:
                spellings[full] = chr(code) + mark
    return spellings


HALF_WIDTH = _half_width_katakana()


# -- normalisation ------------------------------------------------------------------------


def test_normalize_folds_width_case_and_whitespace() -> None:
    assert normalize(f"  {full_width('REFUND')}\u3000 Please\n\tNOW ") == "refund please now"
    assert normalize("ﾍﾝｷﾝ ｶﾞ") == "ヘンキン ガ"
    assert normalize("Straße") == "strasse"


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@given(
    keyword=st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
    before=st.text("abcdefgh xyz!?", max_size=10),
    after=st.text("abcdefgh xyz!?", max_size=10),
    kind=st.sampled_from(["exact", "contains", "word"]),
    data=st.data(),
)
def test_full_width_and_half_width_keywords_match_alike(
    keyword: str, before: str, after: str, kind: str, data: st.DataObject
) -> None:
    message = keyword if kind == "exact" else f"{before} {keyword} {after}"
    spellings = [
        keyword,
        keyword.upper(),
        full_width(keyword),
        full_width(keyword.upper()),
        data.draw(st.sampled_from([full_width(keyword).swapcase(), keyword.title()])),
    ]
    rules = Rules(
        [Rule(name=str(i), when=When(keywords=(s,), match=kind)) for i, s in enumerate(spellings)],
        "all",
    )
    expected = names(rules, context(message))
    assert expected == [str(i) for i in range(len(spellings))]  # all match the plain message
    for written in (message.upper(), full_width(message), full_width(message.swapcase())):
        assert names(rules, context(written)) == expected


@given(st.lists(st.sampled_from(sorted(HALF_WIDTH)), min_size=1, max_size=6), st.data())
def test_half_width_and_full_width_katakana_match_alike(
    letters: list[str], data: st.DataObject
) -> None:
    full = "".join(letters)
    half = "".join(HALF_WIDTH[letter] for letter in letters)
    kind = data.draw(st.sampled_from(["exact", "contains", "word"]))
    rules = Rules(
        [
            Rule(name=n, when=When(keywords=(k,), match=kind))
            for n, k in [("full", full), ("half", half)]
        ],
        "all",
    )
    for message in (full, half):
        shown = message if kind == "exact" else f"すみません{message}をください"
        assert names(rules, context(shown)) == ["full", "half"]


# -- match kinds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "text", "expected"),
    [
        ("refund", "i want a refund.", True),
        ("refund", "refunds please", False),
        ("refund", "prefund", False),
        ("refund", "my_refund", False),
        ("refund", "refunds or a refund", True),  # a later occurrence is a word
        ("where is my order", "hi, where is my order?", True),
        ("返金", "返金したいです", True),  # no spaces in Japanese: a substring
        ("refund", "返金refundください", True),  # next to CJK characters
        ("order", "order123", False),
    ],
)
def test_word_match(keyword: str, text: str, expected: bool) -> None:
    assert occurs_as_word(keyword, text) is expected


def test_exact_contains_regex() -> None:
    rules = Rules(
        [
            Rule(name="hi", when=When(keywords=("hi", "Hello"), match="exact")),
            Rule(name="order", when=When(keywords=(r"ORDER\s*#?\d+",), match="regex")),
            Rule(name="help", when=When(keywords=("help",))),
        ],
        "all",
    )
    assert names(rules, context(" HELLO ")) == ["hi"]
    assert names(rules, context("hi there")) == []
    assert names(rules, context(full_width("order #123") + " help")) == ["order", "help"]
    assert names(rules, context("helpless")) == ["help"]
    assert names(rules, context(None)) == []


def test_conditions_other_than_keywords() -> None:
    rules = Rules(
        [
            Rule(name="line", when=When(channels=("LINE",))),
            Rule(name="ja", when=When(languages=("ja",))),
            Rule(name="vip", when=When(customer_tags=("vip", "gold"))),
            Rule(name="plan", when=When(fields={"plan": "gold", "seats": 3})),
            Rule(name="open", when=When(hours="open")),
            Rule(name="closed", when=When(hours="closed")),
        ],
        "all",
        HOURS,
    )
    assert names(rules, context("x", "line", language="JA-jp")) == ["line", "ja", "open"]
    vip = context("x", customer_tags=frozenset({"vip", "gold", "new"}), at=SATURDAY)
    assert names(rules, vip) == ["vip", "closed"]
    assert names(rules, context("x", customer_tags=frozenset({"vip"}))) == ["open"]
    assert names(rules, context("x", fields={"plan": "gold", "seats": 3})) == ["plan", "open"]
    assert names(rules, context("x", fields={"plan": "gold", "seats": 4})) == ["open"]


def test_first_mode_keeps_declaration_order() -> None:
    rules = Rules(
        [
            Rule(name="vip", when=When(customer_tags=("vip",))),
            Rule(name="refund", when=When(keywords=("refund",))),
            Rule(name="any", when=When()),
        ]
    )
    assert names(rules, context("refund", customer_tags=frozenset({"vip"}))) == ["vip"]
    assert names(rules, context("refund")) == ["refund"]
    assert names(rules, context("hello")) == ["any"]


def test_context_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        Context(text="hi", channel="line", at=datetime(2026, 1, 1))


# -- the index does not change what matches -----------------------------------------------

VOCABULARY = ["refund", "ref", "fund", "order", "re", "a_b", "返金", "注文", "返", "help me"]
PATTERNS = ["ref.nd", r"\d+", "^order", "fund$", "返金|注文", r"\bre\b"]
CJK = "\u3040-\u9fff"


def _reference_keyword(kind: str, keyword: str, text: str) -> bool:
    """The match kinds, written independently of chatbridge.automation."""
    if kind == "regex":
        return re.search(keyword, text, re.IGNORECASE) is not None
    keyword = normalize(keyword)
    if kind == "exact":
        return text == keyword
    if kind == "contains":
        return keyword in text
    left = "" if re.match(f"[{CJK}]", keyword[0]) else rf"(?:(?<!\w)|(?<=[{CJK}]))"
    right = "" if re.match(f"[{CJK}]", keyword[-1]) else rf"(?:(?!\w)|(?=[{CJK}]))"
    return re.search(left + re.escape(keyword) + right, text) is not None


def _reference(rules: list[Rule], mode: str, ctx: Context) -> list[str]:
    """Every rule, every condition, in order: what ``Rules.evaluate`` must return."""
    matched = []
    for rule in rules:
        when = rule.when
        text = None if ctx.text is None else normalize(ctx.text)
        language = (ctx.language or "").split("-")[0].lower()
        conditions = [
            not when.keywords
            or (
                text is not None
                and any(_reference_keyword(when.match, k, text) for k in when.keywords)
            ),
            not when.channels or ctx.channel in when.channels,
            not when.languages
            or language in [lang.split("-")[0].lower() for lang in when.languages],
            all(tag in ctx.customer_tags for tag in when.customer_tags),
            all(k in ctx.fields and ctx.fields[k] == v for k, v in when.fields.items()),
            when.hours is None or HOURS.is_open(ctx.at) == (when.hours == "open"),
        ]
        if all(conditions):
            matched.append(rule.name)
    return matched[:1] if mode == "first" else matched


def _spelled(data: st.DataObject, text: str) -> str:
    """``text`` with some characters full-width or upper case."""
    flips = data.draw(
        st.lists(st.sampled_from(["upper", "wide", "same"]), min_size=len(text), max_size=len(text))
    )
    out = []
    for char, flip in zip(text, flips, strict=True):
        out.append(
            char.upper() if flip == "upper" else full_width(char) if flip == "wide" else char
        )
    return "".join(out)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    rules = []
    for i in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["exact", "contains", "word", "regex", "none"]))
        pool = PATTERNS if kind == "regex" else VOCABULARY
        keywords = (
            ()
            if kind == "none"
            else tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3)))
        )
        when = When(
            keywords=keywords,
            match="contains" if kind == "none" else kind,
            channels=tuple(draw(st.lists(st.sampled_from(["whatsapp", "line"]), max_size=1))),
            languages=tuple(draw(st.lists(st.sampled_from(["en", "ja-JP"]), max_size=1))),
            customer_tags=tuple(draw(st.lists(st.sampled_from(["vip", "new"]), max_size=2))),
            fields=draw(st.sampled_from([{}, {}, {"plan": "gold"}])),
            hours=draw(st.sampled_from([None, None, "open", "closed"])),
        )
        rules.append(Rule(name=f"r{i}", when=when))
    return rules


@settings(max_examples=400)
@given(rule_sets(), st.sampled_from(["first", "all"]), st.data())
def test_indexed_evaluation_equals_the_reference(
    rules: list[Rule], mode: str, data: st.DataObject
) -> None:
    indexed = Rules(rules, "first" if mode == "first" else "all", HOURS)
    pieces = data.draw(
        st.lists(st.sampled_from([*VOCABULARY, "s", " ", "_", "1", "x", "。"]), max_size=6)
    )
    text = data.draw(st.sampled_from([None, "".join(pieces), " ".join(pieces)]))
    ctx = context(
        None if text is None else _spelled(data, text),
        data.draw(st.sampled_from(["whatsapp", "line"])),
        language=data.draw(st.sampled_from([None, "en", "ja", "JA-jp", "fr"])),
        customer_tags=frozenset(data.draw(st.lists(st.sampled_from(["vip", "new"])))),
        fields=data.draw(st.sampled_from([{}, {"plan": "gold"}, {"plan": "free"}])),
        at=data.draw(st.sampled_from([FRIDAY_NOON, SATURDAY])),
    )
    matches = indexed.evaluate(ctx)
    event(f"{mode}: {min(len(matches), 3)} matches")
    assert [m.rule.name for m in matches] == _reference(rules, mode, ctx)
    applied = [(e.rule.name, e.why) for e in indexed.explain(ctx) if e.applied]
    assert [(m.rule.name, m.why) for m in matches] == applied


@given(
    st.lists(st.text("abc返金", min_size=1, max_size=4), min_size=1, max_size=20),
    st.text("abc返金 ", max_size=30),
)
def test_scanner_finds_every_keyword_overlapping_ones_too(keywords: list[str], text: str) -> None:
    assert KeywordScanner(keywords).scan(text) == {k for k in keywords if k in text}


# -- dry run ------------------------------------------------------------------------------


def test_explanations() -> None:
    rules = Rules(
        [
            Rule(name="invoices", when=When(keywords=("Invoice", "bill"), match="word")),
            Rule(name="refunds", when=When(keywords=("refund", "返金"), channels=("whatsapp",))),
            Rule(name="line only", when=When(channels=("line",))),
            Rule(name="ja", when=When(languages=("ja",))),
            Rule(name="vip", when=When(customer_tags=("vip", "gold"), fields={"plan": "gold"})),
            Rule(name="gold", when=When(fields={"plan": "gold", "seats": 2})),
            Rule(name="away", when=When(hours="closed")),
            Rule(name="orders", when=When(keywords=(r"#\d+",), match="regex")),
            Rule(name="catch-all", when=When()),
        ],
        hours=HOURS,
    )
    ctx = context(
        f"I want a {full_width('REFUND')} for #42",
        customer_tags=frozenset({"vip"}),
        fields={"plan": "free"},
        at=SATURDAY,
    )
    assert [str(e) for e in rules.explain(ctx)] == [
        'invoices: no match: no keyword of ["invoice", "bill"] (word) in "i want a refund for #42"',
        'refunds: matched: keyword "refund" (contains) in "i want a refund for #42"; '
        "channel whatsapp",
        "line only: no match: channel whatsapp is not one of [line]",
        "ja: no match: the customer's language is unknown, not one of [ja]",
        "vip: no match: customer not tagged gold",
        'gold: no match: field plan is "free", not "gold"',
        'away: matched, not applied ("refunds" matched first): closed at Sat 2026-05-09 20:00 '
        "(business hours Mon-Fri 09:00-18:00 Asia/Tokyo)",
        'orders: matched, not applied ("refunds" matched first): pattern "#\\d+" (regex) matched '
        '"#42" in "i want a refund for #42"',
        'catch-all: matched, not applied ("refunds" matched first): no conditions',
    ]
    assert [str(e) for e in rules.explain(context(None, "line", language="fr"))][:4] == [
        "invoices: no match: the message has no text",
        "refunds: no match: the message has no text",
        "line only: matched: channel line",
        "ja: no match: language fr is not one of [ja]",
    ]
    missing = rules.explain(context("x", customer_tags=frozenset({"vip", "gold"})))
    assert missing[4].why == 'field plan is not set (wanted "gold")'


def test_long_texts_are_shortened_in_explanations() -> None:
    rules = Rules([Rule(name="r", when=When(keywords=("zzz",)))])
    [explanation] = rules.explain(context("a" * 100))
    assert explanation.why == f'no keyword of ["zzz"] (contains) in "{"a" * 59}…"'


# -- configuration ------------------------------------------------------------------------

GOOD = {
    "mode": "all",
    "hours": {"timezone": "Asia/Tokyo"},  # [automation.hours]: parsed by hours.py
    "rules": [
        {
            "name": "refunds",
            "keywords": ["refund", "返金"],
            "match": "word",
            "channels": ["whatsapp", "line"],
            "languages": ["en", "ja"],
            "customer_tags": ["vip"],
            "fields": {"plan": "gold"},
            "hours": "open",
            "reply": "Refunds take 3-5 days.",
            "template": {"name": "refund_info", "language": "en"},
            "menu": {"body": "Pick one", "buttons": [{"id": "order", "title": "My order"}]},
            "tag": ["refund"],
            "customer_tag": ["asked-refund"],
            "priority": 2,
            "queue": "billing",
            "skills": ["ja"],
            "handoff": True,
        },
        {"name": "handoff", "keywords": ["human"], "handoff": True},
    ],
}


def test_from_config() -> None:
    rules = Rules.from_config(GOOD, hours=HOURS)
    assert rules.mode == "all"
    refunds, handoff = rules.rules
    assert refunds.when == When(
        keywords=("refund", "返金"),
        match="word",
        channels=("whatsapp", "line"),
        languages=("en", "ja"),
        customer_tags=("vip",),
        fields={"plan": "gold"},
        hours="open",
    )
    assert refunds.then == (
        Reply(text="Refunds take 3-5 days."),
        ReplyTemplate(template=Template(name="refund_info", language="en")),
        ReplyMenu(
            interactive=Interactive(body="Pick one", buttons=[Button(id="order", title="My order")])
        ),
        Tag(tags=("refund",)),
        Tag(tags=("asked-refund",), on="customer"),
        SetPriority(priority=2),
        RouteTo(queue="billing", skills=("ja",)),
        HandOff(queue="billing"),
    )
    assert handoff == Rule(name="handoff", when=When(keywords=("human",)), then=(HandOff(),))
    assert Rules.from_config({}).rules == ()


def _with(**changes: Any) -> dict[str, Any]:
    rule = {"name": "refunds", "keywords": ["refund"], "reply": "ok"}
    rule.update(changes)
    return {
        "rules": [
            {"name": "first", "reply": "hi"},
            {k: v for k, v in rule.items() if v is not None},
        ]
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"mode": "any"}, 'automation.mode: "first" or "all", not \'any\''),
        ({"rules": {"name": "x"}}, "automation.rules: an array of tables"),
        ({"rules": ["x"]}, "automation.rules[0]: a table, got 'x'"),
        (_with(name=None), 'automation.rules[1]: missing key "name"'),
        (
            _with(keyword=["x"]),
            'automation.rules[1] "refunds": unknown key "keyword" (did you mean "keywords"?)',
        ),
        (_with(replies="x"), 'unknown key "replies" (did you mean "reply"?)'),
        (
            _with(match="fuzzy"),
            'automation.rules[1] "refunds": match: '
            "Input should be 'exact', 'contains', 'word' or 'regex'",
        ),
        (_with(keywords=None, match="exact"), '"match" without "keywords"'),
        (_with(keywords="refund"), "keywords: Input should be a valid tuple"),
        (_with(keywords=[1]), "keywords.0: Input should be a valid string"),
        (_with(keywords=["  "]), 'rule "refunds": keywords[0] is empty'),
        (
            _with(keywords=["(unclosed"], match="regex"),
            'rule "refunds": keywords[0]: invalid regex "(unclosed"',
        ),
        (_with(hours="maybe"), "hours: Input should be 'open' or 'closed'"),
        (_with(fields=["plan"]), "fields: Input should be a valid dictionary"),
        (
            _with(reply=None),
            'automation.rules[1] "refunds": no action; give one of reply, template',
        ),
        (_with(reply=None, handoff=False), "no action"),
        (_with(reply=3), "reply: Input should be a valid string"),
        (_with(template={"language": "en"}), "template.name: Field required"),
        (
            _with(menu={"body": "x"}),
            "menu: Value error, an interactive message has either buttons or list sections",
        ),
        (
            _with(menu={"body": "x", "buttons": [{"id": "a"}]}),
            "menu.buttons.0.title: Field required",
        ),
        (_with(tag="vip"), "tag: Input should be a valid tuple"),
        (_with(priority=True), "priority: Input should be a valid integer"),
        (_with(priority="2"), "priority: Input should be a valid integer"),
        (_with(queue=["billing"]), "queue: Input should be a valid string"),
        (_with(skills=["ja"]), '"skills" without "queue"'),
        (_with(queue="billing", skills="ja"), "skills: Input should be a valid tuple"),
        (_with(handoff="yes"), "handoff: true or false, got 'yes'"),
        (_with(name="first"), "rules: two rules are named first"),
        (
            _with(hours="open"),
            'rule "refunds": an hours condition, but no business hours are configured',
        ),
    ],
)
def test_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Rules.from_config(table)
    assert message in str(raised.value)


def test_bad_regex_in_python_names_the_rule() -> None:
    with pytest.raises(ConfigurationError, match=r'rule "orders": keywords\[1\]: invalid regex'):
        Rule(name="orders", when=When(keywords=(r"\d+", "[a-"), match="regex"))
    with pytest.raises(ConfigurationError, match="mode"):
        Rules([], "some")  # type: ignore[arg-type]


SHAPES = [
    r"ab*c",
    r"x?yz",
    r"a(b)c",
    r"ab|cd",
    r"(?:ab)+c",
    r"a\d{2}-b",
    r"^ab$",
    r"a[bc]d",
    r"a.c",
]


@given(st.sampled_from(SHAPES), st.text(alphabet="abcdxyz-0123", max_size=12))
def test_a_text_a_pattern_matches_has_the_literals_it_requires(shape: str, text: str) -> None:
    """The shortcut that skips regex rules never skips one whose pattern matches."""
    pattern = re.compile(shape)
    if pattern.search(text):
        assert all(literal in text for literal in required_literals(pattern))


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"^(\w+\s?)*$", r"(a{1,3})+x", r"(?:a|b+)*c"])
def test_a_pattern_that_can_backtrack_exponentially_is_refused(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="repeats a repetition"):
        Rule(name="slow", when=When(keywords=(pattern,), match="regex"))


@pytest.mark.parametrize("pattern", [r"order\s*#?\d+", r"(ab)+c", r"(a{3})+", r"(\d{4}-)?\d+"])
def test_patterns_without_nested_repetition_are_taken(pattern: str) -> None:
    Rule(name="fine", when=When(keywords=(pattern,), match="regex"))


def test_rules_look_at_the_start_of_a_long_message_only() -> None:
    rules = Rules([Rule(name="late", when=When(keywords=("refund",)), then=(Tag(tags=("x",)),))])
    late = "a" * MAX_TEXT + " refund"
    assert rules.evaluate(Context(text=late, channel="email", at=FRIDAY_NOON)) == []
    early = "refund " + "a" * 1_000_000
    assert [
        m.rule.name for m in rules.evaluate(Context(text=early, channel="email", at=FRIDAY_NOON))
    ] == ["late"]
