"""A short offline tour of chatbridge: ``python -m chatbridge.testing.demo``.

Every provider is played by its channel kit: webhooks are signed (and, for WeChat,
encrypted) the way the provider does it, and sends go to loopback fakes of the
provider APIs. The clock is a FakeClock so the tour can jump past service windows.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import anyio
import httpx

from chatbridge.channel import Channel
from chatbridge.clock import FakeClock
from chatbridge.conversations import History
from chatbridge.email import kit as email_kit
from chatbridge.email.fake import FakeMailer
from chatbridge.errors import PolicyRefusedError, ProviderError
from chatbridge.line import LineChannel
from chatbridge.line import kit as line_kit
from chatbridge.line.fake import FakeLineAPI
from chatbridge.models import (
    Contact,
    Direction,
    Identity,
    Message,
    MessageReceived,
    Template,
    TemplateUpdate,
)
from chatbridge.plugin.kit import ChannelKit
from chatbridge.policy import RemedyKind
from chatbridge.sms.twilio import kit as twilio_kit
from chatbridge.webhook import WebhookResult
from chatbridge.wechat import WeChatChannel
from chatbridge.wechat import kit as wechat_kit
from chatbridge.whatsapp import kit as whatsapp_kit
from chatbridge.whatsapp.fake import FakeWhatsAppAPI
from chatbridge.whatsapp.templates import TemplateComponent, TemplateDefinition, lint


def say(text: str) -> None:
    print(text, flush=True)


def explain(refused: PolicyRefusedError) -> str:
    return "   " + refused.decision.explain().replace("\n", "\n   ")


async def deliver(kit: ChannelKit, channel: Channel, body: bytes) -> WebhookResult:
    """``body`` as the provider would POST it: signed (and encrypted) by the kit."""
    return await channel.receive(kit.sign(kit.webhook(body), None))


async def whatsapp_tour(client: httpx.AsyncClient, clock: FakeClock) -> None:
    say("== WhatsApp: 24-hour customer-service window ==")
    wa = whatsapp_kit.kit.build({"clock": clock, "http_client": client})
    customer = Contact(
        name="Ana",
        identities=[
            wa.identity(whatsapp_kit.CUSTOMER),
            Identity(channel="email", address="ana@example.com"),
        ],
    )
    at = int(clock.now().timestamp())
    body = whatsapp_kit.inbound("text", {"body": "Where is my order?"}, at=at)
    for event in (await deliver(whatsapp_kit.kit, wa, body)).events:
        if isinstance(event, MessageReceived):
            say(f"<- {event.contact_name} ({event.contact}): {event.message.text}")
    window = await wa.window(wa.identity(whatsapp_kit.CUSTOMER))
    say(f"   window {window.state} until {window.expires_at}")

    reply = Message(contact=wa.identity(whatsapp_kit.CUSTOMER), text="It ships today!")
    say(f"-> reply sent inside the window: {(await wa.send(reply, customer)).message_id}")
    clock.advance(timedelta(hours=25))
    say("   ... 25 hours later ...")
    try:
        await wa.send(reply.model_copy(update={"text": "Did it arrive?"}), customer)
    except PolicyRefusedError as refused:
        say("-> refused before any network call:\n" + explain(refused))
        await fall_back(refused, clock)
    template = Template(name="delivery_check", language="en_US", parameters=["#4711"])
    receipt = await wa.send(Message(contact=reply.contact, template=template), customer)
    say(f"-> template sent outside the window: {receipt.message_id}")


async def whatsapp_template_tour(
    client: httpx.AsyncClient, clock: FakeClock, api: FakeWhatsAppAPI
) -> None:
    say("\n== WhatsApp: a template created, approved, then sent after the window closed ==")
    wa = whatsapp_kit.kit.build({"clock": clock, "http_client": client})
    customer = wa.identity(whatsapp_kit.CUSTOMER)
    at = int(clock.now().timestamp())
    body = whatsapp_kit.inbound("text", {"body": "Can you tell me when it ships?"}, at=at)
    await deliver(whatsapp_kit.kit, wa, body)
    await wa.typing(customer)  # marks her message read and shows "typing..."
    say(f"<- {customer}: Can you tell me when it ships?  -> read, typing indicator shown")
    await wa.send(Message(contact=customer, text="I will let you know as soon as it does."))

    draft = TemplateDefinition(
        name="Shipping Update",
        language="en_US",
        category="UTILITY",
        components=[TemplateComponent(type="BODY", text="{{1}}, order {{3}} has shipped")],
    )
    say("   the linter, before anything is submitted:")
    for issue in lint(draft):
        say(f"   - [{issue.severity}] {issue}")
    fixed = draft.model_copy(
        update={
            "name": "shipping_update",
            "components": [
                TemplateComponent(
                    type="BODY",
                    text="Hi {{1}}, your order {{2}} has shipped. Reply here with any question.",
                    example={"body_text": [["Ana", "#4711"]]},
                ),
                TemplateComponent(type="FOOTER", text="Shop Support"),
            ],
        }
    )
    say(f"   after the fixes: {len(lint(fixed))} issues")
    created = await wa.create_template(fixed)
    say(f"-> template {fixed.name!r} submitted: id {created.id}, {created.status}")

    clock.advance(timedelta(hours=30))
    say("   ... 30 hours later the order ships; the window has closed ...")
    template = Template(name="shipping_update", language="en_US", parameters=["Ana", "#4711"])
    try:
        await wa.send(Message(contact=customer, template=template))
    except ProviderError as error:
        say(f"-> still under review, WhatsApp refuses it: {error.code} {error.provider_message}")
    webhook = api.review(created.id, "APPROVED")  # Meta's reviewers, played by the sandbox
    for event in (await deliver(whatsapp_kit.kit, wa, webhook)).events:
        if isinstance(event, TemplateUpdate):
            say(f"<- template webhook: {event.name} ({event.language}) is now {event.status}")
    approved = await wa.list_templates(status=["APPROVED"], name="shipping")
    say(f"   approved templates named like 'shipping': {[t.name for t in approved.templates]}")
    receipt = await wa.send(Message(contact=customer, template=template))
    say(f"-> approved template sent after the window closed: {receipt.message_id}")


async def fall_back(refused: PolicyRefusedError, clock: FakeClock) -> None:
    """Follow the refusal's other-channel remedy: the same question, by email."""
    other = next(r for r in refused.decision.remedies if r.kind is RemedyKind.USE_OTHER_CHANNEL)
    address = other.identities[0]
    mailer = FakeMailer()
    email = email_kit.kit.build({"clock": clock}, mailer)
    await email.send(Message(contact=address, subject="Your order #4711", text="Did it arrive?"))
    say(f"-> fell back to {address}: {mailer.sent[-1]['Subject']!r} sent")


