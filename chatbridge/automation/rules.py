"""Keyword rules: what to do with an incoming message, stated as data.

A :class:`Rule` has conditions (:class:`When`, every one given must hold) and actions
(``then``). :class:`Rules` evaluates a set of them against a message's :class:`Context`,
in declaration order, the first matching rule only or every one (``mode``), and explains
every rule's outcome for a dry run (:meth:`Rules.explain`).

Keywords and messages are compared in :func:`~chatbridge.automation.text.normalize`'s
form (width, case and whitespace folded). Evaluation does not try every rule: an index
built once finds the rules whose keywords occur in the message (one pass over it,
whatever the number of keywords); only those, the rules without keywords and the regex
rules are checked, cheap conditions first, so a regex runs only when the rest holds.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, ValidationError

from chatbridge.automation.hours import BusinessHours
from chatbridge.automation.text import (
    KeywordScanner,
    nested_repeat,
    normalize,
    occurs_as_word,
    required_literals,
)
from chatbridge.errors import ConfigurationError
from chatbridge.models import Interactive, Template

MatchKind = Literal["exact", "contains", "word", "regex"]
Mode = Literal["first", "all"]


class When(BaseModel):
    """A rule's conditions; every one given must hold.

    - ``keywords`` and ``match``: the message (normalised) is one of the keywords
      (``exact``), contains one (``contains``), contains one as a whole word (``word``;
      next to CJK characters, which have no spaces between words, as a substring), or
      has a match of one of the patterns (``regex``: Python ``re``, searched in the
      normalised text, so ignoring case; write full-width characters half-width).
    - ``channels``: the message came on one of them ("whatsapp", "line").
    - ``languages``: the customer's preferred language is one of them, by primary subtag
      and ignoring case ("ja-JP" is "ja").
    - ``customer_tags``: the customer has all of them.
    - ``fields``: the customer's custom fields have these values.
    - ``hours``: the business is "open" or "closed" (the rule set's business hours).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    keywords: tuple[str, ...] = ()
    match: MatchKind = "contains"
    channels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    customer_tags: tuple[str, ...] = ()
    fields: dict[str, Any] = Field(default_factory=dict)
    hours: Literal["open", "closed"] | None = None


class Reply(BaseModel):
    """Answer with a text."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str


class ReplyTemplate(BaseModel):
    """Answer with an approved template (what a closed window still allows)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    template: Template


class ReplyMenu(BaseModel):
    """Answer with quick-reply buttons or a list: a FAQ menu."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    interactive: Interactive


class Tag(BaseModel):
    """Tag the conversation or the customer."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tags: tuple[str, ...] = Field(min_length=1)
    on: Literal["conversation", "customer"] = "conversation"


class SetPriority(BaseModel):
    """Set the conversation's priority (higher first)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    priority: StrictInt


class RouteTo(BaseModel):
    """Put the conversation in a queue, for an agent with these skills."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    queue: str
    skills: tuple[str, ...] = ()


class HandOff(BaseModel):
    """Hand the conversation to a person: of ``queue``, or of the default queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    queue: str | None = None


Action = Reply | ReplyTemplate | ReplyMenu | Tag | SetPriority | RouteTo | HandOff


@dataclass(frozen=True, kw_only=True)
class Context:
    """What rules are evaluated against: the message's text (None: it has none), its
    channel, the customer's language, tags and custom fields, and the time (aware)."""

    text: str | None
    channel: str
    at: datetime
    language: str | None = None
    customer_tags: frozenset[str] = frozenset()
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"a rule context needs an aware datetime, got the naive {self.at}")


