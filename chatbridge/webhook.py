"""Framework-neutral webhook request and response types.

Channels receive a :class:`WebhookRequest` (whatever the web framework) and answer with
a :class:`WebhookResult`: the typed events plus the exact HTTP response the provider
expects (a challenge echo, ``success``, an encrypted reply...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError

from chatbridge.models import Event


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request as the provider sent it. Header names are matched case-insensitively."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @cached_property
    def query(self) -> Mapping[str, str]:
        """The query string parameters (last value wins)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def with_headers(self, **headers: str) -> WebhookRequest:
        """A copy with ``headers`` added (underscores in names become dashes)."""
        extra = {name.replace("_", "-"): value for name, value in headers.items()}
        return WebhookRequest(self.method, self.url, {**self.headers, **extra}, self.body)


@dataclass(frozen=True)
class WebhookResponse:
    """What to answer the provider."""

    status: int = 200
    body: bytes = b""
    media_type: str = "text/plain"


@dataclass(frozen=True)
class WebhookResult:
    """The outcome of one webhook request.

    ``events`` are new; ``duplicates`` are events already received before (providers
    redeliver), reported rather than silently dropped. ``once`` holds one-time values
    of the request's signature (a Mailgun token) with how long to remember them: a
    request whose value was seen before is refused as a replay.
    """

    events: list[Event] = field(default_factory=list)
    duplicates: list[Event] = field(default_factory=list)
    once: Mapping[str, timedelta] = field(default_factory=dict)
    response: WebhookResponse = WebhookResponse()  # frozen: one shared default is safe


def digest_id(data: str | bytes) -> str:
    """A short stable id for content the provider gave no id (used for deduplication)."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:32]


def invalid_reason(exc: Exception) -> str:
    """A one-line description of why input was rejected, for error messages."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        return f"{where}: {first['msg']} ({exc.error_count()} error(s))"
    if isinstance(exc, KeyError) and exc.args:
        return f"missing field {exc.args[0]!r}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