async def wechat_tour(client: httpx.AsyncClient, clock: FakeClock) -> None:
    say("\n== WeChat: encrypted pushes, passive reply, 48-hour window ==")
    wx = wechat_kit.kit.build({"clock": clock, "http_client": client})
    openid = wechat_kit.CUSTOMER
    at = int(clock.now().timestamp())
    push = wechat_kit.push("text", at=at, Content="我的订单到了吗? (is my order here?)", MsgId="9")
    request = wechat_kit.sign(wechat_kit.webhook(push))
    say(f"<- encrypted push of {len(request.body)} bytes, msg_signature checked")
    event = (await wx.receive(request)).events[0]
    if isinstance(event, MessageReceived):
        say(f"   decrypted: {event.contact}: {event.message.text}")
    reply = wx.passive_reply(event, "已发货 — shipped today")
    say(f"-> passive reply, encrypted ({len(reply.body)} bytes); WeChat decrypts it to:")
    say("   " + wx.open_reply(reply.body).decode())
    await wx.send(Message(contact=wx.identity(openid), text="Tracking: SF123"))
    say("-> customer-service message sent")
    clock.advance(timedelta(hours=49))
    try:
        await wx.send(Message(contact=wx.identity(openid), text="Any news?"))
    except PolicyRefusedError as refused:
        say("-> 49 hours later: " + refused.decision.message)
    template = Template(name="ORDER_STATUS_TPL", named_parameters={"order": "#4711"})
    receipt = await wx.send(Message(contact=wx.identity(openid), template=template))
    say(f"-> template message sent outside the window: msgid {receipt.message_id}")
    assert isinstance(wx, WeChatChannel)
    async with History.sqlite(clock=clock) as history:  # customer tags onto WeChat's
        history.mirror_tags(wx.tag_mirror({"vip": "VIP 客户"}))
        mail = Identity(channel="email", address="li@example.com")
        customer = await history.link(wx.identity(openid), mail)
        await history.tag(customer.id, "vip")
        await history.sync_tags()
        names = {tag.id: tag.name for tag in await wx.tags.get_all()}
        held = [names[tag] for tag in await wx.tags.of_user(openid)]
        say(f"-> history tag 'vip' mirrored: the follower's WeChat tags are now {held}")


