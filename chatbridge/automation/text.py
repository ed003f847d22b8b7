"""How messages and keywords are compared: one normal form, and a scan that finds many
keywords in a message at once."""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections import deque
from collections.abc import Iterable
from typing import Any


def normalize(text: str) -> str:
    """``text`` in the form keywords and messages are compared in: Unicode NFKC, case
    folded, whitespace runs collapsed to one space, stripped.

    NFKC rather than NFC because WeChat and LINE users type full-width Latin letters,
    digits and punctuation (U+FF01-FF5E) and some keyboards half-width katakana
    (U+FF61-FF9F): NFC keeps those as they are, the compatibility mappings of NFKC turn
    them into ASCII and full-width katakana, as others write them. NFKC is applied
    again after case folding, which can undo it (folding "ǰ" gives "j" and a
    combining caron), so that ``normalize`` is idempotent.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


class KeywordScanner:
    """Finds which of many keywords occur in a text, overlapping ones included, in one
    pass over the text whatever the number of keywords (Aho-Corasick).

    Keywords are taken as given: normalise them and the texts alike beforehand.
    """

    def __init__(self, keywords: Iterable[str]) -> None:
        self._next: list[dict[str, int]] = [{}]  # state -> character -> state
        self._found: list[tuple[str, ...]] = [()]  # state -> keywords ending there
        for keyword in dict.fromkeys(keywords):
            self._add(keyword)
        self._fail = self._link()

    def _add(self, keyword: str) -> None:
        state = 0
        for char in keyword:
            following = self._next[state].get(char)
            if following is None:
                following = len(self._next)
                self._next[state][char] = following
                self._next.append({})
                self._found.append(())
            state = following
        self._found[state] += (keyword,)

    def _link(self) -> list[int]:
        """Each state's failure link (the longest proper suffix that is also a state),
        breadth first; a state's keywords then include those of its link."""
        fail = [0] * len(self._next)
        queue = deque(self._next[0].values())
        while queue:
            state = queue.popleft()
            for char, following in self._next[state].items():
                link = fail[state]
                while link and char not in self._next[link]:
                    link = fail[link]
                fail[following] = self._next[link].get(char, 0) if state else 0
                self._found[following] += self._found[fail[following]]
                queue.append(following)
        return fail

    def scan(self, text: str) -> set[str]:
        """The keywords that occur in ``text``."""
        transitions, fail, found = self._next, self._fail, self._found
        seen: set[str] = set()
        state = 0
        for char in text:
            while state and char not in transitions[state]:
                state = fail[state]
            state = transitions[state].get(char, 0)
            if found[state]:
                seen.update(found[state])
        return seen


#: Characters of scripts written without spaces between words (CJK: Han, kana, Hangul).
_UNSPACED = re.compile(
    "[\u1100-\u11ff\u2e80-\u2fdf\u3005-\u3007\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)


def occurs_as_word(keyword: str, text: str) -> bool:
    """Whether ``keyword`` occurs in ``text`` as a whole word: the characters just before
    and after it are not letters, digits or "_". CJK text has no spaces between words, so
    next to a CJK character (in the text or at the keyword's edge) any position is a
    boundary: there a word match is a substring match ("返金" in "返金したい")."""
    start = text.find(keyword)
    while start >= 0:
        end = start + len(keyword)
        if _boundary(text, start - 1, keyword[0]) and _boundary(text, end, keyword[-1]):
            return True
        start = text.find(keyword, start + 1)
    return False


def _boundary(text: str, index: int, edge: str) -> bool:
    """Whether ``text[index]``, next to a keyword's ``edge`` character, ends a word."""
    if not 0 <= index < len(text):
        return True
    neighbour = text[index]
    return (
        not (neighbour.isalnum() or neighbour == "_")
        or _UNSPACED.match(neighbour) is not None
        or _UNSPACED.match(edge) is not None
    )


#: The standard library's regular expression parser (``re`` compiles what it parses).
_parser: Any = importlib.import_module("re._parser")


def required_literals(pattern: re.Pattern[str]) -> tuple[str, ...]:
    """Runs of literal characters that every match of ``pattern`` contains (read from
    its top-level sequence), so that a text lacking one need not be searched; () when
    none can be told (a pattern ignoring case, or one the parser reads differently)."""
    if pattern.flags & re.IGNORECASE:
        return ()
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except Exception:  # a parser of another version: no shortcut, the search decides
        return ()
    runs, run = [], ""
    for op, value in parsed:
        if op == _parser.LITERAL:
            run += chr(value)
        elif run:
            runs.append(run)
            run = ""
    return (*runs, run) if run else tuple(runs)


def nested_repeat(pattern: re.Pattern[str]) -> bool:
    """Whether ``pattern`` repeats without bound something of varying length that itself
    repeats (``(a+)+``, ``(\\w+\\s?)*``, ``(a{1,3})+``): Python's backtracking search
    can then take exponential time on a text that almost matches. The usual trap, not
    every one (overlapping alternatives, ``(a|a)*``, pass)."""
    try:
        parsed = _parser.parse(pattern.pattern, pattern.flags)
    except Exception:
        return False
    return _repeats_within(list(parsed), inside=False)


def _repeats_within(items: list[Any], *, inside: bool) -> bool:
    for op, value in items:
        if op in (_parser.MAX_REPEAT, _parser.MIN_REPEAT, _parser.POSSESSIVE_REPEAT):
            low, high, body = value
            if inside and low != high and op != _parser.POSSESSIVE_REPEAT:
                return True  # a varying length, repeated without bound: many ways to split
            if _repeats_within(list(body), inside=inside or high == _parser.MAXREPEAT):
                return True
            continue
        parts = (
            [value[-1]]
            if op == _parser.SUBPATTERN
            else value[1]
            if op == _parser.BRANCH
            else [value[1]]
            if op in (_parser.ASSERT, _parser.ASSERT_NOT)
            else []
        )
        if any(_repeats_within(list(part), inside=inside) for part in parts):
            return True
    return False
