"""The LINE Official Account channel (Messaging API)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, NoReturn, Self, Unpack

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.errors import (
    DeliveryUnknownError,
    MessageInvalidError,
    PolicyRefusedError,
    ProviderError,
    ProviderUnavailableError,
    UnsupportedRequestError,
)
from chatbridge.line import outbound, signature
from chatbridge.line.errors import INVALID_REPLY_TOKEN, error_for
from chatbridge.line.inbound import parse_webhook
from chatbridge.line.payloads import LineConsumption, LineQuota, LineSendResult
from chatbridge.line.plans import Plan
from chatbridge.line.profile import LineProfile, loading_body, user_id
from chatbridge.line.richmenu import RichMenus
from chatbridge.models import Contact, Identity, Media, Message, Receipt
from chatbridge.policy import QUOTA_RETENTION, Cost, Decision, PolicyRules, quota_key
from chatbridge.webhook import WebhookRequest, WebhookResult


class LineConfig(BaseModel):
    """One LINE Official Account's Messaging API channel.

    ``monthly_quota`` is the plan's message count (the default, 200, is Japan's free
    plan; plans differ by region, docs/line.md); None when the plan is unlimited.
    ``plan`` (one of :mod:`chatbridge.line.plans`) replaces it with the plan's included
    messages and, for a plan with additional messages, allows those at the plan's
    price, held to ``spending_cap`` (in the plan's currency; None: no cap).
    ``reply_token_ttl`` is how long a reply token is trusted.
    """

    model_config = ConfigDict(frozen=True)

    channel_secret: SecretStr
    channel_access_token: SecretStr
    monthly_quota: int | None = Field(default=200, ge=0)
    quota_timezone: str = "Asia/Tokyo"
    plan: Plan | None = None
    spending_cap: Decimal | None = Field(default=None, ge=0)
    reply_token_ttl: timedelta = timedelta(minutes=1)
    api_base: str = "https://api.line.me"
    data_base: str = "https://api-data.line.me"

    @model_validator(mode="after")
    def _cap_needs_overage(self) -> Self:
        if self.spending_cap is not None and (self.plan is None or self.plan.overage is None):
            raise ValueError("spending_cap needs a plan that sends additional messages")
        return self


class QuotaStatus(BaseModel):
    """The month's quota as the provider and chatbridge count it."""

    limit: int | None
    provider_used: int
    local_used: int


class MulticastResult(BaseModel):
    """Who a multicast went to, and who the policy kept out (with why). ``cost`` and
    ``warnings``: a paid plan's overage for the recipients sent to, as a push's
    :class:`~chatbridge.policy.Decision` and :class:`~chatbridge.models.Receipt` give it."""

    sent: list[Identity]
    refused: list[Decision]
    cost: Cost | None = None
    warnings: list[str] = Field(default_factory=list)


class LineChannel(Channel):
    """LINE through the Messaging API.

    Policy: only users who follow the account (a follow event or a message was seen; an
    unfollow means blocked). Replies (with the event's reply token) are free; pushes
    count against the plan's monthly quota. No service window.
    """

    name = "line"
    content_types = frozenset({"application/json"})
    config_type = LineConfig
    config: LineConfig
    idempotency_ttl = outbound.RETRY_KEY_TTL

    def __init__(self, config: LineConfig, **options: Unpack[ChannelOptions]) -> None:
        super().__init__(config, **options)
        plan = config.plan
        self.rules = PolicyRules(
            requires_follower=True,
            monthly_quota=plan.included if plan else config.monthly_quota,
            quota_timezone=config.quota_timezone,
            overage=plan.overage_rules(config.spending_cap) if plan else None,
        )

    def __repr__(self) -> str:
        if self.config.plan is not None:
            plan = self.config.plan
            return f"LineChannel(plan={plan.region}/{plan.name}, included={plan.included})"
        return f"LineChannel(monthly_quota={self.config.monthly_quota!r})"

    # -- inbound ----------------------------------------------------------------------

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        if request.method != "POST":
            raise UnsupportedRequestError(f"LINE webhooks are POST, not {request.method}")
        signature.verify(
            request.body,
            request.header(signature.SIGNATURE_HEADER),
            self.config.channel_secret.get_secret_value(),
        )
        return WebhookResult(events=parse_webhook(request.body, self.inbound()))

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        outbound.validate(message, self.lengths)

    async def _reply_token(self, identity: Identity) -> str | None:
        state = await self.store.contact_state(identity)
        if state.reply_token is None or state.reply_token_at is None:
            return None
        if self.clock.now() >= state.reply_token_at + self.config.reply_token_ttl:
            return None
        return state.reply_token

    async def _is_billable(self, message: Message) -> bool:
        """A reply (with a fresh reply token) is free; a push is billable."""
        return await self._reply_token(message.contact) is None

    async def _deliver(self, message: Message) -> Receipt:
        return await self._deliver_batch([message])

    async def send_all(
        self,
        messages: Sequence[Message],
        contact: Contact | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Receipt:
        """Send up to 5 messages to one contact in one request (one reply or one push,
        counted once against the quota); ``idempotency_key`` as for :meth:`send`."""
        count = len(messages)
        if not 1 <= count <= outbound.MAX_MESSAGES_PER_REQUEST:
            raise MessageInvalidError(f"LINE sends 1 to 5 messages per request; got {count}")
        if len({m.contact for m in messages}) != 1:
            raise MessageInvalidError("send_all sends to one contact; use multicast for many")
        return await self._send(messages, contact, idempotency_key)

    async def _deliver_batch(
        self, messages: Sequence[Message], idempotency_key: str | None = None
    ) -> Receipt:
        """A reply when a reply token is fresh, else a push with a retry key (always a
        push with the given ``idempotency_key``: replies have no retry key)."""
        identity = messages[0].contact
        objects = [outbound.message_object(m) for m in messages]
        token = None if idempotency_key else await self._reply_token(identity)
        if token is None:
            key = outbound.retry_key(idempotency_key)
            body = {"to": identity.address, "messages": objects}
            response = await self._post("/v2/bot/message/push", body, retry_key=key)
            return self._receipt_from(identity, response, key)
        await self.store.update_contact_state(identity, reply_token=None, reply_token_at=None)
        try:
            body = {"replyToken": token, "messages": objects}
            response = await self._post("/v2/bot/message/reply", body)
        except ProviderError as exc:
            if INVALID_REPLY_TOKEN not in (exc.provider_message or ""):
                raise
            # The token lapsed before we used it: send again as a (billable) push, as
            # part of this send (counted and recorded once, by the caller's _send).
            return await self._send_checked(messages, None, None)
        return self._receipt_from(identity, response)

    async def multicast(
        self,
        message: Message,
        recipients: Sequence[Identity],
        *,
        idempotency_key: str | None = None,
    ) -> MulticastResult:
        """Push ``message`` to many users (500 per request). Recipients the policy refuses
        are left out and reported; quota is reserved for the rest before any call, and
        the overage of a paid plan is priced for all of them together (refused whole
        past the spending cap, :class:`~chatbridge.errors.PolicyRefusedError`).

        Recipients refused one by one are listed in ``refused``; a batch refused as a
        whole (together over the quota, or the cap) raises instead.

        On :class:`~chatbridge.errors.DeliveryUnknownError` the whole reservation is
        kept: call again with the same recipients and the error's ``idempotency_key``;
        requests LINE already accepted are not repeated, nor counted again (nor priced:
        the retry's ``cost`` is None). A request whose recipients changed in between
        (someone left) is sent anew, so its other recipients may get the message twice
        rather than none."""
        self.validate(message)
        key = outbound.retry_key(idempotency_key)
        reservation = await self.policy.reservation(
            self.name, self.rules, key, self.idempotency_ttl
        )
        billable = not reservation.held  # a retry's units were taken by the first try
        decisions = [
            await self.policy.check(
                self.name, self.rules, message.model_copy(update={"contact": i}), billable=billable
            )
            for i in dict.fromkeys(recipients)
        ]
        sent = [decision.contact for decision in decisions if decision.allowed]
        refused = [decision for decision in decisions if not decision.allowed]
        if not sent:
            return MulticastResult(sent=[], refused=refused)
        first = message.model_copy(update={"contact": sent[0]})
        batch = await self.policy.check(
            self.name, self.rules, first, billable=billable, units=len(sent)
        )
        if not batch.allowed:
            raise PolicyRefusedError(batch)
        await reservation.take(first, None, billable=True, units=len(sent))
        body = outbound.message_object(message)
        async with reservation:
            size = outbound.MAX_MULTICAST_RECIPIENTS
            for start in range(0, len(sent), size):
                to = [identity.address for identity in sent[start : start + size]]
                try:
                    await self._post(
                        "/v2/bot/message/multicast",
                        {"to": to, "messages": [body]},
                        retry_key=outbound.chunk_key(key, to),
                    )
                except DeliveryUnknownError as exc:
                    exc.idempotency_key = key  # the multicast's, whichever request failed
                    raise
                reservation.sent(len(to))
        return MulticastResult(sent=sent, refused=refused, cost=batch.cost, warnings=batch.warnings)

    # -- quota ------------------------------------------------------------------------

    async def quota_status(self) -> QuotaStatus:
        """The provider's limit and consumption for this month, beside our own count."""
        quota = LineQuota.model_validate(await self._get_json("/v2/bot/message/quota"))
        used = LineConsumption.model_validate(
            await self._get_json("/v2/bot/message/quota/consumption")
        )
        local = await self.store.counter(quota_key(self.name, self.rules, self.clock.now()))
        limit = quota.value if quota.type == "limited" else None
        return QuotaStatus(limit=limit, provider_used=used.total_usage, local_used=local)

    async def sync_quota(self) -> QuotaStatus:
        """Raise our month's count to the provider's (messages sent by other tools count
        too) and return the status."""
        status = await self.quota_status()
        if status.provider_used > status.local_used:
            now = self.clock.now()
            missing = status.provider_used - status.local_used
            key = quota_key(self.name, self.rules, now)
            await self.store.consume(key, missing, None, now + QUOTA_RETENTION)
            status = status.model_copy(update={"local_used": status.provider_used})
        return status

    # -- account ----------------------------------------------------------------------

    async def typing(self, contact: Identity, seconds: int = 5) -> None:
        """LINE's loading animation in the user's one-on-one chat, for ``seconds`` (5 to
        60, a multiple of 5) or until the account's next message. Shown only while the
        user has the chat open; groups and rooms have none."""
        self._check_identity(contact)
        await self._api(
            "POST", "/v2/bot/chat/loading/start", loading_body(contact.address, seconds)
        )

    async def profile(self, contact: Identity) -> LineProfile:
        """The user's display name, picture, status message and language."""
        self._check_identity(contact)
        answer = await self._api("GET", f"/v2/bot/profile/{user_id(contact.address)}")
        return LineProfile.model_validate_json(answer.content)

    @cached_property
    def rich_menus(self) -> RichMenus:
        """Rich menus and their aliases (:class:`~chatbridge.line.richmenu.RichMenus`)."""
        return RichMenus(self)

    # -- media ------------------------------------------------------------------------

    async def download_media(self, media: Media) -> bytes:
        """The content of an inbound image, video, audio or file message (hosted by LINE,
        or at the external provider's URL)."""
        if media.provider_id:
            url = f"{self.config.data_base}/v2/bot/message/{media.provider_id}/content"
            request = self.http.build_request("GET", url, headers=self._auth())
        elif media.url:
            request = self.http.build_request("GET", media.url)
        else:
            raise MessageInvalidError("downloading LINE media needs its message id or url")
        return (await self._request(request)).content

    # -- HTTP -------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.channel_access_token.get_secret_value()}"}

    async def _post(
        self, path: str, body: dict[str, Any], retry_key: str | None = None
    ) -> httpx.Response:
        """POST ``body``; with a retry key, a 409 (the key was accepted before) is
        returned as a success and a server error is ambiguous (LINE may have delivered
        the message anyway, "Retry failed API requests")."""
        headers = self._auth()
        if retry_key:
            headers[outbound.RETRY_KEY_HEADER] = retry_key
        url = self.config.api_base + path
        request = self.http.build_request("POST", url, headers=headers, json=body)
        accept = (409,) if retry_key else ()
        try:
            return await self._request(request, idempotency_key=retry_key, accept=accept)
        except ProviderUnavailableError as exc:
            status = exc.http_status
            if retry_key is None or status is None or isinstance(exc, DeliveryUnknownError):
                raise
            raise DeliveryUnknownError(
                f"HTTP {status}",
                provider=self.name,
                idempotency_key=retry_key,
                http_status=status,
                provider_message=exc.provider_message,
                details=exc.details,
            ) from exc

    async def _api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        content: bytes | None = None,
        content_type: str | None = None,
        data_host: bool = False,
    ) -> httpx.Response:
        """One account API call (not a send): JSON ``body``, or raw ``content`` of
        ``content_type``, which goes to the data host (uploads), as ``data_host`` asks."""
        headers = self._auth()
        if content is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
            data_host = True
        base = self.config.data_base if data_host else self.config.api_base
        if body is not None:
            request = self.http.build_request(method, base + path, headers=headers, json=body)
        else:
            empty = b"" if method == "POST" else None  # LINE wants a Content-Length
            request = self.http.build_request(
                method, base + path, headers=headers, content=content if content else empty
            )
        return await self._request(request)

    async def _get_json(self, path: str) -> Any:
        return (await self._api("GET", path)).json()

    def _receipt_from(
        self, identity: Identity, response: httpx.Response, retry_key: str | None = None
    ) -> Receipt:
        if response.status_code == 409:  # accepted earlier: its message ids are not given
            accepted = response.headers.get(outbound.ACCEPTED_REQUEST_ID_HEADER)
            return self._receipt(identity, None, {"acceptedRequestId": accepted})
        try:
            result = LineSendResult.model_validate_json(response.content or b"{}")
        except ValidationError as exc:
            raise self._unexpected(response, "send", retry_key) from exc
        message_id = result.sent_messages[0].id if result.sent_messages else None
        return self._receipt(identity, message_id, result.model_dump(by_alias=True))

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise error_for(response)