class Rule(BaseModel):
    """A named rule: when its conditions hold, its actions apply. Regex keywords are
    compiled here; a bad one raises :class:`~chatbridge.errors.ConfigurationError`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    when: When = When()
    then: tuple[Action, ...] = ()
    _compiled: _Compiled = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        when = self.when
        keywords = _Keywords(self.name, when.match, when.keywords) if when.keywords else None
        cheap = [
            _Channels(when.channels) if when.channels else None,
            _Languages(when.languages) if when.languages else None,
            _Tags(when.customer_tags) if when.customer_tags else None,
            _Fields(when.fields) if when.fields else None,
            _Hours(when.hours) if when.hours else None,
        ]
        self._compiled = _Compiled(keywords, [c for c in cheap if c is not None])

    def __eq__(self, other: object) -> bool:
        """Equal definitions (pydantic would compare the compiled conditions too)."""
        if not isinstance(other, Rule):
            return NotImplemented
        return (self.name, self.when, self.then) == (other.name, other.when, other.then)


@dataclass(frozen=True)
class Match:
    """A rule that matched, and why (each condition that held)."""

    rule: Rule
    why: str

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.rule.then


@dataclass(frozen=True)
class Explanation:
    """One rule's outcome in a dry run: whether it matched and why, or the first of its
    conditions that failed and why; ``applied`` is False for a rule that matched after
    the first match in "first" mode (``shadowed_by`` names that one)."""

    rule: Rule
    matched: bool
    applied: bool
    why: str
    shadowed_by: str | None = None

    def __str__(self) -> str:
        if not self.matched:
            outcome = "no match"
        elif self.applied:
            outcome = "matched"
        else:
            outcome = f'matched, not applied ("{self.shadowed_by}" matched first)'
        return f"{self.rule.name}: {outcome}: {self.why}"


class Rules:
    """An ordered set of rules, evaluated in "first" mode (the first matching rule) or
    "all" mode (every matching rule, in order). ``hours`` are the business hours the
    rules' ``hours`` conditions look at."""

    def __init__(
        self, rules: Sequence[Rule], mode: Mode = "first", hours: BusinessHours | None = None
    ) -> None:
        if mode not in ("first", "all"):
            raise ConfigurationError(f'rules: mode is "first" or "all", not {mode!r}')
        names = [rule.name for rule in rules]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ConfigurationError(f"rules: two rules are named {', '.join(twice)}")
        if hours is None and (need := [r.name for r in rules if r.when.hours]):
            raise ConfigurationError(
                f'rule "{need[0]}": an hours condition, but no business hours are configured'
            )
        self.rules = tuple(rules)
        self._compiled = [rule._compiled for rule in self.rules]
        self.mode = mode
        self.hours = hours
        self._untexted: list[int] = []  # rules without keywords: always candidates
        #: Regex rules, each with the literals every match of each of its patterns has.
        self._regex: list[tuple[int, list[tuple[str, ...]]]] = []
        self._exact: dict[str, list[int]] = {}
        self._occurring: dict[str, list[int]] = {}  # contains and word keywords
        for index, rule in enumerate(self.rules):
            keywords = rule._compiled.keywords
            if keywords is None:
                self._untexted.append(index)
            elif keywords.kind == "regex":
                self._regex.append((index, [required_literals(p) for p in keywords.patterns]))
            else:
                where = self._exact if keywords.kind == "exact" else self._occurring
                for keyword in dict.fromkeys(keywords.keywords):
                    where.setdefault(keyword, []).append(index)
        self._scanner = KeywordScanner(self._occurring)

    @classmethod
    def from_config(cls, table: Mapping[str, Any], hours: BusinessHours | None = None) -> Rules:
        """From the ``[automation]`` TOML table: its ``mode`` and ``rules``
        (docs/automation.md); its other keys belong to other parts of automation."""
        mode = table.get("mode", "first")
        if mode not in ("first", "all"):
            raise ConfigurationError(f'automation.mode: "first" or "all", not {mode!r}')
        rules = table.get("rules", [])
        if not isinstance(rules, list):
            raise ConfigurationError("automation.rules: an array of tables ([[automation.rules]])")
        return cls([_rule(i, entry) for i, entry in enumerate(rules)], mode, hours)

    def evaluate(self, context: Context) -> list[Match]:
        """The matching rules, in order: at most one in "first" mode."""
        facts = _Facts(context, self.hours)
        matches = []
        compiled = self._compiled
        for index in self._candidates(facts.text):
            if compiled[index].holds(facts):
                matches.append(Match(self.rules[index], compiled[index].why(facts)))
                if self.mode == "first":
                    break
        return matches

    def explain(self, context: Context) -> list[Explanation]:
        """The dry run: every rule's outcome, in order, each condition checked (no index
        involved: this is also the reference :meth:`evaluate` must agree with)."""
        facts = _Facts(context, self.hours)
        explanations = []
        first: str | None = None
        for rule, compiled in zip(self.rules, self._compiled, strict=True):
            failed = next((c for c in compiled.conditions if not c.holds(facts)), None)
            if failed is not None:
                explanations.append(Explanation(rule, False, False, failed.why_not(facts)))
                continue
            shadowed = first if self.mode == "first" else None
            explanations.append(
                Explanation(rule, True, shadowed is None, compiled.why(facts), shadowed)
            )
            first = first or rule.name
        return explanations

    def _candidates(self, text: str | None) -> list[int]:
        """The rules that may match a message of ``text`` (normalised), in order."""
        if text is None:
            return self._untexted
        found = {*self._untexted, *self._exact.get(text, ())}
        for index, needs in self._regex:  # a pattern can match only where its literals are
            if any(all(literal in text for literal in need) for need in needs):
                found.add(index)
        for keyword in self._scanner.scan(text):
            found.update(self._occurring[keyword])
        return sorted(found)


