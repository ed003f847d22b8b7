"""Webhook verify+parse throughput: chatbridge beside the official SDKs and the floor.

Each row receives the same signed body many times. "floor" is the bare minimum any
implementation must do: the provider's signature check plus decoding the body (JSON,
XML after AES for WeChat, the form for Twilio). "chatbridge" is the channel's verify +
parse into the typed common model (``Channel._receive``); "chatbridge + state" adds
deduplication and window bookkeeping in the memory store (``Channel.receive``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import fromstring

import anyio

from chatbridge.clock import FakeClock
from chatbridge.line import kit as line_kit
from chatbridge.sms.twilio import kit as twilio_kit
from chatbridge.wechat import kit as wechat_kit
from chatbridge.wechat.crypto import MessageCrypto, aes_key
from chatbridge.whatsapp import kit as whatsapp_kit

Row = tuple[str, str, float | str]


#: Each rate is the best of this many short runs: on a shared machine the best run is
#: the one least disturbed by other work (timeit's advice).
REPEATS = 5


def rate(function: Callable[[], Any], seconds: float = 0.25) -> float:
    """Calls per second of ``function``: the best of :data:`REPEATS` runs of about
    ``seconds`` each."""
    return max(_run(function, seconds) for _ in range(REPEATS))


async def async_rate(function: Callable[[], Awaitable[Any]], seconds: float = 0.25) -> float:
    """:func:`rate` for a coroutine function."""
    return max([await _async_run(function, seconds) for _ in range(REPEATS)])


def _run(function: Callable[[], Any], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            function()
        count += 50
    return count / elapsed


async def _async_run(function: Callable[[], Awaitable[Any]], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            await function()
        count += 50
    return count / elapsed


def _guard(name: str, build: Callable[[], Callable[[], Any]]) -> float | str:
    try:
        return rate(build())
    except Exception as exc:  # an SDK that is missing or changed its API
        return f"n/a ({type(exc).__name__}: {exc})"[:80]


def whatsapp() -> list[Row]:
    request = whatsapp_kit.sign(whatsapp_kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"})))
    body, header = request.body, request.headers["x-hub-signature-256"]
    secret = whatsapp_kit.CONFIG.app_secret.get_secret_value().encode()

    def floor() -> Any:
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, header)
        return json.loads(body)

    def pywa() -> Callable[[], Any]:
        from pywa import WhatsApp, filters
        from pywa.handlers import MessageHandler

        wa = WhatsApp(
            phone_id="1", token="x", server=None, verify_token="v", app_secret=secret.decode()
        )
        wa.add_handlers(MessageHandler(lambda client, message: None, filters.text))

        def run() -> Any:
            assert wa.webhook_update_validator(body, header) is None
            wa._processed_updates.clear()
            return wa.webhook_update_handler(body)

        return run

    return [
        ("whatsapp", "floor", rate(floor)),
        ("whatsapp", "pywa", _guard("pywa", pywa)),
        *_ours(whatsapp_kit.kit, request),
    ]


def line() -> list[Row]:
    request = line_kit.sign(line_kit.webhook(line_kit.SAMPLES[0].body))
    body, header = request.body, request.headers["x-line-signature"]
    secret = line_kit.CONFIG.channel_secret.get_secret_value().encode()

    def floor() -> Any:
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
        assert hmac.compare_digest(expected, header)
        return json.loads(body)

    def sdk() -> Callable[[], Any]:
        from linebot.v3 import WebhookParser

        parser = WebhookParser(secret.decode())
        text = body.decode()
        return lambda: parser.parse(text, header)

    return [
        ("line", "floor", rate(floor)),
        ("line", "line-bot-sdk", _guard("line-bot-sdk", sdk)),
        *_ours(line_kit.kit, request),
    ]


def wechat() -> list[Row]:
    request = wechat_kit.sign(wechat_kit.webhook(wechat_kit.SAMPLES[0].body))
    query = dict(parse_qsl(request.url.partition("?")[2]))
    config = wechat_kit.CONFIG
    token = config.token.get_secret_value()
    encoding_key = config.encoding_aes_key.get_secret_value()  # type: ignore[union-attr]
    crypto = MessageCrypto(config.app_id, aes_key(encoding_key))

    def floor() -> Any:
        encrypted = fromstring(request.body).findtext("Encrypt") or ""
        for parts, given in (
            ((token, query["timestamp"], query["nonce"]), query["signature"]),
            ((token, query["timestamp"], query["nonce"], encrypted), query["msg_signature"]),
        ):
            assert hashlib.sha1("".join(sorted(parts)).encode()).hexdigest() == given  # noqa: S324
        return fromstring(crypto.decrypt(encrypted))

    def sdk() -> Callable[[], Any]:
        from wechatpy import parse_message
        from wechatpy.crypto import WeChatCrypto
        from wechatpy.utils import check_signature

        wx = WeChatCrypto(token, encoding_key, config.app_id)
        xml = request.body.decode()

        def run() -> Any:
            check_signature(token, query["signature"], query["timestamp"], query["nonce"])
            plain = wx.decrypt_message(
                xml, query["msg_signature"], query["timestamp"], query["nonce"]
            )
            return parse_message(plain)

        return run

    return [
        ("wechat", "floor", rate(floor)),
        ("wechat", "wechatpy", _guard("wechatpy", sdk)),
        *_ours(wechat_kit.kit, request),
    ]


def twilio() -> list[Row]:
    request = twilio_kit.sign(twilio_kit.webhook(twilio_kit.SAMPLES[0].body))
    header = request.headers["x-twilio-signature"]
    token = twilio_kit.CONFIG.auth_token.get_secret_value().encode()

    def floor() -> Any:
        params = parse_qsl(request.body.decode(), keep_blank_values=True)
        data = request.url + "".join(k + v for k, v in sorted(params))
        expected = base64.b64encode(hmac.new(token, data.encode(), hashlib.sha1).digest()).decode()
        assert hmac.compare_digest(expected, header)
        return dict(params)

    def sdk() -> Callable[[], Any]:
        from twilio.request_validator import RequestValidator

        validator = RequestValidator(token.decode())

        def run() -> Any:
            params = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
            assert validator.validate(request.url, params, header)
            return params

        return run

    return [
        ("sms (twilio)", "floor", rate(floor)),
        ("sms (twilio)", "twilio RequestValidator", _guard("twilio", sdk)),
        *_ours(twilio_kit.kit, request),
    ]


def _ours(kit: Any, request: Any) -> list[Row]:
    channel = kit.build({"clock": FakeClock()}, kit.fake_api())

    async def measure() -> tuple[float, float]:
        parse = await async_rate(lambda: channel._receive(request))
        channel.dedup_ttl = channel.dedup_ttl * 0  # every delivery is new: measure the state path
        full = await async_rate(lambda: channel.receive(request))
        return parse, full

    parse, full = anyio.run(measure)
    name = {"sms-twilio": "sms (twilio)"}.get(kit.name, kit.name)
    return [(name, "chatbridge", parse), (name, "chatbridge + state", full)]


def run() -> list[Row]:
    return [*whatsapp(), *line(), *wechat(), *twilio()]
