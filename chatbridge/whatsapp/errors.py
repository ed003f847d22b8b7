"""Graph API error responses -> chatbridge errors.

Body shape: ``{"error": {"message", "type", "code", "error_subcode", "error_data":
{"details"}, "fbtrace_id"}}``. Meta recommends branching on ``code``, not on titles.
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

#: Access token expired or invalid, missing permission.
AUTH_CODES = frozenset({0, 10, 190, *range(200, 300)})
#: App, account, throughput, pair and spam rate limits.
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056, 133016})
#: The message is not allowed to this recipient now.
POLICY_CODES = frozenset({131047, 131026, 131050})
#: Meta asks to retry later.
UNAVAILABLE_CODES = frozenset({1, 2, 131000, 131016})


def error_for(response: httpx.Response) -> ProviderError:
    """The typed error for a Graph API error response."""
    error = _error_object(response)
    code = error.get("code")
    details = error.get("error_data", {}).get("details") if isinstance(error, dict) else None
    provider_message = str(error.get("message", response.reason_phrase))
    text = f"WhatsApp API error {code}: {provider_message}" + (f" ({details})" if details else "")
    kwargs: dict[str, Any] = {
        "provider": "whatsapp",
        "code": code,
        "provider_message": provider_message,
        "http_status": response.status_code,
        "details": error,
    }
    if code in RATE_LIMIT_CODES or response.status_code == 429:
        return RateLimitedError(text, retry_after=retry_after(response), **kwargs)
    if code in AUTH_CODES or response.status_code == 401:
        return ProviderAuthError(text, **kwargs)
    if code in POLICY_CODES:
        return ProviderPolicyError(text, **kwargs)
    if code in UNAVAILABLE_CODES or response.status_code >= 500:
        return ProviderUnavailableError(text, **kwargs)
    return ProviderError(text, **kwargs)


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, dict) else {"message": response.text[:500]}
