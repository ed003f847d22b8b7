"""How Vonage signs webhooks.

- SMS API, "signature secret" ("Signing messages"): every parameter but ``sig``, sorted
  by name, as ``&name=value`` with ``&`` and ``=`` in values replaced by ``_``; then
  ``md5hash`` = MD5 of that string + the secret, or an HMAC (MD5, SHA-1, SHA-256,
  SHA-512) keyed with the secret; lowercase hex in ``sig``. ``timestamp`` is signed.
- Messages API ("Signed webhooks"): ``Authorization: Bearer <JWT>``, HS256 with the
  signature secret, whose ``payload_hash`` claim is the SHA-256 hex of the body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt

from chatbridge.clock import from_unix
from chatbridge.errors import SignatureError
from chatbridge.plugin.signing import require_match

SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]


def sms_signature(params: Mapping[str, str], secret: str, method: SignatureMethod) -> str:
    data = "".join(
        f"&{name}={params[name].replace('&', '_').replace('=', '_')}"
        for name in sorted(params)
        if name != "sig"
    )
    if method == "md5hash":
        return hashlib.md5((data + secret).encode(), usedforsecurity=False).hexdigest()
    return hmac.new(secret.encode(), data.encode(), method).hexdigest()


def verify_sms(
    params: Mapping[str, str],
    secret: str,
    method: SignatureMethod,
    now: datetime,
    tolerance: timedelta,
) -> None:
    given = params.get("sig")
    require_match(
        sms_signature(params, secret, method), given.lower() if given else None, what="sig"
    )
    try:
        signed_at = from_unix(params.get("timestamp", ""))
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError("signed timestamp is missing or not a number") from exc
    if abs(now - signed_at) > tolerance:
        raise SignatureError(f"signed timestamp is more than {tolerance} away from now")


def sign_jwt(body: bytes, secret: str, issued_at: datetime) -> str:
    """The bearer token Vonage would send with ``body`` (for tests and fakes)."""
    claims = {"iat": int(issued_at.timestamp()), "payload_hash": hashlib.sha256(body).hexdigest()}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_jwt(
    authorization: str, body: bytes, secret: str, now: datetime, tolerance: timedelta
) -> None:
    token = authorization.removeprefix("Bearer ").strip()
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"verify_iat": False}
        )
    except jwt.PyJWTError as exc:
        raise SignatureError(f"Authorization JWT is not valid: {type(exc).__name__}") from exc
    require_match(
        hashlib.sha256(body).hexdigest(), str(claims.get("payload_hash", "")), what="payload_hash"
    )
    if not _within(claims.get("iat"), now, tolerance):
        raise SignatureError(f"JWT iat is missing or more than {tolerance} away from now")


def _within(issued: Any, now: datetime, tolerance: timedelta) -> bool:
    """Whether ``issued`` is unix seconds (an integer) within ``tolerance`` of ``now``;
    False for absurd values no datetime can hold."""
    if not isinstance(issued, int) or isinstance(issued, bool):
        return False
    try:
        return abs(now - from_unix(issued)) <= tolerance
    except (ValueError, OverflowError, OSError):
        return False
