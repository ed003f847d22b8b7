"""SMS segment counting (3GPP TS 23.038 alphabets, concatenation per TS 23.040).

A message that fits the GSM 7-bit default alphabet (extension-table characters take two
septets) is sent in GSM-7: 160 septets alone, 153 per part when concatenated. Anything
else goes as UCS-2: 70 UTF-16 units alone, 67 per part. An escape pair or a surrogate
pair is never split across parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


_LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@dataclass(frozen=True)
class SegmentCount:
    """How a text travels: its encoding, number of parts, and size in that encoding's
    units (septets or UTF-16 code units)."""

    encoding: Encoding
    segments: int
    units: int
    characters: int


def encoding_of(text: str) -> Encoding:
    """GSM-7 if every character is in the GSM default alphabet or its extension."""
    return (
        Encoding.GSM7
        if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
        else Encoding.UCS2
    )


def _unit_sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding is Encoding.GSM7:
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def count_segments(text: str) -> SegmentCount:
    """The segments ``text`` needs (an empty text still takes one)."""
    encoding = encoding_of(text)
    sizes = _unit_sizes(text, encoding)
    single, per_part = _LIMITS[encoding]
    units = sum(sizes)
    if units <= single:
        return SegmentCount(encoding, 1, units, len(text))
    segments, used = 1, 0
    for size in sizes:
        if used + size > per_part:
            segments, used = segments + 1, 0
        used += size
    return SegmentCount(encoding, segments, units, len(text))
