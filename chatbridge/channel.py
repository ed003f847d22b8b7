"""The channel plugin contract and the plumbing every channel shares.

A channel subclasses :class:`Channel`, declares ``name`` and ``config_type`` and
implements two methods: how its webhooks are verified and parsed
(:meth:`Channel._receive`) and how a message is put on the wire
(:meth:`Channel._deliver`). Everything else has a default: media endpoints and error
mapping (override where the provider has them), :class:`~chatbridge.policy.PolicyRules`
(none), size limits, deduplication, state updates, policy checks, quota reservations and
HTTP error handling. The verbs: a channel *delivers* a message (puts it on the wire),
the webhook app's outbox *accepts* events (queues them), and its worker *dispatches*
them (hands them to the application's handler).
"""

from __future__ import annotations

import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Container, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit

import anyio
import httpx
from pydantic import BaseModel, ValidationError

from chatbridge import http, telemetry
from chatbridge.clock import Clock, SystemClock
from chatbridge.errors import (
    DeliveryUnknownError,
    ErrorCodes,
    MessageInvalidError,
    PayloadError,
    PayloadTooLargeError,
    PolicyRefusedError,
    ProviderError,
    ProviderUnavailableError,
    ReplayError,
    UnsupportedMediaTypeError,
    UnsupportedMessageError,
    UnsupportedOperationError,
    provider_error,
)
from chatbridge.models import Contact, Event, Identity, Media, Message, Receipt, Window
from chatbridge.policy import Decision, PolicyEngine, PolicyRules
from chatbridge.recorder import Recorder, SendLog, SendOutcome, TagMirror
from chatbridge.redaction import redact, secret_values
from chatbridge.state import apply_events
from chatbridge.store.base import Store
from chatbridge.store.memory import MemoryStore
from chatbridge.webhook import WebhookRequest, WebhookResponse, WebhookResult

if TYPE_CHECKING:
    from chatbridge.plugin.lengths import Lengths
    from chatbridge.plugin.parsing import Inbound

#: Transport failures that happen before a request can reach the provider.
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


M = TypeVar("M", bound=BaseModel)

#: What a concrete channel must implement; everything else has a default.
_REQUIRED = ("_receive", "_deliver")
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


class ChannelOptions(TypedDict, total=False):
    """What every channel's constructor accepts besides its own configuration."""

    store: Store
    clock: Clock
    http_client: httpx.AsyncClient
    http_engine: http.Engine
    http_max_connections: int
    retry: http.RetryPolicy
    history: Recorder


