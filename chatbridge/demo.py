"""A short offline tour of chatbridge: ``python -m chatbridge.demo``.

Every provider API is a loopback fake (no credentials, no network). The clock is a
FakeClock so the demo can jump past a service window.
"""

from __future__ import annotations

import json
from datetime import timedelta

import anyio
import httpx

from chatbridge.clock import FakeClock
from chatbridge.errors import PolicyRefusedError
from chatbridge.models import Contact, Identity, Message, MessageReceived, Template
from chatbridge.store.memory import MemoryStore
from chatbridge.webhook import WebhookRequest
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


def main() -> None:
    anyio.run(whatsapp_tour)


if __name__ == "__main__":
    main()
