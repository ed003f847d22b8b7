"""Messenger Platform Graph API error codes (the body is Graph's: :mod:`chatbridge.plugin.graph`).

Entries are a ``code`` or a ``(code, subcode)`` pair; a pair wins over its code alone.
Sources and what is unconfirmed: docs/messenger.md, docs/instagram.md.
"""

from __future__ import annotations

from dataclasses import replace

from chatbridge.errors import ErrorCodes

#: Outside the standard messaging window, on Messenger (third-party sources only).
MESSENGER_OUTSIDE_WINDOW = (10, 2018278)
#: Outside the standard messaging window, on Instagram ("Common Error Codes").
INSTAGRAM_OUTSIDE_WINDOW = (10, 2534022)

MESSENGER_CODES = ErrorCodes(
    # Invalid or expired token, missing permission (1-99 "missing permissions" included
    # only where Meta names the code).
    auth=frozenset({10, 190, *range(200, 300)}),
    # "Application request limit reached", "Calls to this api have exceeded the rate limit".
    rate_limit=frozenset({4, 613}),
    # The recipient may not be messaged now: window closed, person unavailable or
    # blocking, permissions disallow messaging the user, content deemed abusive.
    policy=frozenset({MESSENGER_OUTSIDE_WINDOW, 551, 230, 368}),
    # "An unexpected error has occurred. Please retry your request later."
    unavailable=frozenset({1, 2}),
)

INSTAGRAM_CODES = replace(
    MESSENGER_CODES,
    policy=frozenset(
        {
            *MESSENGER_CODES.policy,
            INSTAGRAM_OUTSIDE_WINDOW,
            # The business has been blocked from sending via the IG Messaging API.
            (100, 2534029),
            # The account owner has disabled access to Instagram direct messages.
            (200, 2534041),
        }
    ),
)
