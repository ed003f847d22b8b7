"""WeChat ``errcode`` values -> chatbridge errors.

WeChat answers most API errors with HTTP 200 and ``{"errcode": N, "errmsg": "..."}``;
``errcode`` 0 (or absent) means success ("Getting started > Global return codes").
"""

from __future__ import annotations

from typing import Any

from chatbridge.errors import ErrorCodes, ProviderError, provider_error

#: The access token is invalid or expired: refresh it once and retry.
TOKEN_CODES = frozenset({40001, 40014, 42001})
CODES = ErrorCodes(
    # Token (after the one refresh), wrong appid/secret, IP not whitelisted, unauthorised.
    auth=TOKEN_CODES | {40013, 40125, 40164, 48001},
    # API call frequency limits.
    rate_limit=frozenset({45009, 45011}),
    # 45015 window over, 45047 response count, 43004 not subscribed, 40003 bad openid,
    # 43019 blacklisted.
    policy=frozenset({45015, 45047, 43004, 40003, 43019}),
    # System busy.
    unavailable=frozenset({-1}),
)
_EXPLAIN = {
    45015: "the 48-hour customer-service window has closed",
    45047: "too many customer-service messages since the user's last interaction",
    43004: "the user does not follow the account",
}


def error_for(errcode: int, errmsg: str, http_status: int, body: dict[str, Any]) -> ProviderError:
    """The typed error for a non-zero ``errcode``."""
    hint = _EXPLAIN.get(errcode)
    return provider_error(
        f"WeChat API error {errcode}: {errmsg}" + (f" ({hint})" if hint else ""),
        CODES,
        provider="wechat",
        code=errcode,
        provider_message=errmsg,
        http_status=http_status,
        details=body,
    )
