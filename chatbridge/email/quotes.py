"""Separating the new text of an email reply from the history it quotes."""

from __future__ import annotations

import re

_QUOTE_HEADERS = [
    re.compile(r"^On\b.{0,200}\bwrote:\s*$", re.S),  # Gmail, Apple Mail, Thunderbird
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.I),  # Outlook
    re.compile(r"^_{20,}\s*$"),  # Outlook's rule before From:/Sent:
    re.compile(r"^From:\s.+$"),  # a forwarded or Outlook header block
    re.compile(r"^Am\b.{0,200}\bschrieb\b.*:\s*$", re.S),
    re.compile(r"^Le\b.{0,200}\ba écrit\s*:\s*$", re.S),
]
_SIGNATURE = "-- "


def strip_quoted(text: str) -> str:
    """``text`` without quoted history and signature: everything from the first quote
    header ("On ... wrote:", "-----Original Message-----"...), the first line of a
    trailing ``>`` block, or the ``-- `` signature delimiter."""
    lines = text.splitlines()
    cut = len(lines)
    for index, line in enumerate(lines):
        joined = line + (" " + lines[index + 1] if index + 1 < len(lines) else "")
        if line == _SIGNATURE or any(p.match(line.strip()) for p in _QUOTE_HEADERS):
            cut = index
            break
        if line.startswith("On ") and _QUOTE_HEADERS[0].match(joined.strip()):
            cut = index  # the attribution line wrapped onto two lines
            break
    while cut > 0 and (lines[cut - 1].startswith(">") or not lines[cut - 1].strip()):
        cut -= 1
    return "\n".join(lines[:cut]).strip()
