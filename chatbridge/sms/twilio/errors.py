"""Twilio REST API errors -> chatbridge errors.

Body: ``{"code": 21211, "message": "...", "more_info": "...", "status": 400}``
("Twilio error and warning dictionary")."""

from __future__ import annotations

import json
from typing import Any

import httpx

from chatbridge.errors import ErrorCodes, ProviderError, provider_error
from chatbridge.http import retry_after

#: The recipient replied STOP: Twilio refuses to message them.
UNSUBSCRIBED_RECIPIENT = 21610
CODES = ErrorCodes(
    auth=frozenset({20003, 20005}),
    rate_limit=frozenset({20429, 14107}),
    policy=frozenset({UNSUBSCRIBED_RECIPIENT, 21408, 21612, 30004, 30007}),
)


def error_for(response: httpx.Response) -> ProviderError:
    try:
        body: dict[str, Any] = json.loads(response.content)
    except ValueError:
        body = {"message": response.text[:500]}
    code = body.get("code")
    message = str(body.get("message", response.reason_phrase))
    return provider_error(
        f"Twilio API error {code}: {message}",
        CODES,
        provider="twilio",
        code=code,
        provider_message=message,
        http_status=response.status_code,
        details=body,
        retry_after=retry_after(response),
    )
