"""Carrier-standard SMS keywords (CTIA; Twilio's default opt-out handling)."""

from __future__ import annotations

from enum import StrEnum

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def keyword_of(text: str | None) -> Keyword | None:
    """The keyword a message consists of (case, surrounding space and trailing
    punctuation ignored), if any."""
    word = (text or "").strip().rstrip(".!").strip().upper()
    if word in OPT_OUT:
        return Keyword.OPT_OUT
    if word in OPT_IN:
        return Keyword.OPT_IN
    if word in HELP:
        return Keyword.HELP
    return None
