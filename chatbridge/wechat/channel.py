"""The WeChat Service Account (Official Account) channel."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, NoReturn, Unpack

import anyio
import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.errors import (
    ConfigurationError,
    MessageInvalidError,
    ProviderError,
    SignatureError,
    UnsupportedMessageError,
    UnsupportedRequestError,
)
from chatbridge.models import Event, Identity, Media, Message, MessageKind, Receipt
from chatbridge.plugin.tokens import AccessTokenCache
from chatbridge.policy import PolicyRules
from chatbridge.webhook import WebhookRequest, WebhookResponse, WebhookResult
from chatbridge.wechat import outbound, signature
from chatbridge.wechat.crypto import MessageCrypto, aes_key
from chatbridge.wechat.errors import TOKEN_CODES, TYPING_ALREADY, error_for
from chatbridge.wechat.inbound import parse_pushes
from chatbridge.wechat.menu import MenuApi
from chatbridge.wechat.payloads import WXAccessToken, WXUpload, parse_xml, render_xml
from chatbridge.wechat.qrcode import QRCodes
from chatbridge.wechat.tags import TagMirror, Tags
from chatbridge.wechat.users import Users

Mode = Literal["plain", "compatible", "secure"]
#: "Typing" is allowed within this long of the user's last message (errcode 45080).
TYPING_WITHIN = timedelta(seconds=30)
#: Largest push parsed on the event loop. Measured (docs/wechat.md): parsing plus
#: decryption costs 6-25 µs per KiB, so 32 KiB stays under 1 ms even when dense with
#: elements, while a worker-thread hop costs about 50-75 µs.
_INLINE_MAX_BYTES = 32 * 1024
#: What WeChat expects in answer to a push that gets no passive reply.
_SUCCESS = WebhookResponse(body=b"success")


class WeChatConfig(BaseModel):
    """One Service Account: appid/secret for the API, token and EncodingAESKey for the
    server URL.

    ``mode`` is the account's message encryption mode: ``secure`` refuses plaintext
    pushes (whose body no signature covers), ``compatible`` accepts both.
    """

    model_config = ConfigDict(frozen=True)

    app_id: str
    app_secret: SecretStr
    token: SecretStr
    encoding_aes_key: SecretStr | None = None
    mode: Mode = "plain"
    base_url: str = "https://api.weixin.qq.com"


class WeChatChannel(Channel):
    """WeChat Service Account messaging.

    Policy: customer-service messages within 48 hours of the user's last interaction
    (message, subscribe, menu click, QR scan); outside it only template messages; nobody
    who never followed or wrote, and nothing after an unsubscribe.
    """

    name = "wechat"
    config_type = WeChatConfig
    config: WeChatConfig
    rules = PolicyRules(window=timedelta(hours=48), requires_follower=True)
    #: A template's client_msg_id: "only one message is sent for the same openid +
    #: client_msg_id; valid for 10 minutes" (Template message interface).
    idempotency_ttl = timedelta(minutes=10)
    max_body_bytes = 256 * 1024
    content_types = frozenset({"text/xml", "application/xml", "text/plain"})

    def __init__(self, config: WeChatConfig, **options: Unpack[ChannelOptions]) -> None:
        super().__init__(config, **options)
        self._crypto: MessageCrypto | None = None
        if config.encoding_aes_key is not None:
            key = aes_key(config.encoding_aes_key.get_secret_value())
            self._crypto = MessageCrypto(config.app_id, key)
        elif config.mode != "plain":
            raise ConfigurationError(f"{config.mode} mode needs an encoding_aes_key")
        self.tokens = AccessTokenCache(self._fetch_token, self.clock)
        #: The account's features beyond messaging (docs/wechat.md, "Account features").
        self.qrcodes = QRCodes(self._api)
        self.menus = MenuApi(self._api)
        self.tags = Tags(self._api)
        self.users = Users(self._api)

    def _runtime_secrets(self) -> list[str]:
        return self.tokens.known()

    def __repr__(self) -> str:
        return f"WeChatChannel(app_id={self.config.app_id!r}, mode={self.config.mode!r})"

    @property
    def _token(self) -> str:
        return self.config.token.get_secret_value()

    # -- inbound ----------------------------------------------------------------------

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        query = request.query
        if request.method == "GET":
            echo = signature.answer_handshake(query, self._token)
            return WebhookResult(response=WebhookResponse(body=echo.encode()))
        if request.method != "POST":
            raise UnsupportedRequestError(f"WeChat pushes are GET or POST, not {request.method}")
        signature.verify_signature(query, self._token)
        document = await self._read_push(query, request.body)
        return WebhookResult(
            events=parse_pushes(document, self.inbound()),
            response=_SUCCESS,
        )

    async def _read_push(self, query: Any, body: bytes) -> dict[str, Any]:
        """The plaintext push. A body over ``_INLINE_MAX_BYTES`` is parsed (and
        decrypted) in a worker thread, so it does not hold the event loop."""
        if len(body) <= _INLINE_MAX_BYTES:
            return self._open(query, parse_xml(body))
        return await anyio.to_thread.run_sync(lambda: self._open(query, parse_xml(body)))

    def _open(self, query: Any, document: dict[str, Any]) -> dict[str, Any]:
        """The plaintext push: decrypted when the push is encrypted."""
        if query.get("encrypt_type") != "aes":
            if self.config.mode == "secure":
                raise SignatureError("secure mode refuses unencrypted pushes")
            return document
        if self._crypto is None:
            raise ConfigurationError("received an encrypted push but no encoding_aes_key is set")
        encrypted = document.get("Encrypt")
        if not isinstance(encrypted, str) or not encrypted:
            raise SignatureError("encrypted push has no Encrypt element to verify")
        signature.verify_msg_signature(query, self._token, encrypted)
        return parse_xml(self._crypto.decrypt(encrypted))

    def passive_reply(self, event: Event, text: str) -> WebhookResponse:
        """A free text reply to ``event``, returned as the webhook's HTTP response
        (WeChat expects it within 5 seconds). Encrypted when the account encrypts."""
        if event.contact is None:
            raise MessageInvalidError("a passive reply needs an event from a user")
        reply = render_xml(
            {
                "ToUserName": event.contact.address,
                "FromUserName": str(event.raw.get("ToUserName", "")),
                "CreateTime": int(self.clock.now().timestamp()),
                "MsgType": "text",
                "Content": text,
            }
        )
        if self._crypto is None or self.config.mode == "plain":
            return WebhookResponse(body=reply, media_type="application/xml")
        encrypted = self._crypto.encrypt(reply)
        timestamp, nonce = str(int(self.clock.now().timestamp())), secrets.token_hex(8)
        wrapper = {
            "Encrypt": encrypted,
            "MsgSignature": signature.sha1_signature(self._token, timestamp, nonce, encrypted),
            "TimeStamp": timestamp,
            "Nonce": nonce,
        }
        return WebhookResponse(body=render_xml(wrapper), media_type="application/xml")

    def open_reply(self, body: bytes) -> bytes:
        """The plaintext of an encrypted passive reply (what WeChat does on its side)."""
        document = parse_xml(body)
        if self._crypto is None or "Encrypt" not in document:
            return body
        query = {"timestamp": document["TimeStamp"], "nonce": document["Nonce"]}
        signature.verify_msg_signature(
            {**query, "msg_signature": document["MsgSignature"]}, self._token, document["Encrypt"]
        )
        return self._crypto.decrypt(document["Encrypt"])

    # -- outbound ---------------------------------------------------------------------

    def validate(self, message: Message) -> None:
        super().validate(message)
        outbound.validate(message, self.lengths)

    def _check_idempotency_key(self, messages: Sequence[Message]) -> None:
        if any(message.kind is not MessageKind.TEMPLATE for message in messages):
            raise UnsupportedMessageError("WeChat takes an idempotency key for templates only")

    async def _deliver_batch(
        self, messages: Sequence[Message], idempotency_key: str | None = None
    ) -> Receipt:
        """One message; a template sent with ``idempotency_key`` carries it as its
        client_msg_id (keys are refused for other messages before)."""
        if idempotency_key is None or len(messages) != 1:
            return await super()._deliver_batch(messages)
        return await self._send_template(messages[0], idempotency_key)

    async def _send_template(self, message: Message, client_msg_id: str | None) -> Receipt:
        """A template with ``client_msg_id``, or a new one: a send whose answer was lost
        can be repeated with it (``DeliveryUnknownError.idempotency_key``)."""
        key = client_msg_id or uuid.uuid4().hex
        body = outbound.template_body(message, key)
        result = await self._api("POST", "/cgi-bin/message/template/send", key, json=body)
        message_id = str(result.get("msgid")) if "msgid" in result else None
        return self._receipt(message.contact, message_id, result)

    async def _deliver(self, message: Message) -> Receipt:
        if message.kind is MessageKind.TEMPLATE:
            return await self._send_template(message, None)
        else:
            if message.media and not message.media[0].provider_id:
                message = message.model_copy(
                    update={"media": [await self.upload_media(message.media[0])]}
                )
            body = outbound.customer_service_body(message)
            result = await self._api("POST", "/cgi-bin/message/custom/send", json=body)
            message_id = None
        return self._receipt(message.contact, message_id, result)

    async def typing(self, contact: Identity) -> None:
        """Show ``contact`` "typing…" (``/cgi-bin/message/custom/typing``, command
        ``Typing``): allowed within 30 seconds of the user's last message and shown for
        15 seconds or until a message is sent. A repeat while shown (errcode 45081) is
        not an error: the status is what was asked for."""
        try:
            await self._typing(contact, "Typing")
        except ProviderError as exc:
            if exc.code != TYPING_ALREADY:
                raise

    async def cancel_typing(self, contact: Identity) -> None:
        """Take the "typing…" status back (command ``CancelTyping``)."""
        await self._typing(contact, "CancelTyping")

    async def _typing(self, contact: Identity, command: str) -> None:
        self._check_identity(contact)
        last = (await self.store.contact_state(contact)).last_inbound_at
        if command == "Typing" and (last is None or self.clock.now() - last > TYPING_WITHIN):
            raise MessageInvalidError(  # WeChat's 45080, decided before any call
                f"WeChat shows typing only within {TYPING_WITHIN.seconds} s of the user's "
                "last message"
            )
        body = {"touser": contact.address, "command": command}
        await self._api("POST", "/cgi-bin/message/custom/typing", json=body)

    # -- customer tags ----------------------------------------------------------------

    def tag_mirror(self, tags: Mapping[str, str]) -> TagMirror:
        """Customer tags mirrored onto WeChat user tags (:class:`~.tags.TagMirror`)."""
        return TagMirror(self.tags, self.name, tags)

    # -- media ------------------------------------------------------------------------

    async def upload_media(self, media: Media) -> Media:
        """Upload temporary media (kept by WeChat for 3 days)."""
        kind = outbound.media_type(media)
        if media.data is None:
            raise MessageInvalidError("uploading media needs data")
        self.lengths.upload(kind, media.data, outbound.MEDIA_MAX_BYTES[kind])
        files = {
            "media": (
                media.filename or f"upload.{kind}",
                media.data,
                media.mime_type or "application/octet-stream",
            )
        }
        result = await self._api(
            "POST", "/cgi-bin/media/upload", params={"type": kind}, files=files
        )
        try:
            uploaded = WXUpload.model_validate(result)
        except ValidationError as exc:
            raise self._unexpected_body(result, "media upload") from exc
        return media.model_copy(update={"provider_id": uploaded.media_id, "size": len(media.data)})

    async def download_media(self, media: Media) -> bytes:
        if not media.provider_id:
            raise MessageInvalidError("downloading WeChat media needs its media_id (provider_id)")
        response, body = await self._call(
            "GET", "/cgi-bin/media/get", params={"media_id": media.provider_id}
        )
        video_url = body.get("video_url") if body else None
        if isinstance(video_url, str):
            return (await self._request(self.http.build_request("GET", video_url))).content
        return response.content

    # -- API plumbing -----------------------------------------------------------------

    async def _fetch_token(self) -> tuple[str, timedelta]:
        params = {
            "grant_type": "client_credential",
            "appid": self.config.app_id,
            "secret": self.config.app_secret.get_secret_value(),
        }
        request = self.http.build_request(
            "GET", f"{self.config.base_url}/cgi-bin/token", params=params
        )
        response = await self._request(request)
        body = self._json(response, None)
        self._check(response, body)
        try:
            token = WXAccessToken.model_validate(body)
        except ValidationError as exc:
            raise self._unexpected_body(body, "access token") from exc
        return token.access_token, timedelta(seconds=token.expires_in)

    async def _call(
        self, method: str, path: str, idempotency_key: str | None = None, **kwargs: Any
    ) -> tuple[httpx.Response, dict[str, Any] | None]:
        """An API call with the cached access token, and its JSON body (None for file
        content); on an invalid-token errcode the token is refreshed once and the call
        repeated. ``idempotency_key`` is the one the body carries, for a
        ``DeliveryUnknownError``."""
        token = await self.tokens.get()
        response, body = await self._call_with(token, method, path, idempotency_key, **kwargs)
        if body is not None and _errcode(body) in TOKEN_CODES:
            token = await self.tokens.invalidate(token)
            response, body = await self._call_with(token, method, path, idempotency_key, **kwargs)
        if body is not None:
            self._check(response, body)
        return response, body

    async def _call_with(
        self, token: str, method: str, path: str, idempotency_key: str | None, **kwargs: Any
    ) -> tuple[httpx.Response, dict[str, Any] | None]:
        params = {**kwargs.pop("params", {}), "access_token": token}
        url = self.config.base_url + path
        response = await self._request(
            self.http.build_request(method, url, params=params, **kwargs),
            idempotency_key=idempotency_key,
        )
        content_type = response.headers.get("content-type", "")
        is_json = content_type.startswith(("application/json", "text/plain"))
        return response, self._json(response, idempotency_key) if is_json else None

    async def _api(
        self, method: str, path: str, idempotency_key: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        response, body = await self._call(method, path, idempotency_key, **kwargs)
        if body is None:
            raise self._unexpected(response, "non-JSON", idempotency_key)
        return body

    @staticmethod
    def _check(response: httpx.Response, body: dict[str, Any]) -> None:
        """Raise the typed error for a non-zero ``errcode`` (WeChat answers HTTP 200)."""
        errcode = _errcode(body)
        if errcode:
            raise error_for(errcode, str(body.get("errmsg", "")), response.status_code, body)

    def _json(self, response: httpx.Response, idempotency_key: str | None) -> dict[str, Any]:
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise self._unexpected(response, "non-JSON", idempotency_key) from exc
        if not isinstance(body, dict):
            raise self._unexpected(response, "non-object JSON", idempotency_key)
        return body

    def _unexpected_body(self, body: dict[str, Any], what: str) -> ProviderError:
        message = f"WeChat API returned an unexpected {what} response"
        return ProviderError(message, provider=self.name, details=body)

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        try:
            body = json.loads(response.content)
            errcode = int(body["errcode"])
        except (ValueError, KeyError, TypeError):
            body, errcode = {"body": response.text[:500]}, -1
        raise error_for(
            errcode, str(body.get("errmsg", response.reason_phrase)), response.status_code, body
        )


def _errcode(body: dict[str, Any]) -> int:
    code = body.get("errcode", 0)
    return code if isinstance(code, int) else 0