class _Compiled:
    """A rule's conditions as objects: in declaration order (for explanations), and
    cheapest first (to evaluate). A plain object: evaluation reads it on every message."""

    __slots__ = ("checks", "conditions", "keywords")

    def __init__(self, keywords: _Keywords | None, cheap: list[_Condition]) -> None:
        self.keywords = keywords
        self.conditions = tuple([keywords, *cheap] if keywords else cheap)
        self.checks = tuple([*cheap, keywords] if keywords else cheap)

    def holds(self, facts: _Facts) -> bool:
        return all(check.holds(facts) for check in self.checks)

    def why(self, facts: _Facts) -> str:
        return "; ".join(c.why(facts) for c in self.conditions) or "no conditions"


#: How much of a message rules look at (characters): an email of megabytes costs no
#: more to evaluate than this much of it (about 1 ms with 1,000 rules: the keyword scan
#: is linear in the text; docs/benchmarks.md).
MAX_TEXT = 4_000


class _Facts:
    """One evaluation's context, with what is worked out from it once: the normalised
    text, the channel and language as compared, whether the business is open (lazily)."""

    __slots__ = ("_open", "context", "hours", "language", "text")

    def __init__(self, context: Context, hours: BusinessHours | None) -> None:
        self.context = context
        self.hours = hours
        text = context.text
        self.text = None if text is None else normalize(text[:MAX_TEXT])
        self.language = None if context.language is None else _primary(context.language)
        self._open: bool | None = None

    @property
    def open(self) -> bool:
        if self._open is None:
            assert self.hours is not None  # Rules refuses hours conditions without hours
            self._open = self.hours.is_open(self.context.at)
        return self._open


class _Condition(Protocol):
    def holds(self, facts: _Facts) -> bool: ...

    def why(self, facts: _Facts) -> str:
        """What held, for a match."""

    def why_not(self, facts: _Facts) -> str:
        """What failed, for a dry run."""


