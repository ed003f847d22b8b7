"""Vonage SMS API statuses -> chatbridge errors. The send API answers HTTP 200 with a
per-message ``status`` ("0" is success) and ``error-text`` ("API errors > SMS API")."""

from __future__ import annotations

from typing import Any

from chatbridge.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderPolicyError,
    ProviderUnavailableError,
    RateLimitedError,
)

#: 1 throttled; 4 invalid credentials, 8 account barred; 7 number barred, 9 no credit,
#: 29 destination not whitelisted (trial accounts); 5 internal error.
RATE_LIMIT = frozenset({"1"})
AUTH = frozenset({"4", "8"})
POLICY = frozenset({"7", "9", "29"})
UNAVAILABLE = frozenset({"5"})


def error_for(
    status: str, error_text: str, details: dict[str, Any], http_status: int = 200
) -> ProviderError:
    text = f"Vonage SMS API status {status}: {error_text}"
    kwargs: dict[str, Any] = {
        "provider": "vonage",
        "code": status,
        "provider_message": error_text,
        "http_status": http_status,
        "details": details,
    }
    if status in RATE_LIMIT:
        return RateLimitedError(text, **kwargs)
    if status in AUTH or http_status in (401, 403):
        return ProviderAuthError(text, **kwargs)
    if status in POLICY:
        return ProviderPolicyError(text, **kwargs)
    if status in UNAVAILABLE or http_status >= 500:
        return ProviderUnavailableError(text, **kwargs)
    return ProviderError(text, **kwargs)
