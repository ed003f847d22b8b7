"""One exception tree for everything chatbridge raises.

Every error carries a human message; provider errors also carry the provider's own
code and message so nothing the provider said is lost. No error ever includes a
secret (tokens, app secrets, keys) in its text.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatbridge.policy import Decision


class ChatbridgeError(Exception):
    """Base class of every chatbridge error."""


class ConfigurationError(ChatbridgeError):
    """A channel or store was configured wrongly (missing secret, bad option)."""


class UnknownChannelError(ConfigurationError):
    """No installed channel plugin has the requested name."""


class HistoryError(ChatbridgeError):
    """The conversation history could not be read or written (its database failed)."""


class WebhookError(ChatbridgeError):
    """An inbound webhook request was refused. ``status`` is the HTTP status to answer."""

    status: int = 400


class SignatureError(WebhookError):
    """The request's signature is missing, malformed or does not match."""

    status = 401


class ReplayError(SignatureError):
    """A one-time value of a signed request (a Mailgun token) was used before."""

    def __init__(self, message: str = "this signed request was already received (a replay)"):
        super().__init__(message)


class OutboxFullError(WebhookError):
    """The outbox holds as many records as it may: the webhook is not acknowledged, so
    the provider sends it again later."""

    status = 503


class HandshakeError(WebhookError):
    """A provider verification handshake failed (wrong verify token, bad mode)."""

    status = 403


class PayloadError(WebhookError):
    """The request body is not a valid payload of the provider (bad JSON/XML, wrong shape)."""


class PayloadTooLargeError(PayloadError):
    """The request body is over the channel's size limit."""

    status = 413


class UnsupportedRequestError(WebhookError):
    """The request's method or content type is not one the provider sends."""

    status = 405


class UnsupportedMediaTypeError(WebhookError):
    """The request's content type is not one the provider posts."""

    status = 415


class MessageInvalidError(ChatbridgeError):
    """An outbound message breaks a documented limit of the channel (length, count, shape)."""


class UnsupportedMessageError(MessageInvalidError):
    """The channel cannot carry this kind of message at all."""


class UnsupportedOperationError(UnsupportedMessageError):
    """The channel's provider has no such operation (a media upload API, say)."""


class InvalidAddressError(MessageInvalidError, ValueError):
    """An address is not one valid address of its channel (a list, CR/LF, bad syntax).
    Also a ValueError, so inbound mappers report such an item as malformed."""


class PolicyRefusedError(ChatbridgeError):
    """The policy engine refused a send before any network call; see ``decision``."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.explain())
        self.decision = decision


class MediaError(ChatbridgeError):
    """Media could not be uploaded, downloaded or verified."""


class ProviderError(ChatbridgeError):
    """The provider's API answered with an error.

    ``code`` and ``provider_message`` are the provider's own; ``details`` keeps the
    rest of the error body.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | int | None = None,
        provider_message: str | None = None,
        http_status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code
        self.provider_message = provider_message
        self.http_status = http_status
        self.details = details or {}


class ProviderAuthError(ProviderError):
    """The provider refused our credentials (expired/invalid token, wrong secret)."""


class ProviderPolicyError(ProviderError):
    """The provider refused a send for a policy reason our local state did not foresee
    (for example a closed window the store did not know about)."""


class RateLimitedError(ProviderError):
    """The provider throttled us. ``retry_after`` is in seconds when the provider said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached or answered with a server error."""


class DeliveryUnknownError(ProviderUnavailableError):
    """The provider may or may not have accepted the message: the request went out but
    no readable answer came back (read timeout, dropped connection, unreadable success
    body). Its quota is kept. ``idempotency_key`` is the key the send used (None if the
    channel has none): sending again with it cannot deliver twice nor count twice.
    """

    def __init__(
        self, reason: str, *, provider: str, idempotency_key: str | None = None, **kwargs: Any
    ) -> None:
        retry = (
            "send again with its idempotency_key to retry safely"
            if idempotency_key
            else "a retry may deliver it twice"
        )
        text = f"{provider} may or may not have accepted the message ({reason}); {retry}"
        super().__init__(text, provider=provider, **kwargs)
        self.idempotency_key = idempotency_key

    @property
    def channel(self) -> str:
        """The channel the message was sent on."""
        return self.provider


def describe(exc: BaseException) -> str:
    """An exception as text any store can keep (valid UTF-8, bounded): a handler's
    failure in the outbox, a send's in the history."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # an exception whose __str__ fails
        text = f"{type(exc).__name__}: <unprintable>"
    return text.encode("utf-8", "replace").decode()[:4000]


@dataclass(frozen=True)
class ErrorCodes:
    """A provider's error codes, grouped by what they mean for the caller."""

    auth: Collection[object] = ()
    rate_limit: Collection[object] = ()
    policy: Collection[object] = ()
    unavailable: Collection[object] = ()


def provider_error(
    text: str,
    codes: ErrorCodes,
    *,
    provider: str,
    code: str | int | None,
    provider_message: str,
    http_status: int | None = None,
    details: dict[str, Any] | None = None,
    retry_after: float | None = None,
    match: object = None,
) -> ProviderError:
    """The typed error for a provider's answer: by its code first (or by ``match``, a
    finer key such as a ``(code, subcode)`` pair, when ``codes`` names it), then by HTTP
    status (429 rate limit, 401/403 auth, 5xx unavailable)."""
    kwargs: dict[str, Any] = {
        "provider": provider,
        "code": code,
        "provider_message": provider_message,
        "http_status": http_status,
        "details": details,
    }
    status = http_status or 0
    groups = (codes.policy, codes.rate_limit, codes.auth, codes.unavailable)
    key = match if match is not None and any(match in group for group in groups) else code
    if key in codes.policy:
        return ProviderPolicyError(text, **kwargs)
    if key in codes.rate_limit or status == 429:
        return RateLimitedError(text, retry_after=retry_after, **kwargs)
    if key in codes.auth or status in (401, 403):
        return ProviderAuthError(text, **kwargs)
    if key in codes.unavailable or status >= 500:
        return ProviderUnavailableError(text, **kwargs)
    return ProviderError(text, **kwargs)
