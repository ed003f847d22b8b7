"""A short offline tour of chatbridge: ``python -m chatbridge.demo``.

Every provider API is a loopback fake (no credentials, no network). The clock is a
FakeClock so the demo can jump past a service window.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import anyio
import httpx

from chatbridge.clock import FakeClock
from chatbridge.errors import PolicyRefusedError
from chatbridge.line import LineChannel, LineConfig
from chatbridge.line import signature as line_signature
from chatbridge.line.fake import FakeLineAPI
from chatbridge.models import Contact, Identity, Message, MessageReceived, Template
from chatbridge.store.memory import MemoryStore
from chatbridge.webhook import WebhookRequest
from chatbridge.wechat import WeChatChannel, WeChatConfig
from chatbridge.wechat.crypto import MessageCrypto, aes_key
from chatbridge.wechat.fake import FakeWeChatAPI
from chatbridge.wechat.payloads import render_xml
from chatbridge.wechat.signature import sha1_signature
from chatbridge.whatsapp import WhatsAppChannel, WhatsAppConfig, signature
from chatbridge.whatsapp.fake import FakeWhatsAppAPI

WHATSAPP = WhatsAppConfig(
    phone_number_id="106540352242922",
    access_token="demo-access-token",
    app_secret="demo-app-secret",
    verify_token="demo-verify-token",
)


def say(text: str) -> None:
    print(text, flush=True)


def whatsapp_webhook(sender: str, text: str, at: int) -> WebhookRequest:
    """A customer message as Meta would POST it, signed with the demo app secret."""
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "102290129340398",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": WHATSAPP.phone_number_id},
                                "contacts": [{"wa_id": sender, "profile": {"name": "Ana"}}],
                                "messages": [
                                    {
                                        "from": sender,
                                        "id": f"wamid.demo.{at}",
                                        "timestamp": str(at),
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()
    sig = signature.sign(body, WHATSAPP.app_secret.get_secret_value())
    headers = {signature.SIGNATURE_HEADER: sig, "content-type": "application/json"}
    return WebhookRequest("POST", "https://example.com/webhooks/whatsapp", headers, body)


async def whatsapp_tour() -> None:
    say("== WhatsApp: 24-hour customer-service window ==")
    clock = FakeClock()
    api = FakeWhatsAppAPI(WHATSAPP)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(api)) as client,
        WhatsAppChannel(WHATSAPP, store=MemoryStore(), clock=clock, http_client=client) as wa,
    ):
        customer = Contact(
            name="Ana",
            identities=[
                wa.identity("16505551234"),
                Identity(channel="email", address="ana@example.com"),
            ],
        )
        at = int(clock.now().timestamp())
        result = await wa.receive(whatsapp_webhook("16505551234", "Where is my order?", at))
        for event in result.events:
            if isinstance(event, MessageReceived):
                say(f"<- {event.contact_name} ({event.contact}): {event.message.text}")
        window = await wa.window(wa.identity("16505551234"))
        say(f"   window {window.state} until {window.expires_at}")

        reply = Message(contact=wa.identity("16505551234"), text="It ships today!")
        receipt = await wa.send(reply, customer)
        say(f"-> reply sent inside the window: {receipt.message_id}")

        clock.advance(timedelta(hours=25))
        say("   ... 25 hours later ...")
        try:
            await wa.send(reply.model_copy(update={"text": "Did it arrive?"}), customer)
        except PolicyRefusedError as refused:
            say("-> refused before any network call:")
            say("   " + refused.decision.explain().replace("\n", "\n   "))

        template = Message(
            contact=wa.identity("16505551234"),
            template=Template(name="delivery_check", language="en_US", parameters=["#4711"]),
        )
        receipt = await wa.send(template, customer)
        say(f"-> template sent outside the window: {receipt.message_id}")
        say(f"   the fake WhatsApp API accepted {len(api.sent)} messages")


WECHAT = WeChatConfig(
    app_id="wxdemo0000000001",
    app_secret="demo-app-secret",
    token="demo-token",
    encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    mode="secure",
)


def wechat_push(xml: bytes) -> WebhookRequest:
    """An encrypted push the way WeChat sends it in secure mode."""
    assert WECHAT.encoding_aes_key is not None
    crypto = MessageCrypto(WECHAT.app_id, aes_key(WECHAT.encoding_aes_key.get_secret_value()))
    encrypted = crypto.encrypt(xml)
    token, timestamp, nonce = WECHAT.token.get_secret_value(), "1767225600", "77"
    query = {
        "signature": sha1_signature(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": sha1_signature(token, timestamp, nonce, encrypted),
    }
    body = render_xml({"ToUserName": "gh_demo", "Encrypt": encrypted})
    return WebhookRequest("POST", "https://example.com/wechat?" + urlencode(query), {}, body)


async def wechat_tour() -> None:
    say("\n== WeChat: encrypted pushes, passive reply, 48-hour window ==")
    clock = FakeClock()
    api = FakeWeChatAPI(WECHAT)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(api)) as client,
        WeChatChannel(WECHAT, clock=clock, http_client=client) as wx,
    ):
        openid = "oDemoUser0000000000000000001"
        xml = render_xml(
            {
                "ToUserName": "gh_demo",
                "FromUserName": openid,
                "CreateTime": int(clock.now().timestamp()),
                "MsgType": "text",
                "Content": "我的订单到了吗? (is my order here?)",
                "MsgId": "24000000000000001",
            }
        )
        request = wechat_push(xml)
        say(f"<- encrypted push of {len(request.body)} bytes, msg_signature checked")
        result = await wx.receive(request)
        event = result.events[0]
        if isinstance(event, MessageReceived):
            say(f"   decrypted: {event.contact}: {event.message.text}")
        reply = wx.passive_reply(event, "已发货 — shipped today")
        say(f"-> passive reply, encrypted ({len(reply.body)} bytes); WeChat decrypts it to:")
        say("   " + wx.open_reply(reply.body).decode())
        await wx.send(Message(contact=wx.identity(openid), text="Tracking: SF123"))
        say(f"-> customer-service message sent (access token fetched {api.tokens_issued}x)")
        clock.advance(timedelta(hours=49))
        try:
            await wx.send(Message(contact=wx.identity(openid), text="Any news?"))
        except PolicyRefusedError as refused:
            say("-> 49 hours later: " + refused.decision.message)
        template = Template(name="ORDER_STATUS_TPL", named_parameters={"order": "#4711"})
        receipt = await wx.send(Message(contact=wx.identity(openid), template=template))
        say(f"-> template message sent outside the window: msgid {receipt.message_id}")


LINE = LineConfig(
    channel_secret="demo-channel-secret",
    channel_access_token="demo-channel-token",
    monthly_quota=2,
)


def line_webhook(event: dict[str, object]) -> WebhookRequest:
    body = json.dumps({"destination": "Udemo", "events": [event]}).encode()
    sig = line_signature.sign(body, LINE.channel_secret.get_secret_value())
    headers = {line_signature.SIGNATURE_HEADER: sig}
    return WebhookRequest("POST", "https://example.com/line", headers, body)


async def line_tour() -> None:
    say("\n== LINE: friends only, free replies, pushes against a monthly quota ==")
    clock = FakeClock()
    api = FakeLineAPI(LINE, quota=2)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(api)) as client,
        LineChannel(LINE, clock=clock, http_client=client) as line,
    ):
        user = line.identity("U0123456789abcdef0123456789abcdef")
        stranger = Message(contact=line.identity("Ustranger"), text="Hi!")
        try:
            await line.send(stranger)
        except PolicyRefusedError as refused:
            say("-> to a stranger: " + refused.decision.message)
        at_ms = int(clock.now().timestamp() * 1000)
        await line.receive(
            line_webhook(
                {
                    "type": "follow",
                    "mode": "active",
                    "timestamp": at_ms,
                    "source": {"type": "user", "userId": user.address},
                    "webhookEventId": "01DEMO0000000000000000FOLLOW",
                    "replyToken": "demo-reply-token",
                    "deliveryContext": {"isRedelivery": False},
                    "follow": {"isUnblocked": False},
                }
            )
        )
        say(f"<- {user} followed the account")
        await line.send(Message(contact=user, text="Welcome! (a free reply)"))
        say(f"-> reply sent with the reply token: {len(api.replies)} reply, 0 quota used")
        clock.advance(timedelta(minutes=5))
        for text in ("Your coupon", "Your order shipped"):
            await line.send(Message(contact=user, text=text))
        status = await line.quota_status()
        say(f"-> 2 pushes sent: quota {status.local_used}/{status.limit} used")
        try:
            await line.send(Message(contact=user, text="Flash sale!"))
        except PolicyRefusedError as refused:
            say("-> third push refused before any call:")
            say("   " + refused.decision.explain().replace("\n", "\n   "))


async def tour() -> None:
    await whatsapp_tour()
    await wechat_tour()
    await line_tour()


def main() -> None:
    anyio.run(tour)


if __name__ == "__main__":
    main()
