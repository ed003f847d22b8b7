"""WhatsApp's Graph API error codes (the body is Graph's: :mod:`chatbridge.plugin.graph`).

Meta recommends branching on ``code``, not on titles; sources in docs/whatsapp.md.
"""

from __future__ import annotations

import httpx

from chatbridge.errors import ErrorCodes, ProviderError
from chatbridge.plugin import graph

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
    """The typed error for a WhatsApp Cloud API error response."""
    return graph.error_for(response, CODES, provider="whatsapp")