class _Keywords:
    """The keyword condition, keywords normalised (regex patterns compiled instead)."""

    def __init__(self, rule: str, kind: MatchKind, keywords: Sequence[str]) -> None:
        self.kind = kind
        self.keywords = tuple(normalize(k) for k in keywords) if kind != "regex" else ()
        self.patterns: tuple[re.Pattern[str], ...] = ()
        if "" in self.keywords:
            empty = self.keywords.index("")
            raise ConfigurationError(f'rule "{rule}": keywords[{empty}] is empty')
        if kind == "regex":
            self.patterns = tuple(_compiled(rule, i, k) for i, k in enumerate(keywords))

    def holds(self, facts: _Facts) -> bool:
        return facts.text is not None and self._found(facts.text) is not None

    def _found(self, text: str) -> str | None:
        """The first keyword (or the text a pattern matched) found in ``text``."""
        for pattern in self.patterns:
            if found := pattern.search(text):
                return f'pattern "{pattern.pattern}" (regex) matched "{found.group()}"'
        test = _TESTS.get(self.kind)
        for keyword in self.keywords:
            if test is not None and test(text, keyword):
                return f'keyword "{keyword}" ({self.kind})'
        return None

    def why(self, facts: _Facts) -> str:
        return f"{self._found(facts.text or '')} in {_quoted(facts.text or '')}"

    def why_not(self, facts: _Facts) -> str:
        if facts.text is None:
            return "the message has no text"
        if self.patterns:
            listed = ", ".join(f'"{p.pattern}"' for p in self.patterns)
            return f"no match of [{listed}] (regex) in {_quoted(facts.text)}"
        listed = ", ".join(f'"{k}"' for k in self.keywords)
        return f"no keyword of [{listed}] ({self.kind}) in {_quoted(facts.text)}"


#: Whether a keyword is in a text, by match kind (regex patterns are searched instead).
_TESTS: dict[str, Callable[[str, str], bool]] = {
    "exact": lambda text, keyword: text == keyword,
    "contains": lambda text, keyword: keyword in text,
    "word": lambda text, keyword: occurs_as_word(keyword, text),
}


class _Channels:
    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = tuple(c.lower() for c in channels)

    def holds(self, facts: _Facts) -> bool:
        return facts.context.channel.lower() in self.channels

    def why(self, facts: _Facts) -> str:
        return f"channel {facts.context.channel}"

    def why_not(self, facts: _Facts) -> str:
        return f"channel {facts.context.channel} is not one of [{', '.join(self.channels)}]"


class _Languages:
    def __init__(self, languages: Sequence[str]) -> None:
        self.languages = tuple(_primary(language) for language in languages)

    def holds(self, facts: _Facts) -> bool:
        return facts.language in self.languages

    def why(self, facts: _Facts) -> str:
        return f"language {facts.context.language}"

    def why_not(self, facts: _Facts) -> str:
        wanted = f"one of [{', '.join(self.languages)}]"
        if facts.context.language is None:
            return f"the customer's language is unknown, not {wanted}"
        return f"language {facts.context.language} is not {wanted}"


class _Tags:
    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = tuple(tags)

    def holds(self, facts: _Facts) -> bool:
        return all(tag in facts.context.customer_tags for tag in self.tags)

    def why(self, facts: _Facts) -> str:
        return f"customer tagged {', '.join(self.tags)}"

    def why_not(self, facts: _Facts) -> str:
        missing = [tag for tag in self.tags if tag not in facts.context.customer_tags]
        return f"customer not tagged {', '.join(missing)}"


_UNSET = object()


class _Fields:
    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = dict(fields)

    def holds(self, facts: _Facts) -> bool:
        given = facts.context.fields
        return all(given.get(key, _UNSET) == value for key, value in self.fields.items())

    def why(self, facts: _Facts) -> str:
        return "; ".join(f"field {key} = {_shown(value)}" for key, value in self.fields.items())

    def why_not(self, facts: _Facts) -> str:
        given = facts.context.fields
        key, value = next((k, v) for k, v in self.fields.items() if given.get(k, _UNSET) != v)
        if key not in given:
            return f"field {key} is not set (wanted {_shown(value)})"
        return f"field {key} is {_shown(given[key])}, not {_shown(value)}"


class _Hours:
    def __init__(self, wanted: Literal["open", "closed"]) -> None:
        self.open = wanted == "open"

    def holds(self, facts: _Facts) -> bool:
        return facts.open == self.open

    def why(self, facts: _Facts) -> str:
        assert facts.hours is not None
        state = "open" if facts.open else "closed"
        return f"{state} at {facts.hours.describe(facts.context.at)} (business hours {facts.hours})"

    why_not = why


