"""LINE API error responses -> chatbridge errors.

Body: ``{"message": "...", "details": [{"message", "property"}]}`` ("Status codes",
"Error responses"). 429 means either the rate limit or the monthly message limit,
told apart by the message.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from chatbridge.errors import ErrorCodes, ProviderError, provider_error
from chatbridge.http import retry_after

INVALID_REPLY_TOKEN = "Invalid reply token"  # noqa: S105 (an error text, not a secret)
MONTHLY_LIMIT = "monthly limit"
#: LINE has no error codes beside the HTTP status; the monthly limit gets its own.
CODES = ErrorCodes(policy=("monthly_limit",))


def error_for(response: httpx.Response) -> ProviderError:
    """The typed error for a LINE API error response."""
    body = _body(response)
    message = str(body.get("message", response.reason_phrase))
    details = body.get("details") or []
    text = f"LINE API error {response.status_code}: {message}"
    if details:
        text += " (" + "; ".join(str(d.get("message", d)) for d in details) + ")"
    monthly = response.status_code == 429 and MONTHLY_LIMIT in message
    return provider_error(
        text,
        CODES,
        provider="line",
        code="monthly_limit" if monthly else response.status_code,
        provider_message=message,
        http_status=response.status_code,
        details=body,
        retry_after=retry_after(response),
    )


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {"message": response.text[:500]}
