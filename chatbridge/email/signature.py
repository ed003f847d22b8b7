"""How email providers sign their webhooks.

- Mailgun ("Securing webhooks"): ``signature`` = hex HMAC-SHA256 of ``timestamp`` +
  ``token`` keyed with the webhook signing key; the three values travel in the body.
- SendGrid ("Event Webhook security features"): ECDSA (P-256, SHA-256) over the
  ``X-Twilio-Email-Event-Webhook-Timestamp`` value followed by the raw body; the Base64
  DER signature is in ``X-Twilio-Email-Event-Webhook-Signature`` and the public key is
  shown as Base64 DER (SubjectPublicKeyInfo).

Both carry a timestamp; chatbridge refuses ones further than ``tolerance`` from now, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from chatbridge.clock import from_unix
from chatbridge.errors import ConfigurationError, SignatureError
from chatbridge.plugin.signing import hmac_hex, require_match

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


def check_timestamp(timestamp: str | None, now: datetime, tolerance: timedelta) -> None:
    """Raise SignatureError unless ``timestamp`` (unix seconds) is within ``tolerance``."""
    try:
        sent = from_unix(timestamp or "")
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError("the signed timestamp is missing or not a number") from exc
    if abs(now - sent) > tolerance:
        raise SignatureError(f"the signed timestamp is more than {tolerance} away from now")


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac_hex(signing_key, (timestamp + token).encode())


def verify_mailgun(
    signing_key: str, timestamp: str | None, token: str | None, signature: str | None
) -> None:
    if not timestamp or not token:
        raise SignatureError("Mailgun timestamp and token are required")
    require_match(mailgun_signature(signing_key, timestamp, token), signature, what="signature")


def sendgrid_public_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The public key from SendGrid's Base64 DER verification key."""
    try:
        key = load_der_public_key(base64.b64decode(encoded))
    except (ValueError, binascii.Error) as exc:
        raise ConfigurationError("the SendGrid verification key is not Base64 DER") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigurationError("the SendGrid verification key is not an EC key")
    return key


def sign_sendgrid(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """The signature header value SendGrid would send (for tests and fakes)."""
    signature = private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def verify_sendgrid(
    key: ec.EllipticCurvePublicKey, body: bytes, signature: str | None, timestamp: str | None
) -> None:
    if not signature or not timestamp:
        raise SignatureError(f"{SENDGRID_SIGNATURE} and {SENDGRID_TIMESTAMP} are required")
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise SignatureError(f"{SENDGRID_SIGNATURE} does not match the request") from exc
