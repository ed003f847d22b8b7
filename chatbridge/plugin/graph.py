"""What every channel on Meta's Graph API shares (WhatsApp, Messenger, Instagram).

- Webhook POSTs carry ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
  key = the app secret>``.
- The subscription handshake is a GET with ``hub.mode=subscribe``, ``hub.verify_token``
  equal to the token set in the app dashboard, and ``hub.challenge`` to echo verbatim.
- Error answers are ``{"error": {"message", "type", "code", "error_subcode",
  "error_data": {"details"}, "fbtrace_id"}}``; Meta says to branch on ``code``.

Sources: docs/whatsapp.md, docs/messenger.md.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from chatbridge.errors import (
    ErrorCodes,
    HandshakeError,
    ProviderError,
    UnsupportedRequestError,
    provider_error,
)
from chatbridge.http import retry_after
from chatbridge.models import Event
from chatbridge.plugin.signing import hmac_hex, require_match
from chatbridge.webhook import WebhookRequest, WebhookResponse, WebhookResult

SIGNATURE_HEADER = "X-Hub-Signature-256"


class GraphConfig(BaseModel):
    """What every Graph API channel is configured with (a channel adds the id of the
    number, page or account it sends from, and its API version)."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    app_secret: SecretStr
    verify_token: SecretStr
    api_version: str
    base_url: str = "https://graph.facebook.com"


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


def receive(
    request: WebhookRequest,
    *,
    provider: str,
    verify_token: SecretStr,
    app_secret: SecretStr,
    parse: Callable[[bytes], list[Event]],
) -> WebhookResult:
    """A Graph webhook request: the handshake's answer for a GET; for a POST, the
    signature verified before ``parse(body)`` runs."""
    if request.method == "GET":
        challenge = answer_handshake(request.query, verify_token.get_secret_value())
        return WebhookResult(response=WebhookResponse(body=challenge.encode()))
    if request.method != "POST":
        raise UnsupportedRequestError(f"{provider} webhooks are GET or POST, not {request.method}")
    verify(request.body, request.header(SIGNATURE_HEADER), app_secret.get_secret_value())
    return WebhookResult(events=parse(request.body))


def error_for(response: httpx.Response, codes: ErrorCodes, *, provider: str) -> ProviderError:
    """The typed error for a Graph API error response; ``codes`` are the channel's."""
    error = _error_object(response)
    code, subcode = _scalar(error.get("code")), _scalar(error.get("error_subcode"))
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    message = str(error.get("message", response.reason_phrase))
    text = f"{provider} API error {code}" + (f"/{subcode}" if subcode else "")
    return provider_error(
        f"{text}: {message}" + (f" ({details})" if details else ""),
        codes,
        provider=provider,
        code=code,
        match=(code, subcode),
        provider_message=message,
        http_status=response.status_code,
        details=error,
        retry_after=retry_after(response),
    )


def _scalar(value: object) -> int | str | None:
    """A code as Graph sends it (a number, sometimes a string); anything else is none."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, dict) else {"message": response.text[:500]}


def error_response(
    status: int,
    code: int,
    message: str,
    subcode: int | None = None,
    *,
    kind: str = "OAuthException",
    error_data: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """A Graph API error response, as the fakes answer: ``{"error": {message, type,
    code, error_subcode?, error_data?, fbtrace_id}}``."""
    error: dict[str, Any] = {"message": message, "type": kind, "code": code}
    if error_data is not None:
        error["error_data"] = dict(error_data)
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "FAKE"
    return httpx.Response(status, json={"error": error})


def no_such_object(request: httpx.Request, object_id: str) -> httpx.Response:
    """Graph's answer to a request for an object that does not exist (or a path it does
    not serve): 400, code 100, subcode 33."""
    message = (
        f"Unsupported {request.method.lower()} request. Object with ID '{object_id}' does "
        "not exist, cannot be loaded due to missing permissions, or does not support this "
        "operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api"
    )
    return error_response(400, 100, message, 33, kind="GraphMethodException")
