"""E.164 phone numbers, checked with Google's libphonenumber rules (phonenumbers)."""

from __future__ import annotations

import re

import phonenumbers

from chatbridge.errors import MessageInvalidError

_E164 = re.compile(r"\+[1-9]\d{1,14}")


def require_e164(number: str) -> str:
    """``number`` if it is a possible E.164 number (``+`` and 2 to 15 digits, of a
    possible length for its country); MessageInvalidError otherwise."""
    if not _E164.fullmatch(number):
        raise MessageInvalidError(f"{number!r} is not an E.164 number (+ and up to 15 digits)")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        raise MessageInvalidError(f"{number!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise MessageInvalidError(f"{number!r} has an impossible length for its country")
    return number