def _primary(language: str) -> str:
    """A language code's primary subtag, lower case: "ja-JP" -> "ja"."""
    return language.replace("_", "-").split("-")[0].strip().lower()


def _compiled(rule: str, index: int, pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled; ignoring case only if it has upper-case letters: the text is
    case folded already, and IGNORECASE makes a search over twice as slow."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE if pattern != pattern.lower() else 0)
    except re.error as error:
        raise ConfigurationError(
            f'rule "{rule}": keywords[{index}]: invalid regex "{pattern}": {error}'
        ) from error
    if nested_repeat(compiled):
        raise ConfigurationError(
            f'rule "{rule}": keywords[{index}]: "{pattern}" repeats a repetition (like '
            "(a+)+), which can take exponential time on a customer's message: write it "
            "without the nesting"
        )
    return compiled


def _quoted(text: str, limit: int = 60) -> str:
    return f'"{text if len(text) <= limit else text[: limit - 1] + "…"}"'


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


# -- from the TOML table ------------------------------------------------------------------

_CONDITIONS = ("keywords", "match", "channels", "languages", "customer_tags", "fields", "hours")
#: Action keys, in the order their actions are taken.
_ACTIONS = ("reply", "template", "menu", "tag", "customer_tag", "priority", "queue", "handoff")
_KEYS = ("name", *_CONDITIONS, *_ACTIONS, "skills")

_T = TypeVar("_T")


def _rule(index: int, table: Any) -> Rule:
    """The rule of ``[[automation.rules]]`` number ``index`` (from 0)."""
    where = f"automation.rules[{index}]"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where}: a table, got {table!r}")
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f'{where}: missing key "name" (a non-empty string)')
    where = f'{where} "{name}"'
    for key in table:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ConfigurationError(f'{where}: unknown key "{key}"{hint}')
    if "match" in table and "keywords" not in table:
        raise ConfigurationError(f'{where}: "match" without "keywords"')
    if "skills" in table and "queue" not in table:
        raise ConfigurationError(f'{where}: "skills" without "queue"')
    when = _checked(where, None, lambda: When(**{k: table[k] for k in _CONDITIONS if k in table}))
    then = [_action(where, key, table) for key in _ACTIONS if key in table]
    if not any(then):
        raise ConfigurationError(f"{where}: no action; give one of {', '.join(_ACTIONS)}")
    return Rule(name=name, when=when, then=tuple(action for action in then if action))


def _action(where: str, key: str, table: Mapping[str, Any]) -> Action | None:
    value = table[key]
    if key == "reply":
        return _checked(where, key, lambda: Reply(text=value))
    if key == "template":
        return _checked(where, key, lambda: ReplyTemplate(template=value))
    if key == "menu":
        return _checked(where, key, lambda: ReplyMenu(interactive=value))
    if key in ("tag", "customer_tag"):
        on = "conversation" if key == "tag" else "customer"
        return _checked(where, key, lambda: Tag(tags=value, on=on))
    if key == "priority":
        return _checked(where, key, lambda: SetPriority(priority=value))
    if key == "queue":
        skills = table.get("skills", ())
        return _checked(where, None, lambda: RouteTo(queue=value, skills=skills))
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}: handoff: true or false, got {value!r}")
    return HandOff(queue=table.get("queue")) if value else None


def _checked(where: str, key: str | None, build: Callable[[], _T]) -> _T:
    """``build()``, a validation error of it raised as a ConfigurationError naming
    ``where`` and the key (``key`` in place of the model's first field name)."""
    try:
        return build()
    except ValidationError as error:
        problem = error.errors()[0]
        path = [str(part) for part in problem["loc"]]
        if key is not None:
            path[:1] = [key]
        raise ConfigurationError(f"{where}: {'.'.join(path)}: {problem['msg']}") from None