class Channel(ABC):
    """Base class of every channel plugin (built-in or third-party).

    Construct with the channel's configuration (a ``config_type``) plus, optionally, a
    shared ``store`` (default: in memory), ``clock`` and ``http_client`` (or the
    ``http_engine`` and ``http_max_connections`` of the client the channel makes, see
    :func:`chatbridge.http.make_client`) and a ``history`` that records every event taken
    in and every send (:mod:`chatbridge.conversations`).
    Use as an async context manager or call :meth:`aclose` to release the HTTP client it
    created.
    """

    #: The channel's name ("whatsapp"); identities use it as their channel.
    name: ClassVar[str]
    #: The pydantic model of the channel's configuration (see :meth:`from_config`).
    config_type: ClassVar[type[BaseModel]]
    #: The channel's policy, as data.
    rules: PolicyRules = PolicyRules()
    #: Largest webhook body accepted, in bytes.
    max_body_bytes: int = 1024 * 1024
    #: Content types the provider posts webhooks with (empty: not checked). A request
    #: without a content type is left to the parser.
    content_types: ClassVar[frozenset[str]] = frozenset()
    #: How long a received event id is remembered for deduplication.
    dedup_ttl: timedelta = timedelta(days=3)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check, when a concrete channel class is defined, that it declares what the
        registry, the config loader and identities need."""
        super().__init_subclass__(**kwargs)
        methods = [getattr(cls, method) for method in _REQUIRED]
        if any(getattr(method, "__isabstractmethod__", False) for method in methods):
            if "name" in cls.__dict__:
                cls._check_name()
            return  # an abstract base shared by channels (SmsChannel)
        cls._check_name()
        for method in methods:
            if not inspect.iscoroutinefunction(method):
                raise TypeError(f"{cls.__qualname__}.{method.__name__} must be async def")
        config_type = getattr(cls, "config_type", None)
        if not (isinstance(config_type, type) and issubclass(config_type, BaseModel)):
            raise TypeError(
                f"{cls.__qualname__} must set config_type to the pydantic model of its "
                f"configuration; got {config_type!r}"
            )

    @classmethod
    def _check_name(cls) -> None:
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise TypeError(
                f"{cls.__qualname__} must set name to a lowercase channel name such as "
                f"'acme' (letters, digits, '-' or '_'); got {name!r}"
            )

    def __init__(self, config: BaseModel, **options: Unpack[ChannelOptions]) -> None:
        self.config = config
        self.store: Store = options.get("store") or MemoryStore()
        self.clock: Clock = options.get("clock") or SystemClock()
        self._owns_http = "http_client" not in options
        self.http = options.get("http_client") or http.make_client(
            engine=options.get("http_engine", http.DEFAULT_ENGINE),
            max_connections=options.get("http_max_connections"),
        )
        self.retry = options.get("retry") or http.RetryPolicy()
        self.history: Recorder | None = options.get("history")
        self.policy = PolicyEngine(self.store, self.clock)
        self._secrets = secret_values(config)

    @classmethod
    def from_config(cls, data: Mapping[str, Any], **options: Unpack[ChannelOptions]) -> Self:
        """The channel built from plain configuration data (a config file's table)."""
        return cls(cls.config_type.model_validate(data), **options)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this channel created it."""
        if self._owns_http:
            await self.http.aclose()

    def identity(self, address: str) -> Identity:
        """An identity on this channel."""
        return Identity(channel=self.name, address=address)

    def inbound(self) -> Inbound:
        """Event builders for this channel's mappers, stamped with the time now."""
        from chatbridge.plugin.parsing import Inbound  # the plugin layer builds on this

        return Inbound(self.name, self.clock.now())

    @property
    def lengths(self) -> Lengths:
        """Length and count checks that name this channel in their errors."""
        from chatbridge.plugin.lengths import Lengths

        return Lengths(self.name)

    # -- inbound ----------------------------------------------------------------------

    async def receive(self, request: WebhookRequest) -> WebhookResult:
        """Verify and parse one webhook request, deduplicate its events and apply them
        to the store, for applications that process events as they arrive. Raises a
        :class:`~chatbridge.errors.WebhookError` subclass for anything that must be
        refused. (The webhook app queues instead: :meth:`parse_request`, then its
        outbox's atomic ``accept``.)"""
        result = await self._apply(await self.parse_request(request))
        return replace(result, response=await self.answer(result))

    async def parse_request(self, request: WebhookRequest) -> WebhookResult:
        """Check the size, content type and URL, verify the signature and parse the events,
        writing no state: the caller deduplicates ``events`` (by :meth:`dedup_key`) and
        marks the one-time values in ``once``. Every refusal is a
        :class:`~chatbridge.errors.WebhookError`."""
        self._check_size(request.body)
        self._check_content_type(request)
        _check_url(request.url)
        try:
            return await self._receive(request)
        except RecursionError as exc:  # a parser without a depth cap met a deep body
            raise PayloadError(f"{self.name} webhook body nests too deeply") from exc

    async def answer(self, result: WebhookResult) -> WebhookResponse:
        """The HTTP answer to a request whose new (deduplicated) events are
        ``result.events``, called once they are stored. Default: the response the parser
        chose; a channel overrides this to answer new events (an SMS keyword reply)."""
        return result.response

    def dedup_key(self, event: Event) -> str:
        """The key under which ``event`` is remembered as received."""
        return f"{self.name}:event:{event.event_id}"

    def _check_content_type(self, request: WebhookRequest) -> None:
        given = (request.header("content-type") or "").split(";")[0].strip().lower()
        if (
            request.method == "POST"
            and self.content_types
            and given
            and (given not in self.content_types)
        ):
            expected = ", ".join(sorted(self.content_types))
            raise UnsupportedMediaTypeError(f"{self.name} webhooks are {expected}, not {given}")

    def _check_size(self, body: bytes) -> None:
        if len(body) > self.max_body_bytes:
            raise PayloadTooLargeError(
                f"{self.name} webhook body is {len(body)} bytes, "
                f"over the {self.max_body_bytes}-byte limit"
            )

    async def _apply(self, parsed: WebhookResult) -> WebhookResult:
        """Refuse a replayed one-time value, deduplicate ``parsed.events`` and apply
        the new ones to the store. If one fails, every mark this call made is forgotten
        again (its one-time values, the events applied before it), so the provider's
        retry is processed whole rather than refused or dropped as duplicates; applying
        an event again is harmless."""
        now = self.clock.now()
        marked: list[str] = []
        fresh, duplicates = [], []
        try:
            for key, ttl in parsed.once.items():
                if not await self.store.first_seen(key, now, ttl):
                    raise ReplayError()
                marked.append(key)
            for event in parsed.events:
                key = self.dedup_key(event)
                if not await self.store.first_seen(key, now, self.dedup_ttl):
                    duplicates.append(event)
                    continue
                marked.append(key)
                await self.apply([event])
                fresh.append(event)
        except BaseException:
            with anyio.CancelScope(shield=True):
                for key in marked:
                    await self.store.forget(key)
            raise
        return WebhookResult(events=fresh, duplicates=duplicates, response=parsed.response)

    async def apply(self, events: Sequence[Event], *, record: bool = True) -> None:
        """Take in new ``events`` (one contact's, in order): apply them to the store
        (:func:`~chatbridge.state.apply_events`) and record them in the history, if
        any (``record=False``: the caller did, with other events). The one path of a
        new event, for :meth:`receive` and the webhook app."""
        await apply_events(self.store, events, self.clock.now())
        if record and self.history is not None:
            await self.history.record_events(events)

    @abstractmethod
    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        """Verify the request the provider's way and parse it into events."""

    # -- policy -----------------------------------------------------------------------

    async def window(self, identity: Identity) -> Window:
        """The customer-service window of ``identity`` right now."""
        return await self.policy.window(self.name, self.rules, identity)

    async def check(self, message: Message, contact: Contact | None = None) -> Decision:
        """Whether ``message`` may be sent now, and if not why and what to do instead."""
        self._check_recipient(message)
        billable = await self._is_billable(message)
        return await self.policy.check(self.name, self.rules, message, contact, billable=billable)

    async def _is_billable(self, message: Message) -> bool:
        """Whether sending ``message`` counts against the channel's quota."""
        return True

    # -- outbound ---------------------------------------------------------------------

    #: How long the provider remembers an idempotency key (None: the channel has none).
    idempotency_ttl: ClassVar[timedelta | None] = None

    async def send(
        self,
        message: Message,
        contact: Contact | None = None,
        *,
        idempotency_key: str | None = None,
        history_key: str | None = None,
        automated: bool = False,
    ) -> Receipt:
        """Validate, policy-check and send ``message``.

        Raises :class:`~chatbridge.errors.MessageInvalidError` for a message the channel
        cannot carry and :class:`~chatbridge.errors.PolicyRefusedError` for one the
        policy refuses, both before any network call. Raises
        :class:`~chatbridge.errors.DeliveryUnknownError` when the provider may have
        accepted it: sending again with its ``idempotency_key`` (channels that have
        one) neither delivers twice nor counts twice against the quota. The history
        records the send under ``history_key`` (default: the idempotency key, or a new
        one): a caller that must find it again after a crash gives one; ``automated``
        marks it as automation's, not the team's (it is not their first response).
        """
        return await self._send([message], contact, idempotency_key, history_key, automated)

    async def _send(
        self,
        messages: Sequence[Message],
        contact: Contact | None,
        idempotency_key: str | None = None,
        history_key: str | None = None,
        automated: bool = False,
    ) -> Receipt:
        """Send ``messages`` (to one contact) in one provider request, after validation,
        policy checks and quota reservation (one billable send per request). A send
        with an idempotency key is billable; a retry whose first attempt was ambiguous
        reuses that attempt's reservation."""
        for message in messages:
            if not isinstance(message, Message):  # a Note, say: internal, never sent
                raise TypeError(f"{self.name} sends Messages, not {type(message).__name__}")
        key = history_key or idempotency_key
        log = SendLog(self.history, messages, contact, key, self.clock.now, automated=automated)
        with telemetry.span("chatbridge.send", channel=self.name):
            try:
                receipt = await self._send_checked(messages, contact, idempotency_key, log)
            except PolicyRefusedError as refused:
                telemetry.sends(self.name, "refused").inc()
                reason = refused.decision.reason
                telemetry.POLICY_REFUSALS.labels(self.name, reason.value if reason else "").inc()
                await log.outcome(SendOutcome.REFUSED, decision=refused.decision)
                raise
            except (MessageInvalidError, UnsupportedMessageError) as exc:
                telemetry.sends(self.name, "invalid").inc()
                await log.outcome(SendOutcome.FAILED, error=exc)  # if recorded pending
                raise
            except DeliveryUnknownError as exc:
                telemetry.sends(self.name, "unknown").inc()
                await log.outcome(SendOutcome.UNKNOWN, error=exc)
                raise
            except Exception as exc:
                telemetry.sends(self.name, "failed").inc()
                await log.outcome(SendOutcome.FAILED, error=exc)
                raise
        telemetry.sends(self.name, "sent").inc()
        await log.outcome(SendOutcome.SENT, receipt=receipt)
        return receipt

    async def _send_checked(
        self,
        messages: Sequence[Message],
        contact: Contact | None,
        idempotency_key: str | None,
        log: SendLog | None = None,
    ) -> Receipt:
        """:meth:`_send` without telemetry, recording the send pending in ``log``."""
        for message in messages:
            self.validate(message)
        if idempotency_key is not None:
            self._check_idempotency_key(messages)
        reservation = await self.policy.reservation(
            self.name, self.rules, idempotency_key, self.idempotency_ttl
        )
        billable = idempotency_key is not None or await self._is_billable(messages[0])
        warnings: list[str] = []
        for message in messages:
            decision = await self.policy.check(
                self.name, self.rules, message, contact, billable=billable and not reservation.held
            )
            if not decision.allowed:
                raise PolicyRefusedError(decision)
            warnings += decision.warnings
        if log is not None:
            await log.pending()
        await reservation.take(messages[0], contact, billable=billable)
        async with reservation:
            receipt = await self._deliver_batch(messages, idempotency_key)
        if billable and not reservation.held and self.rules.monthly_quota is not None:
            telemetry.QUOTA_UNITS.labels(self.name).inc()
        return receipt.model_copy(update={"warnings": warnings}) if warnings else receipt

    def _check_idempotency_key(self, messages: Sequence[Message]) -> None:
        """Raise :class:`UnsupportedMessageError` if ``messages`` cannot be sent with an
        idempotency key (by default: when the channel has none)."""
        if self.idempotency_ttl is None:
            raise UnsupportedMessageError(f"{self.name} has no idempotency keys")

    async def _deliver_batch(
        self, messages: Sequence[Message], idempotency_key: str | None = None
    ) -> Receipt:
        """Deliver several messages in one request (with ``idempotency_key`` where the
        channel has keys); channels that can override this."""
        if len(messages) != 1:
            raise UnsupportedMessageError(f"{self.name} sends one message per request")
        return await self._deliver(messages[0])

    def validate(self, message: Message) -> None:
        """Raise :class:`~chatbridge.errors.MessageInvalidError` if ``message`` breaks a
        documented limit of the channel. Channels extend this."""
        self._check_recipient(message)

    def _check_recipient(self, message: Message) -> None:
        self._check_identity(message.contact, "message is addressed to")

    def _check_identity(self, contact: Identity, what: str = "") -> None:
        """Raise MessageInvalidError unless ``contact`` is an identity of this channel."""
        if contact.channel != self.name:
            raise MessageInvalidError(f"{what} {contact}, not a {self.name} identity".strip())

    def _receipt(self, contact: Identity, message_id: str | None, raw: dict[str, Any]) -> Receipt:
        """The receipt for a message the provider accepted just now."""
        return Receipt(
            channel=self.name,
            contact=contact,
            message_id=message_id,
            accepted_at=self.clock.now(),
            raw=raw,
        )

    @abstractmethod
    async def _deliver(self, message: Message) -> Receipt:
        """Put an already validated and allowed message on the wire."""

    # -- presence ---------------------------------------------------------------------

    async def typing(self, contact: Identity) -> None:
        """Show ``contact`` that a reply is being written (WhatsApp's typing indicator,
        LINE's loading animation, WeChat's "Typing" status). Default:
        :class:`~chatbridge.errors.UnsupportedOperationError`."""
        raise UnsupportedOperationError(f"{self.name} has no typing indicator")

    # -- customer tags ----------------------------------------------------------------

    def tag_mirror(self, tags: Mapping[str, str]) -> TagMirror:
        """What mirrors the history's customer tags onto this channel's own (``tags``:
        history tag → the channel's tag name), for :meth:`History.mirror_tags
        <chatbridge.conversations.History.mirror_tags>`. Default:
        :class:`~chatbridge.errors.UnsupportedOperationError`."""
        raise UnsupportedOperationError(f"{self.name} has no customer tags to mirror to")

    # -- media ------------------------------------------------------------------------

    async def upload_media(self, media: Media) -> Media:
        """Upload ``media.data``; returns the media with its ``provider_id`` set.
        Default: :class:`~chatbridge.errors.UnsupportedOperationError`."""
        raise UnsupportedOperationError(
            f"{self.name} has no media upload API: send media by its https URL"
        )

    async def download_media(self, media: Media) -> bytes:
        """The bytes of an inbound (or uploaded) media item. Default: the bytes the
        webhook carried, else :class:`~chatbridge.errors.UnsupportedOperationError`."""
        if media.data is not None:
            return media.data
        raise UnsupportedOperationError(f"{self.name} has no media download API")

    # -- HTTP -------------------------------------------------------------------------

    async def _request(
        self,
        request: httpx.Request,
        follow_redirects: bool = False,
        *,
        idempotency_key: str | None = None,
        accept: Container[int] = (),
    ) -> httpx.Response:
        """Send ``request`` with safe retries; map every failure to a typed error.

        A failure once the request may have reached the provider (read timeout, dropped
        connection) is a :class:`~chatbridge.errors.DeliveryUnknownError` carrying
        ``idempotency_key``, except for GET and HEAD (nothing to deliver). Error statuses
        in ``accept`` are returned for the caller to read."""
        try:
            response = await http.send(self.http, request, self.retry, follow_redirects)
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            exc.args = tuple(redact(str(arg), self._all_secrets()) for arg in exc.args)
            if isinstance(exc, _NEVER_SENT) or request.method in ("GET", "HEAD"):
                raise ProviderUnavailableError(
                    f"{self.name} API unreachable: {reason}", provider=self.name
                ) from exc
            raise DeliveryUnknownError(
                reason, provider=self.name, idempotency_key=idempotency_key
            ) from exc
        if response.is_error and response.status_code not in accept:
            await response.aread()
            self._raise_for(self._redacted(response))
        return response

    def _runtime_secrets(self) -> list[str]:
        """Secrets the channel obtained at run time (an access token it fetched), which
        errors must not show either. Default: none."""
        return []

    def _all_secrets(self) -> list[str]:
        return [*self._secrets, *self._runtime_secrets()]

    def _redacted(self, response: httpx.Response) -> httpx.Response:
        """``response`` with the secrets taken out of its body (a provider error that
        echoes the request must not put a token in an exception)."""
        text = redact(response.text, self._all_secrets())
        if text == response.text:
            return response
        encoding = ("content-encoding", "content-length", "transfer-encoding")
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in encoding]
        return httpx.Response(
            response.status_code, headers=headers, content=text.encode(), request=response.request
        )

    #: The provider's error codes by meaning, for the default :meth:`_raise_for`.
    error_codes: ClassVar[ErrorCodes] = ErrorCodes()

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        """Raise the typed error for an error response of the provider's API. Default:
        by HTTP status (429 rate limit, 401/403 auth, 5xx unavailable); channels whose
        provider answers error codes override this, mapping them with ``error_codes``."""
        raise provider_error(
            f"{self.name} API answered HTTP {response.status_code}",
            self.error_codes,
            provider=self.name,
            code=None,
            provider_message=response.text[:500],
            http_status=response.status_code,
            retry_after=http.retry_after(response),
        )

    def _read(self, response: httpx.Response, model: type[M], what: str) -> M:
        """``response``'s body as ``model``, or :meth:`_unexpected`'s error for a body
        that is not what the API documents."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise self._unexpected(response, what) from exc

    def _unexpected(
        self, response: httpx.Response, what: str, idempotency_key: str | None = None
    ) -> ProviderError:
        """The error for a success response whose body is not what the API documents:
        a :class:`~chatbridge.errors.DeliveryUnknownError` unless the request was a GET
        or HEAD (the provider said yes, but to what is unreadable)."""
        kwargs: dict[str, Any] = {
            "provider": self.name,
            "http_status": response.status_code,
            "details": {"body": self._redacted(response).text[:2000]},
        }
        reason = f"unexpected {what} response"
        if response.request.method in ("GET", "HEAD"):
            return ProviderError(f"{self.name} API returned an {reason}", **kwargs)
        return DeliveryUnknownError(reason, idempotency_key=idempotency_key, **kwargs)


def _check_url(url: str) -> None:
    """Raise :class:`PayloadError` for a URL no parser can split (a hostile ``Host``
    header: ``[::1``, a port that is no number or out of range)."""
    try:
        urlsplit(url).port  # noqa: B018 (parsing is the check)
    except ValueError as exc:
        raise PayloadError(f"the request URL cannot be parsed: {exc}") from exc
