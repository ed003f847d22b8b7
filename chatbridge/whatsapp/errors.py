"""Graph API error responses -> chatbridge errors.

Body shape: ``{"error": {"message", "type", "code", "error_subcode", "error_data":
{"details"}, "fbtrace_id"}}``. Meta recommends branching on ``code``, not on titles.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from chatbridge.errors import ErrorCodes, ProviderError, provider_error
from chatbridge.http import retry_after

CODES = ErrorCodes(
    # Access token expired or invalid, missing permission.
    auth=frozenset({0, 10, 190, *range(200, 300)}),
    # App, account, throughput, spam, pair and registration rate limits.
    rate_limit=frozenset({4, 80007, 130429, 131048, 131056, 133016}),
    # Not allowed to this recipient now: window closed, undeliverable, marketing stopped.
    policy=frozenset({131047, 131026, 131050}),
    # Meta asks to retry later.
    unavailable=frozenset({1, 2, 131000, 131016}),
)


def error_for(response: httpx.Response) -> ProviderError:
    """The typed error for a Graph API error response."""
    error = _error_object(response)
    code = error.get("code")
    details = (error.get("error_data") or {}).get("details")
    message = str(error.get("message", response.reason_phrase))
    return provider_error(
        f"WhatsApp API error {code}: {message}" + (f" ({details})" if details else ""),
        CODES,
        provider="whatsapp",
        code=code,
        provider_message=message,
        http_status=response.status_code,
        details=error,
        retry_after=retry_after(response),
    )


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        error = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, dict) else {"message": response.text[:500]}
