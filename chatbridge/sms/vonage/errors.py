"""Vonage SMS API statuses -> chatbridge errors. The send API answers HTTP 200 with a
per-message ``status`` ("0" is success) and ``error-text`` ("API errors > SMS API")."""

from __future__ import annotations

from typing import Any

from chatbridge.errors import ErrorCodes, ProviderError, provider_error

CODES = ErrorCodes(
    rate_limit=("1",),  # throttled
    auth=("4", "8"),  # invalid credentials, account barred
    policy=("7", "9", "29"),  # number barred, no credit, destination not whitelisted
    unavailable=("5",),  # internal error
)


def error_for(
    status: str, error_text: str, details: dict[str, Any], http_status: int = 200
) -> ProviderError:
    return provider_error(
        f"Vonage SMS API status {status}: {error_text}",
        CODES,
        provider="vonage",
        code=status,
        provider_message=error_text,
        http_status=http_status,
        details=details,
    )
