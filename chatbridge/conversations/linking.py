"""Which identities are phone numbers: the one fact automatic linking relies on.

Two identities are suggested (or, by choice, linked) as one customer when they carry
exactly the same E.164 number: an SMS number (Twilio's ``From``, Vonage's ``msisdn``,
both kept as ``+`` and digits) and a WhatsApp ``wa_id`` (digits, country code first).
Never a near match: WhatsApp ids may differ from the dialled number (docs/conversations.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from chatbridge.models import Identity

LinkPolicy = Literal["auto", "suggest", "off"]

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DIGITS = re.compile(r"[1-9][0-9]{6,14}")


def _e164(address: str) -> str | None:
    return address if _E164.fullmatch(address) else None


def _wa_id(address: str) -> str | None:
    return f"+{address}" if _DIGITS.fullmatch(address) else None


#: A channel whose addresses are phone numbers -> its address as E.164 (None: not one).
#: An application may add its own channels.
PHONE_CHANNELS: dict[str, Callable[[str], str | None]] = {"sms": _e164, "whatsapp": _wa_id}


def phone_of(identity: Identity) -> str | None:
    """The E.164 number ``identity`` is, if its channel's addresses are numbers."""
    parse = PHONE_CHANNELS.get(identity.channel)
    return parse(identity.address) if parse else None
