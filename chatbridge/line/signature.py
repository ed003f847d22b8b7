"""How LINE signs webhooks ("Verify webhook signature"): ``X-Line-Signature`` is the
Base64 HMAC-SHA256 of the raw request body, keyed with the channel secret."""

from __future__ import annotations

from chatbridge.plugin.signing import hmac_base64, require_match

SIGNATURE_HEADER = "X-Line-Signature"


def sign(body: bytes, channel_secret: str) -> str:
    """The ``X-Line-Signature`` value LINE would send for ``body``."""
    return hmac_base64(channel_secret, body)


def verify(body: bytes, header: str | None, channel_secret: str) -> None:
    """Raise :class:`~chatbridge.errors.SignatureError` unless ``header`` signs ``body``."""
    require_match(sign(body, channel_secret), header, what=SIGNATURE_HEADER)
