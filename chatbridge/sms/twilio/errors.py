"""Twilio REST API errors -> chatbridge errors.

Body: ``{"code": 21211, "message": "...", "more_info": "...", "status": 400}``
("Twilio error and warning dictionary")."""

from __future__ import annotations

import json
from typing import Any

import httpx

from chatbridge.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderPolicyError,
    ProviderUnavailableError,
    RateLimitedError,
)
from chatbridge.http import retry_after

#: The recipient replied STOP: Twilio refuses to message them.
UNSUBSCRIBED_RECIPIENT = 21610
AUTH_CODES = frozenset({20003, 20005})
RATE_LIMIT_CODES = frozenset({20429, 14107})
POLICY_CODES = frozenset({UNSUBSCRIBED_RECIPIENT, 21408, 21612, 30004, 30007})


def error_for(response: httpx.Response) -> ProviderError:
    try:
        body: dict[str, Any] = json.loads(response.content)
    except ValueError:
        body = {"message": response.text[:500]}
    code = body.get("code")
    provider_message = str(body.get("message", response.reason_phrase))
    text = f"Twilio API error {code}: {provider_message}"
    kwargs: dict[str, Any] = {
        "provider": "twilio",
        "code": code,
        "provider_message": provider_message,
        "http_status": response.status_code,
        "details": body,
    }
    if code in RATE_LIMIT_CODES or response.status_code == 429:
        return RateLimitedError(text, retry_after=retry_after(response), **kwargs)
    if code in AUTH_CODES or response.status_code in (401, 403):
        return ProviderAuthError(text, **kwargs)
    if code in POLICY_CODES:
        return ProviderPolicyError(text, **kwargs)
    if response.status_code >= 500:
        return ProviderUnavailableError(text, **kwargs)
    return ProviderError(text, **kwargs)
