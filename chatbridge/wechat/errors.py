"""WeChat ``errcode`` values -> chatbridge errors.

WeChat answers most API errors with HTTP 200 and ``{"errcode": N, "errmsg": "..."}``;
``errcode`` 0 (or absent) means success ("Getting started > Global return codes").
"""

from __future__ import annotations

from typing import Any

from chatbridge.errors import ErrorCodes, ProviderError, provider_error

#: The access token is invalid or expired: refresh it once and retry.
TOKEN_CODES = frozenset({40001, 40014, 42001})
#: "Typing" while the status is shown already (customer-service typing).
TYPING_ALREADY = 45081
CODES = ErrorCodes(
    # Token (after the one refresh), wrong appid/secret, IP not whitelisted, unauthorised.
    auth=TOKEN_CODES | {40013, 40125, 40164, 48001},
    # API call frequency limits.
    rate_limit=frozenset({45009, 45011}),
    # 45015 window over, 45047 response count, 43004 not subscribed, 40003 bad openid,
    # 43019 blacklisted, 45080 typing without a message from the user in 30 seconds.
    policy=frozenset({45015, 45047, 43004, 40003, 43019, 45080}),
    # System busy.
    unavailable=frozenset({-1}),
)
_EXPLAIN = {
    45015: "the 48-hour customer-service window has closed",
    45047: "too many customer-service messages since the user's last interaction",
    43004: "the user does not follow the account",
    45080: "typing needs a message from the user within the last 30 seconds",
    45081: "the typing status is shown already",
    46003: "the account has no menu",
    65303: "create the default menu before a conditional one",
    65320: "conditional menus no longer match on sex, region or language",
    45056: "an account has at most 100 tags",
    45057: "a tag with over 100,000 followers cannot be deleted",
    45058: "tags 0, 1 and 2 are reserved",
    45059: "a user has at most 20 tags",
    45157: "tag names are unique",
    45158: "a tag name is at most 30 bytes",
    45159: "no such tag",
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
