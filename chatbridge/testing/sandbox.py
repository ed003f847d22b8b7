"""Provider sandboxes: the loopback fakes of every installed provider API served over
real HTTP, so a full conversation runs without credentials.

One ASGI app serves each fake under ``/<kit name>/`` (``/whatsapp/v21.0/...``,
``/line/v2/bot/...``), for every installed kit that declares ``api_bases``, third-party
ones included. :func:`sandbox_config` writes a config file whose channels use
the kits' test credentials and point their API base URLs at the sandbox; kits also play
the webhook sender (:func:`send_webhook`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import httpx

from chatbridge.errors import ConfigurationError
from chatbridge.plugin.fake import FakeAPI
from chatbridge.plugin.kit import ChannelKit, signing_now
from chatbridge.registry import installed_kits
from chatbridge.server.app import Receive, Scope, Send
from chatbridge.webhook import WebhookRequest

_log = logging.getLogger("chatbridge.sandbox")


def served_kits(kits: Mapping[str, ChannelKit] | None = None) -> dict[str, ChannelKit]:
    """The kits (default: every installed one) whose provider API the sandbox serves
    over HTTP: those that declare ``api_bases``."""
    kits = installed_kits() if kits is None else kits
    return {name: kit for name, kit in kits.items() if kit.api_bases}


class SandboxApp:
    """An ASGI app serving one fake provider API per path prefix.

    Providers with a service window (the channel's ``rules.window``) refuse free-form
    sends with their own error codes unless the customer wrote recently: ``POST
    /<kit>/_sandbox/customer-wrote`` with ``{"address": ...}`` records that; ``POST
    /<kit>/_sandbox/webhook-sent`` with a webhook body tells the fake what the provider
    sent (LINE's reply tokens). ``chatbridge sandbox --send`` does both.

    Providers that accept a send and fail it later (the kit's ``failed_later``) do so
    for an address marked with ``POST /<kit>/_sandbox/undeliverable`` and ``{"address":
    ..., "webhook": <URL>}``: each send to it is accepted, then reported failed by a
    status webhook, signed the provider's way, POSTed to ``webhook`` (with ``client``)
    once the send is answered. The sandbox posts to whatever http(s) URL it is given:
    it is a local test tool, to serve on loopback (``chatbridge sandbox``'s default).
    """

    def __init__(
        self, kits: Mapping[str, ChannelKit], client: httpx.AsyncClient | None = None
    ) -> None:
        self.kits = dict(kits)
        self.fakes: dict[str, FakeAPI] = {}
        self._client = client
        self._report_to: dict[str, str] = {}
        unused = httpx.AsyncClient()  # the channels are built only to read their rules
        for prefix, kit in kits.items():
            fake = self.fakes[prefix] = kit.fake_api()
            fake.prefix = f"/{prefix}"
            fake.window = kit.build({"http_client": unused}, fake).rules.window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        prefix, _, rest = scope["path"].lstrip("/").partition("/")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        fake = self.fakes.get(prefix)
        reports: list[tuple[str, str]] = []
        if fake is None:
            response = httpx.Response(
                404, text=f"no sandbox at /{prefix}; try {sorted(self.fakes)}"
            )
        elif rest == "_sandbox/customer-wrote" and scope["method"] == "POST":
            try:
                fake.customer_wrote(str(json.loads(body or b"{}")["address"]))
                response = httpx.Response(204)
            except (ValueError, TypeError, KeyError, RecursionError):
                response = httpx.Response(400, json={"message": 'expected {"address": ...}'})
        elif rest == "_sandbox/webhook-sent" and scope["method"] == "POST":
            fake.webhook_sent(body)
            response = httpx.Response(204)
        elif rest == "_sandbox/undeliverable" and scope["method"] == "POST":
            response = self._undeliverable(prefix, body)
        else:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            host = dict(headers).get("host", "127.0.0.1")
            query = scope.get("query_string", b"").decode("latin-1")
            url = f"http://{host}/{prefix}/{rest}" + (f"?{query}" if query else "")
            response = fake(httpx.Request(scope["method"], url, headers=headers, content=body))
            reports, fake.failed[:] = list(fake.failed), []  # this request's: fakes never await
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.content})
        for failed in reports:
            await self._report_failure(prefix, *failed)

    def _undeliverable(self, prefix: str, body: bytes) -> httpx.Response:
        if self.kits[prefix].failed_later is None:
            message = f"{prefix} reports no failures after accepting a send"
            return httpx.Response(400, json={"message": message})
        try:
            request = json.loads(body or b"{}")
            address, webhook = str(request["address"]), str(request["webhook"])
            if httpx.URL(webhook).scheme not in ("http", "https"):
                raise ValueError(webhook)
        except (ValueError, TypeError, KeyError, RecursionError, httpx.InvalidURL):
            expected = 'expected {"address": ..., "webhook": <an http(s) URL>}'
            return httpx.Response(400, json={"message": expected})
        self.fakes[prefix].fail_sends_to(address)
        self._report_to[prefix] = webhook
        return httpx.Response(204)

    async def _report_failure(self, prefix: str, message_id: str, address: str) -> None:
        """POST the report that the send ``message_id`` to ``address`` failed (after the
        send's own answer, as the provider does)."""
        kit, url = self.kits[prefix], self._report_to[prefix]
        assert kit.failed_later is not None
        try:
            await send_webhook(kit, url, kit.failed_later(message_id, address), self._client)
        except Exception:  # the application's trouble, not the sandbox's: logged, dropped
            _log.exception("sandbox: the failure report to %s was not delivered", url)


def sandbox_channel(base_url: str, kit: ChannelKit) -> dict[str, Any]:
    """The plain config of ``kit``'s channel, its API bases pointed at the sandbox."""
    values = kit.plain_config()
    values.update({field: f"{base_url}/{kit.name}" for field in kit.api_bases})
    return values


def sandbox_config(base_url: str, kits: Mapping[str, ChannelKit]) -> str:
    """A ``chatbridge serve`` config whose channels talk to the sandbox at ``base_url``."""
    lines = ["[store]", 'kind = "memory"', ""]
    for name, kit in kits.items():
        values = sandbox_channel(base_url, kit)
        lines += [f"[channels.{name}]", f'type = "{kit.name}"']
        lines += [f"{_key(key)} = {_toml(value, f'{name}.{key}')}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml(value: Any, where: str) -> str:
    """``value`` (JSON data) as a TOML value."""
    if value is None:
        raise ConfigurationError(f"{where} is None, which a TOML config cannot say")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # nan, inf and -inf are TOML's spelling too
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item, where) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_toml(v, f'{where}.{k}')}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    # JSON's string escapes are TOML's (control characters as \uXXXX), but for DEL.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


async def send_webhook(
    kit: ChannelKit, url: str, body: bytes, client: httpx.AsyncClient | None = None
) -> httpx.Response:
    """POST ``body`` to ``url`` signed (and encrypted) the way the provider sends it,
    now. The signature is computed for ``url`` itself (Twilio, for one, signs the URL)."""
    template = kit.webhook(body)
    request = WebhookRequest(template.method, url, template.headers, template.body)
    with signing_now():
        signed = kit.sign(request, None)
    if client is not None:
        return await client.post(signed.url, content=signed.body, headers=dict(signed.headers))
    async with httpx.AsyncClient() as own:
        return await own.post(signed.url, content=signed.body, headers=dict(signed.headers))


def smtp_sandbox(host: str, port: int) -> Any:
    """A running aiosmtpd server that prints what it receives (stop it with ``.stop()``)."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError as exc:
        raise ConfigurationError("the SMTP sandbox needs aiosmtpd: pip install aiosmtpd") from exc

    class Printer:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            size = len(envelope.content)
            print(f"  smtp: {envelope.mail_from} -> {', '.join(envelope.rcpt_tos)} ({size} bytes)")
            return "250 Message accepted"

    controller = Controller(Printer(), hostname=host, port=port)
    controller.start()
    return controller
