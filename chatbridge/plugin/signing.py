"""Primitives shared by the channels' signature schemes: HMACs and a constant-time check.

Each channel's ``signature.py`` states its own scheme with these.
"""

from __future__ import annotations

import base64
import hmac
from functools import lru_cache

from chatbridge.errors import SignatureError


def hmac_digest(key: str, message: bytes, algorithm: str) -> bytes:
    """The raw HMAC of ``message`` under ``key`` (UTF-8) with hash ``algorithm``."""
    keyed = _keyed(key.encode(), algorithm).copy()
    keyed.update(message)
    return keyed.digest()


@lru_cache(maxsize=64)
def _keyed(key: bytes, algorithm: str) -> hmac.HMAC:
    """An HMAC state with ``key`` already absorbed: copying it skips the key setup and
    OpenSSL's digest lookup that a fresh HMAC pays on every webhook. Never updated
    itself, so it is safe to share between threads."""
    return hmac.new(key, digestmod=algorithm)


def hmac_hex(key: str, message: bytes) -> str:
    """The HMAC-SHA256 of ``message`` under ``key``, in hex."""
    return hmac_digest(key, message, "sha256").hex()


def hmac_base64(key: str, message: bytes, algorithm: str = "sha256") -> str:
    """The HMAC of ``message`` under ``key``, in Base64."""
    return base64.b64encode(hmac_digest(key, message, algorithm)).decode()


def require_match(expected: str, given: str | None, *, what: str) -> None:
    """Raise :class:`SignatureError` unless ``given`` equals ``expected`` (constant time).

    ``what`` names the header or field, for the error message; neither value is shown.
    """
    if not given:
        raise SignatureError(f"{what} is missing")
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise SignatureError(f"{what} does not match the request")
