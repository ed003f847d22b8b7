"""The LINE Official Account channel (Messaging API)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NoReturn, Unpack

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.errors import (
    MessageInvalidError,
    PolicyRefusedError,
    ProviderError,
    UnsupportedMessageError,
    UnsupportedRequestError,
)
from chatbridge.line import outbound, signature
from chatbridge.line.errors import INVALID_REPLY_TOKEN, error_for
from chatbridge.line.inbound import parse_webhook
from chatbridge.line.payloads import LineConsumption, LineQuota, LineSendResult
from chatbridge.models import Contact, Identity, Media, Message, Receipt
from chatbridge.policy import QUOTA_RETENTION, Decision, PolicyRules, quota_key
from chatbridge.webhook import WebhookRequest, WebhookResult


class LineConfig(BaseModel):
    """One LINE Official Account's Messaging API channel.

    ``monthly_quota`` is the plan's free message count (plans differ by region: for
    example 200 in Japan, 300 in Taiwan, 500 in Thailand); None when the plan is
    unlimited. ``reply_token_ttl`` is how long a reply token is trusted.
    """

    model_config = ConfigDict(frozen=True)

    channel_secret: SecretStr
    channel_access_token: SecretStr
    monthly_quota: int | None = Field(default=200, ge=0)
    quota_timezone: str = "Asia/Tokyo"
    reply_token_ttl: timedelta = timedelta(minutes=1)
    api_base: str = "https://api.line.me"
    data_base: str = "https://api-data.line.me"


class QuotaStatus(BaseModel):
    """The month's quota as the provider and chatbridge count it."""

    limit: int | None
    provider_used: int
    local_used: int


class MulticastResult(BaseModel):
    """Who a multicast went to, and who the policy kept out (with why)."""

    sent: list[Identity]
    refused: list[Decision]


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

    def __init__(self, config: LineConfig, **options: Unpack[ChannelOptions]) -> None:
        super().__init__(config, **options)
        self.rules = PolicyRules(
            requires_follower=True,
            monthly_quota=config.monthly_quota,
            quota_timezone=config.quota_timezone,
        )

    def __repr__(self) -> str:
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
        return WebhookResult(events=parse_webhook(request.body, self.clock.now()))

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        outbound.validate(message)

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
        self, messages: Sequence[Message], contact: Contact | None = None
    ) -> Receipt:
        """Send up to 5 messages to one contact in one request (one reply or one push,
        counted once against the quota)."""
        count = len(messages)
        if not 1 <= count <= outbound.MAX_MESSAGES_PER_REQUEST:
            raise MessageInvalidError(f"LINE sends 1 to 5 messages per request; got {count}")
        if len({m.contact for m in messages}) != 1:
            raise MessageInvalidError("send_all sends to one contact; use multicast for many")
        return await self._send(messages, contact)

    async def _deliver_batch(self, messages: Sequence[Message]) -> Receipt:
        identity = messages[0].contact
        objects = [outbound.message_object(m) for m in messages]
        token = await self._reply_token(identity)
        if token is None:
            body = {"to": identity.address, "messages": objects}
            response = await self._post("/v2/bot/message/push", body, retry_key=str(uuid.uuid4()))
            return self._receipt_from(identity, response)
        await self.store.update_contact_state(identity, reply_token=None, reply_token_at=None)
        try:
            body = {"replyToken": token, "messages": objects}
            response = await self._post("/v2/bot/message/reply", body)
        except ProviderError as exc:
            if INVALID_REPLY_TOKEN not in (exc.provider_message or ""):
                raise
            # The token lapsed before we used it: send again as a (billable) push.
            return await self._send(messages, None)
        return self._receipt_from(identity, response)

    async def multicast(self, message: Message, recipients: Sequence[Identity]) -> MulticastResult:
        """Push ``message`` to many users (500 per request). Recipients the policy refuses
        are left out and reported; quota is reserved for the rest before any call."""
        self.validate(message)
        decisions = [
            await self.policy.check(
                self.name, self.rules, message.model_copy(update={"contact": i})
            )
            for i in dict.fromkeys(recipients)
        ]
        sent = [decision.contact for decision in decisions if decision.allowed]
        refused = [decision for decision in decisions if not decision.allowed]
        if not sent:
            return MulticastResult(sent=[], refused=refused)
        now = self.clock.now()
        key = quota_key(self.name, self.rules, now)
        expires_at = now + QUOTA_RETENTION
        if not await self.store.consume(key, len(sent), self.rules.monthly_quota, expires_at):
            first = message.model_copy(update={"contact": sent[0]})
            raise PolicyRefusedError(await self.policy.check(self.name, self.rules, first))
        body = outbound.message_object(message)
        done = 0
        try:
            for start in range(0, len(sent), outbound.MAX_MULTICAST_RECIPIENTS):
                chunk = sent[start : start + outbound.MAX_MULTICAST_RECIPIENTS]
                await self._post(
                    "/v2/bot/message/multicast",
                    {"to": [i.address for i in chunk], "messages": [body]},
                    retry_key=str(uuid.uuid4()),
                )
                done += len(chunk)
        finally:
            if done < len(sent):
                await self.store.consume(key, done - len(sent), None)
        return MulticastResult(sent=sent, refused=refused)

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

    # -- media ------------------------------------------------------------------------

    async def upload_media(self, media: Media) -> Media:
        raise UnsupportedMessageError(
            "LINE has no media upload API: host the file and send its https URL in media.url"
        )

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
        headers = self._auth()
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        url = self.config.api_base + path
        request = self.http.build_request("POST", url, headers=headers, json=body)
        try:
            return await self._request(request)
        except ProviderError as exc:
            if retry_key is None or exc.http_status != 409:
                raise
            # 409 with a retry key: LINE already accepted this very request earlier.
            return httpx.Response(200, json={})

    async def _get_json(self, path: str) -> Any:
        request = self.http.build_request("GET", self.config.api_base + path, headers=self._auth())
        return (await self._request(request)).json()

    def _receipt_from(self, identity: Identity, response: httpx.Response) -> Receipt:
        try:
            result = LineSendResult.model_validate_json(response.content or b"{}")
        except ValidationError as exc:
            raise self._unexpected(response, "send") from exc
        message_id = result.sent_messages[0].id if result.sent_messages else None
        return self._receipt(identity, message_id, result.model_dump(by_alias=True))

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        raise error_for(response)
