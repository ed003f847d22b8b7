"""LINE API error responses -> chatbridge errors.

Body: ``{"message": "...", "details": [{"message", "property"}]}`` ("Status codes",
"Error responses"). 429 means either the rate limit or the monthly message limit,
told apart by the message.
"""

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

INVALID_REPLY_TOKEN = "Invalid reply token"  # noqa: S105 (an error text, not a secret)
MONTHLY_LIMIT = "monthly limit"


def error_for(response: httpx.Response) -> ProviderError:
    """The typed error for a LINE API error response."""
    body = _body(response)
    provider_message = str(body.get("message", response.reason_phrase))
    details = body.get("details") or []
    text = f"LINE API error {response.status_code}: {provider_message}"
    if details:
        text += " (" + "; ".join(str(d.get("message", d)) for d in details) + ")"
    kwargs: dict[str, Any] = {
        "provider": "line",
        "code": response.status_code,
        "provider_message": provider_message,
        "http_status": response.status_code,
        "details": body,
    }
    status = response.status_code
    if status == 429 and MONTHLY_LIMIT in provider_message:
        return ProviderPolicyError(text, **kwargs)
    if status == 429:
        return RateLimitedError(text, retry_after=retry_after(response), **kwargs)
    if status in (401, 403):
        return ProviderAuthError(text, **kwargs)
    if status >= 500:
        return ProviderUnavailableError(text, **kwargs)
    return ProviderError(text, **kwargs)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"message": response.text[:500]}
