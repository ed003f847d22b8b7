"""How Twilio signs webhooks ("Webhooks security"): ``X-Twilio-Signature`` is the
Base64 HMAC-SHA1, keyed with the auth token, of the full URL Twilio requested followed by
every POST parameter name and value, sorted by name. Twilio's own validators also accept
the URL with or without an explicit standard port, since proxies may add or drop it."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from chatbridge.errors import SignatureError
from chatbridge.signing import hmac_base64

SIGNATURE_HEADER = "X-Twilio-Signature"


def sign(url: str, params: Sequence[tuple[str, str]], auth_token: str) -> str:
    """The signature Twilio sends for a request to ``url`` with form ``params``."""
    data = url + "".join(name + value for name, value in sorted(params))
    return hmac_base64(auth_token, data.encode(), "sha1")


def _url_variants(url: str) -> list[str]:
    """``url`` as given, with its scheme's standard port spelled out, and without it."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if default is None or parts.port not in (None, default):
        return [url]
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{default}"))
    without_port = urlunsplit(parts._replace(netloc=host))
    return list(dict.fromkeys([url, with_port, without_port]))


def verify(
    url: str, params: Sequence[tuple[str, str]], header: str | None, auth_token: str
) -> None:
    """Raise SignatureError unless ``header`` signs this request."""
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing")
    given = header.strip().encode()
    if hmac.compare_digest(sign(url, params, auth_token).encode(), given):
        return
    others = _url_variants(url)[1:]
    if not any(hmac.compare_digest(sign(u, params, auth_token).encode(), given) for u in others):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")
