"""How Twilio signs webhooks ("Webhooks security"; twilio-python's ``RequestValidator``).

- ``X-Twilio-Signature`` is the Base64 HMAC-SHA1, keyed with the auth token, of the full
  URL Twilio requested followed by each distinct POST parameter name and value, sorted
  by name and then value (a repeated identical pair counts once).
- The URL is checked without the username and password it may carry ("Twilio will drop
  the username and password (if any) from the URL before computing the signature",
  "Security", A few notes) and, as the official SDKs sign it, as given; each without its
  port and with one (the scheme's standard port when it has none), since Twilio's own
  signing is inconsistent about ports.
- A JSON webhook signs the URL alone; that URL carries ``bodySHA256``, the SHA-256 hex
  of the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

from chatbridge.errors import SignatureError
from chatbridge.plugin.signing import hmac_base64, require_match

SIGNATURE_HEADER = "X-Twilio-Signature"
BODY_HASH_PARAM = "bodySHA256"


def sign(url: str, params: Sequence[tuple[str, str]], auth_token: str) -> str:
    """The signature Twilio sends for a request to ``url`` with form ``params``."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    return hmac_base64(auth_token, data.encode(), "sha1")


def body_hash(body: bytes) -> str:
    """The ``bodySHA256`` of a JSON webhook body."""
    return hashlib.sha256(body).hexdigest()


def url_variants(url: str) -> Iterator[str]:
    """``url`` without credentials and as given, each also (as twilio-python's
    ``remove_port`` / ``add_port`` try it) without its port, or with the scheme's
    standard port when it has none; made only as they are asked for (the first is
    usually the one signed)."""
    parts = urlsplit(url)
    standard = f":{443 if parts.scheme == 'https' else 80}"
    port = f":{parts.port}" if parts.port is not None else ""
    for netloc in (parts.netloc.rpartition("@")[2], parts.netloc):
        for variant in (netloc, netloc.removesuffix(port) if port else netloc + standard):
            yield url if variant == parts.netloc else urlunsplit(parts._replace(netloc=variant))


def verify(
    url: str, params: Sequence[tuple[str, str]], header: str | None, auth_token: str
) -> None:
    """Raise SignatureError unless ``header`` signs this request."""
    if not header:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing")
    given = header.strip().encode()
    for candidate in url_variants(url):
        if hmac.compare_digest(sign(candidate, params, auth_token).encode(), given):
            return
    raise SignatureError(f"{SIGNATURE_HEADER} does not match the request")


def verify_json(url: str, body: bytes, header: str | None, auth_token: str) -> None:
    """Raise SignatureError unless ``header`` signs ``url`` and the URL's
    ``bodySHA256`` is the hash of ``body`` (twilio-python's ``validate`` with a body)."""
    hashes = parse_qs(urlsplit(url).query).get(BODY_HASH_PARAM)
    verify(url, [], header, auth_token)
    require_match(body_hash(body), hashes[0] if hashes else None, what=BODY_HASH_PARAM)