async def line_tour(client: httpx.AsyncClient, clock: FakeClock, api: FakeLineAPI) -> None:
    say("\n== LINE: friends only, free replies, pushes against a monthly quota ==")
    config = line_kit.CONFIG.model_copy(update={"monthly_quota": 2})
    line = LineChannel(config, clock=clock, http_client=client)
    try:
        await line.send(Message(contact=line.identity("Ustranger"), text="Hi!"))
    except PolicyRefusedError as refused:
        say("-> to a stranger: " + refused.decision.message)
    user = line.identity(line_kit.CUSTOMER)
    at_ms = int(clock.now().timestamp() * 1000)
    follow = line_kit.line_event("follow", "01DEMOFOLLOW", at_ms=at_ms, follow={})
    await deliver(line_kit.kit, line, line_kit.webhook_body(follow))
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
        say("-> third push refused before any call:\n" + explain(refused))


async def email_tour(clock: FakeClock) -> None:
    say("\n== Email: a threaded conversation ==")
    mailer = FakeMailer()
    email = email_kit.kit.build({"clock": clock}, mailer)
    first = await deliver(email_kit.kit, email, email_kit.raw_email("Where is my order?"))
    inbound = first.events[0]
    assert isinstance(inbound, MessageReceived)
    say(f"<- {inbound.contact}: {inbound.message.subject!r} (thread {inbound.message.thread})")
    receipt = await email.send(email.reply(inbound.message, "It ships today."))
    sent = mailer.sent[-1]
    say(f"-> reply {sent['Subject']!r} with In-Reply-To {sent['In-Reply-To']}")
    answer = email_kit.raw_email(
        "Great, thanks!\n\nOn Thu, Shop Support wrote:\n> It ships today.",
        subject="Re: Order #4711",
        message_id="answer@customer.example",
        In_Reply_To=f"<{receipt.message_id}>",
        References=f"<{inbound.message.thread}> <{receipt.message_id}>",
    )
    event = (await email.receive_raw(answer)).events[0]
    if isinstance(event, MessageReceived):
        same = event.message.thread == inbound.message.thread
        say(f"<- answer {event.message.stripped_text!r} lands in the same thread: {same}")


async def sms_tour(client: httpx.AsyncClient, clock: FakeClock) -> None:
    say("\n== SMS (Twilio): segments and STOP/START ==")
    sms = twilio_kit.kit.build({"clock": clock, "http_client": client})
    customer = sms.identity(twilio_kit.CUSTOMER)
    text = "Your order #4711 ships today — track it at https://shop.example/t/4711 ✓"
    estimate = sms.estimate(Message(contact=customer, text=text))
    say(f"   {len(text)} characters -> {estimate.segments} {estimate.encoding} segment(s)")
    await sms.send(Message(contact=customer, text=text))
    say("-> sent")
    await deliver(twilio_kit.kit, sms, twilio_kit.incoming("STOP", sid="SMdemo1"))
    say(f"<- {customer}: STOP")
    try:
        await sms.send(Message(contact=customer, text="Flash sale!"))
    except PolicyRefusedError as refused:
        say("-> refused: " + refused.decision.message)
    await deliver(twilio_kit.kit, sms, twilio_kit.incoming("START", sid="SMdemo2"))
    await sms.send(Message(contact=customer, text="Welcome back!"))
    say(f"<- {customer}: START  -> sending works again")


