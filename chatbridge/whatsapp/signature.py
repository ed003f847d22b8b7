"""How Meta signs WhatsApp Cloud API webhooks.

- POST: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key = app secret>``.
- GET (subscription handshake): ``hub.mode=subscribe``, ``hub.verify_token`` equal to the
  token configured in the app dashboard; answer ``hub.challenge`` verbatim.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from chatbridge.errors import HandshakeError
from chatbridge.plugin.signing import hmac_hex, require_match

SIGNATURE_HEADER = "X-Hub-Signature-256"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta would send for ``body``."""
    return "sha256=" + hmac_hex(app_secret, body)


def verify(body: bytes, header: str | None, app_secret: str) -> None:
    """Raise :class:`~chatbridge.errors.SignatureError` unless ``header`` signs ``body``."""
    require_match(sign(body, app_secret), header, what=SIGNATURE_HEADER)


def answer_handshake(query: Mapping[str, str], verify_token: str) -> str:
    """The challenge to echo for a valid subscription handshake; else HandshakeError."""
    if query.get("hub.mode") != "subscribe":
        raise HandshakeError("hub.mode must be 'subscribe'")
    token = query.get("hub.verify_token", "")
    if not hmac.compare_digest(token.encode(), verify_token.encode()):
        raise HandshakeError("hub.verify_token does not match the configured verify token")
    challenge = query.get("hub.challenge")
    if not challenge:
        raise HandshakeError("hub.challenge is missing")
    return challenge
