"""How WeChat signs server requests (Official Account "Access guide" / "Message
encryption").

- ``signature`` (query, every request): SHA1 hex of the lexicographically sorted
  concatenation of token, timestamp and nonce.
- ``msg_signature`` (query, encrypted mode): the same over token, timestamp, nonce and
  the ``Encrypt`` element of the body.
- URL verification: ``GET`` with signature/timestamp/nonce/echostr; answer ``echostr``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from chatbridge.errors import HandshakeError, SignatureError
from chatbridge.plugin.signing import require_match


def sha1_signature(*parts: str) -> str:
    """SHA1 hex of the sorted, concatenated ``parts``."""
    return hashlib.sha1("".join(sorted(parts)).encode(), usedforsecurity=False).hexdigest()


def verify_signature(query: Mapping[str, str], token: str) -> None:
    """Check the plain ``signature`` query parameter."""
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    if not timestamp or not nonce:
        raise SignatureError("timestamp and nonce query parameters are required")
    require_match(sha1_signature(token, timestamp, nonce), query.get("signature"), what="signature")


def verify_msg_signature(query: Mapping[str, str], token: str, encrypted: str) -> None:
    """Check ``msg_signature`` over the encrypted body."""
    expected = sha1_signature(token, query.get("timestamp", ""), query.get("nonce", ""), encrypted)
    require_match(expected, query.get("msg_signature"), what="msg_signature")


def answer_handshake(query: Mapping[str, str], token: str) -> str:
    """The ``echostr`` to answer a valid server URL verification; else HandshakeError."""
    try:
        verify_signature(query, token)
    except SignatureError as exc:
        raise HandshakeError(f"URL verification failed: {exc}") from exc
    echostr = query.get("echostr")
    if not echostr:
        raise HandshakeError("echostr is missing")
    return echostr