async def history_tour(client: httpx.AsyncClient, clock: FakeClock) -> None:
    say("\n== One history: WhatsApp, then email after the window closed, one timeline ==")
    history = History.sqlite(clock=clock)  # in memory; History.postgres(url) for many hosts
    wa = whatsapp_kit.kit.build({"clock": clock, "http_client": client, "history": history})
    email = email_kit.kit.build({"clock": clock, "history": history}, FakeMailer())
    on_whatsapp, by_email = wa.identity(whatsapp_kit.CUSTOMER), email.identity(email_kit.CUSTOMER)
    at = int(clock.now().timestamp())
    body = whatsapp_kit.inbound("text", {"body": "My parcel arrived damaged"}, at=at)
    await deliver(whatsapp_kit.kit, wa, body)
    customer = await history.link(on_whatsapp, by_email)  # she gave us her email address
    say(f"<- {on_whatsapp} wrote; linked to {by_email}: one customer, {customer.id}")
    clock.advance(timedelta(hours=26))
    try:
        await wa.send(Message(contact=on_whatsapp, text="A new one is on its way"))
    except PolicyRefusedError as refused:
        say(f"-> 26 hours later WhatsApp refuses ({refused.decision.reason}): answer by email")
    ours = Message(contact=by_email, subject="Your parcel", text="A new one is on its way.")
    receipt = await email.send(ours)
    clock.advance(timedelta(hours=2))
    reply = email_kit.raw_email(
        "Thank you!",
        subject="Re: Your parcel",
        message_id="thanks@customer.example",
        date=format_datetime(clock.now()),
        In_Reply_To=f"<{receipt.message_id}>",
        References=f"<{receipt.message_id}>",
    )
    await email.receive_raw(reply)
    say(f"   the timeline of {customer.name or customer.id}, both channels:")
    for entry in (await history.timeline(on_whatsapp)).entries:
        arrow = "<-" if entry.direction is Direction.INBOUND else "->"
        text = (entry.text or "").replace("\n", " / ")
        outcome = f"  [{entry.outcome}: {entry.reason}]" if entry.reason else ""
        say(f"   {entry.at:%a %H:%M} {entry.channel:<8} {arrow} {text}{outcome}")
    conversations = await history.conversations(customer=on_whatsapp)
    first = conversations[0]
    waited = (first.first_response_at or first.opened_at) - first.opened_at
    say(f"   {len(conversations)} conversation, {first.state}, first reply after {waited}")
    await history.aclose()


async def tour() -> None:
    """Run every channel's part of the tour against its loopback fake, each on its own
    clock."""
    line_api = FakeLineAPI(line_kit.CONFIG, quota=2)
    whatsapp_api = FakeWhatsAppAPI(whatsapp_kit.CONFIG)
    fakes = [
        whatsapp_api,
        wechat_kit.kit.fake_api(),
        line_api,
        twilio_kit.kit.fake_api(),
    ]
    routes = {host: fake for fake in fakes for host in fake.hosts}

    def route(request: httpx.Request) -> httpx.Response:
        return routes[request.url.host](request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(route)) as client:
        await whatsapp_tour(client, FakeClock())
        await whatsapp_template_tour(client, FakeClock(), whatsapp_api)
        await wechat_tour(client, FakeClock())
        await line_tour(client, FakeClock(), line_api)
        await email_tour(FakeClock())
        await sms_tour(client, FakeClock())
        await history_tour(client, FakeClock())


def main() -> None:
    anyio.run(tour)


if __name__ == "__main__":
    main()
