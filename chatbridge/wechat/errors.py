"""WeChat ``errcode`` values -> chatbridge errors.

WeChat answers most API errors with HTTP 200 and ``{"errcode": N, "errmsg": "..."}``;
``errcode`` 0 (or absent) means success ("Getting started > Global return codes").
"""

from __future__ import annotations

from typing import Any

from chatbridge.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderPolicyError,
    ProviderUnavailableError,
    RateLimitedError,
)

#: The access token is invalid or expired: refresh it once and retry.
TOKEN_CODES = frozenset({40001, 40014, 42001})
#: Wrong appid/secret, API not authorised, caller IP not whitelisted.
AUTH_CODES = frozenset({40013, 40125, 40164, 48001})
#: API call frequency limits.
RATE_LIMIT_CODES = frozenset({45009, 45011})
#: 45015 reply time limit exceeded (48-hour window), 45047 out of response count,
#: 43004 recipient not subscribed, 40003 invalid openid, 43019 recipient blacklisted.
POLICY_CODES = frozenset({45015, 45047, 43004, 40003, 43019})
#: System busy.
UNAVAILABLE_CODES = frozenset({-1})

_EXPLAIN = {
    45015: "the 48-hour customer-service window has closed",
    45047: "too many customer-service messages since the user's last interaction",
    43004: "the user does not follow the account",
}


def error_for(errcode: int, errmsg: str, http_status: int, body: dict[str, Any]) -> ProviderError:
    """The typed error for a non-zero ``errcode``."""
    hint = _EXPLAIN.get(errcode)
    text = f"WeChat API error {errcode}: {errmsg}" + (f" ({hint})" if hint else "")
    kwargs: dict[str, Any] = {
        "provider": "wechat",
        "code": errcode,
        "provider_message": errmsg,
        "http_status": http_status,
        "details": body,
    }
    if errcode in TOKEN_CODES or errcode in AUTH_CODES:
        return ProviderAuthError(text, **kwargs)
    if errcode in RATE_LIMIT_CODES:
        return RateLimitedError(text, **kwargs)
    if errcode in POLICY_CODES:
        return ProviderPolicyError(text, **kwargs)
    if errcode in UNAVAILABLE_CODES or http_status >= 500:
        return ProviderUnavailableError(text, **kwargs)
    return ProviderError(text, **kwargs)
