"""WhatsApp account features: template management and its linter, template webhooks,
the typing indicator, the business profile and media deletion, against the loopback
fake (and, for the fake's strictness, with pywa against a running sandbox)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pywa
from pywa.types import templates as pt

from chatbridge import FakeClock, MessageInvalidError
from chatbridge.errors import ConfigurationError, ProviderError
from chatbridge.http import RetryPolicy
from chatbridge.models import Media, MediaKind, Message, Template, TemplateUpdate, UnknownEvent
from chatbridge.whatsapp import WhatsAppChannel, kit, profile, templates
from chatbridge.whatsapp.fake import FakeWhatsAppAPI
from chatbridge.whatsapp.profile import BusinessProfile
from chatbridge.whatsapp.templates import (
    TemplateButton,
    TemplateComponent,
    TemplateDefinition,
    check,
    lint,
)
from tests.loopback import cli_server

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER


@dataclass
class Setup:
    channel: WhatsAppChannel
    api: FakeWhatsAppAPI
    clock: FakeClock

    async def customer_writes(self, text: str = "hello") -> str:
        at = int(self.clock.now().timestamp())
        body = kit.inbound("text", {"body": text}, at=at)
        await self.channel.receive(kit.sign(kit.webhook(body)))
        return f"wamid.text.{at}.{CUSTOMER}"

    def last_body(self) -> dict[str, Any]:
        return dict(json.loads(self.api.requests[-1].content))


@pytest.fixture
async def wa() -> AsyncIterator[Setup]:
    api, clock = FakeWhatsAppAPI(kit.CONFIG), FakeClock()
    client = httpx.AsyncClient(transport=httpx.MockTransport(api))
    channel = WhatsAppChannel(
        kit.CONFIG, clock=clock, http_client=client, retry=RetryPolicy(backoff=0)
    )
    yield Setup(channel, api, clock)
    await client.aclose()


def body(text: str, example: dict[str, Any] | None = None) -> TemplateComponent:
    return TemplateComponent(type="BODY", text=text, example=example)


def definition(*components: TemplateComponent, **fields: Any) -> TemplateDefinition:
    values: dict[str, Any] = {"name": "order_update", "language": "en_US", "category": "UTILITY"}
    values.update(fields)
    return TemplateDefinition(components=list(components), **values)


GOOD = definition(
    TemplateComponent(
        type="HEADER", format="TEXT", text="Order {{1}}", example={"header_text": ["#42"]}
    ),
    body("Hi {{1}}, order {{2}} ships today.", {"body_text": [["Ana", "#42"]]}),
    TemplateComponent(type="FOOTER", text="Shop Support"),
    TemplateComponent(
        type="BUTTONS",
        buttons=[
            TemplateButton(type="QUICK_REPLY", text="Thanks"),
            TemplateButton(
                type="URL", text="Track", url="https://shop.example/t/{{1}}", example=["42"]
            ),
        ],
    ),
)


# -- the linter -----------------------------------------------------------------------


def test_a_sound_template_has_no_issues() -> None:
    assert lint(GOOD) == []
    check(GOOD)


def buttons(*given: TemplateButton) -> TemplateComponent:
    return TemplateComponent(type="BUTTONS", buttons=list(given))


def url_button(url: str, example: list[str] | None = None) -> TemplateButton:
    return TemplateButton(type="URL", text="Go", url=url, example=example)


#: Templates Meta refuses, and what the linter says about each.
REFUSED = [
    (definition(body("Hi"), name="Order Update"), "lowercase letters, digits"),
    (definition(body("Hi"), name="x" * 513), "1 to 512"),
    (definition(body("Hi"), category="PROMO"), "must be one of AUTHENTICATION"),
    (definition(TemplateComponent(type="FOOTER", text="f")), "a BODY component is required"),
    (definition(body("Hi"), body("again")), "at most one BODY"),
    (definition(body("x" * 1025)), "has 1025 characters; at most 1024"),
    (
        definition(body("Hi {{1}} and {{3}}.", {"body_text": [["a", "b"]]})),
        "without gaps; got {{1}}, {{3}}",
    ),
    (definition(body("Hi {{1}}, welcome.")), "needs an example value for each of its 1"),
    (definition(body("Hi {{1}, welcome.")), "unmatched {{ or }}"),
    (definition(body("Hi {{#1}}, welcome.", {"body_text": [["a"]]})), "must be digits"),
    (definition(body("Hi {{ 1 }}, welcome.", {"body_text": [["a"]]})), "must be digits"),
    (definition(body("Hi {{1}}", {"body_text": [["a"]]})), "start or end with a placeholder"),
    (
        definition(
            body(
                "Hi {{First_Name}}, welcome.",
                {"body_text_named_params": [{"param_name": "First_Name", "example": "A"}]},
            ),
            parameter_format="named",
        ),
        "lowercase letters and _",
    ),
    (
        definition(body("Hi {{name}}, welcome."), parameter_format="NAMED"),
        "needs an example for name",
    ),
    (
        definition(
            body(
                "Hi {{name}}, welcome.",
                {"body_text_named_params": [{"param_name": "name", "example": "Ana"}]},
            )
        ),
        "is POSITIONAL but the placeholders are NAMED",
    ),
    (
        definition(
            TemplateComponent(
                type="HEADER",
                format="TEXT",
                text="{{1}} {{2}} sale",
                example={"header_text": ["a", "b"]},
            ),
            body("Hi"),
        ),
        "allows 1 placeholder(s); has 2",
    ),
    (
        definition(TemplateComponent(type="HEADER", format="IMAGE"), body("Hi")),
        "needs an uploaded sample",
    ),
    (
        definition(body("Hi"), TemplateComponent(type="FOOTER", text="by {{1}}")),
        "allows 0 placeholder(s)",
    ),
    (
        definition(
            body("Hi"),
            TemplateComponent(
                type="BUTTONS",
                buttons=[TemplateButton(type="QUICK_REPLY", text=f"q{i}") for i in range(11)],
            ),
        ),
        "allows 1 to 10; got 11",
    ),
    (
        definition(
            body("Hi"),
            TemplateComponent(
                type="BUTTONS",
                buttons=[
                    TemplateButton(type="URL", text=f"u{i}", url="https://a.example")
                    for i in range(3)
                ],
            ),
        ),
        "at most 2 URL",
    ),
    (
        definition(
            body("Hi"),
            TemplateComponent(
                type="BUTTONS",
                buttons=[
                    TemplateButton(type="QUICK_REPLY", text="a"),
                    TemplateButton(type="URL", text="b", url="https://a.example"),
                    TemplateButton(type="QUICK_REPLY", text="c"),
                ],
            ),
        ),
        "not interleaved",
    ),
    (
        definition(
            body("Hi"),
            TemplateComponent(
                type="BUTTONS", buttons=[TemplateButton(type="QUICK_REPLY", text="x" * 26)]
            ),
        ),
        "has 26 characters; at most 25",
    ),
    (
        definition(
            body("Hi"),
            TemplateComponent(
                type="BUTTONS",
                buttons=[TemplateButton(type="URL", text="t", url="https://a.example/{{1}}")],
            ),
        ),
        "a URL with a placeholder needs one",
    ),
    (
        definition(
            body("Hi"),
            TemplateComponent(
                type="BUTTONS",
                buttons=[TemplateButton(type="PHONE_NUMBER", text="t", phone_number="1" * 21)],
            ),
        ),
        "has 21 characters; at most 20",
    ),
    (
        definition(
            TemplateComponent(
                type="HEADER",
                format="TEXT",
                text="Order {{1}} / {{1}}",
                example={"header_text": ["#42"]},
            ),
            body("Hi there {{1}}.", {"body_text": [["a"]]}),
        ),
        "allows 1 placeholder(s); has 2",
    ),
    (definition(body("Hi {{01}} bye", {"body_text": [["a"]]})), "without a leading 0"),
    (definition(body("Hi {{0}} bye", {"body_text": [["a"]]})), "without a leading 0"),
    (
        definition(
            body(
                "Hi {{first_name}} bye",
                {"body_text_named_params": [{"param_name": "first_name"}]},
            ),
            parameter_format="NAMED",
        ),
        "needs an example for first_name",
    ),
    (
        definition(body("Hi"), buttons(TemplateButton(type="COPY_CODE", example=""))),
        "needs the example code",
    ),
    (
        definition(body("Hi"), buttons(TemplateButton(type="COPY_CODE", example=["CODE"]))),
        "needs the example code",
    ),
    (
        definition(body("Hi"), buttons(TemplateButton(type="QUICK_REPLY", text="Hi {{First}}"))),
        "must be digits",
    ),
    (
        definition(body("Hi"), buttons(TemplateButton(type="QUICK_REPLY", text="Hi {{first}}"))),
        "allows 0 placeholder(s)",
    ),
    (
        definition(
            body("Hi"),
            buttons(TemplateButton(type="PHONE_NUMBER", text="Call", phone_number="{{1}}")),
        ),
        "allows 0 placeholder(s)",
    ),
    (
        definition(body("Hi"), buttons(url_button("https://x.example/{{ First }}", ["a"]))),
        "{{1}}, at its end only",
    ),
    (
        definition(body("Hi"), buttons(url_button("https://x.example/{{2}}", ["a"]))),
        "{{1}}, at its end only",
    ),
    (
        definition(body("Hi"), buttons(url_button("https://x.example/{{1}}/a", ["a"]))),
        "{{1}}, at its end only",
    ),
    (
        definition(body("Hi"), buttons(url_button("https://x.example/{{1}}{{1}}", ["a"]))),
        "{{1}}, at its end only",
    ),
    (
        definition(body("Hi"), buttons(url_button("https://x.example/{{1", ["a"]))),
        "{{1}}, at its end only",
    ),
]

#: Templates Meta takes (the linter finds no error in them).
ACCEPTED = [
    GOOD,
    definition(
        TemplateComponent(
            type="HEADER",
            format="TEXT",
            text="Order {{order_id}}",
            example={"header_text_named_params": [{"param_name": "order_id", "example": "42"}]},
        ),
        body(
            "Hi {{first_name}}, it ships.",
            {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]},
        ),
        parameter_format="NAMED",
    ),
    definition(body("Hi {{1}}, yes {{1}} again.", {"body_text": [["Ana"]]})),
    definition(
        TemplateComponent(type="HEADER", format="IMAGE", example={"header_handle": ["4::aW"]}),
        body("Hi"),
        buttons(
            url_button("https://shop.example/sale"),
            TemplateButton(type="PHONE_NUMBER", text="Call", phone_number="15550051310"),
        ),
    ),
    definition(TemplateComponent(type="HEADER", format="LOCATION"), body("Your shop")),
    definition(
        body("Your code"),
        buttons(TemplateButton(type="COPY_CODE", example="SAVE20")),
        category="MARKETING",
    ),
    definition(
        TemplateComponent.model_validate({"type": "BODY", "add_security_recommendation": True}),
        buttons(TemplateButton(type="OTP", otp_type="COPY_CODE")),
        category="AUTHENTICATION",
    ),
]


@pytest.mark.parametrize(("template", "expected"), REFUSED)
def test_the_linter_catches_what_meta_refuses(template: TemplateDefinition, expected: str) -> None:
    issues = [str(issue) for issue in lint(template) if issue.severity == "error"]
    assert any(expected in issue for issue in issues), issues
    with pytest.raises(MessageInvalidError, match="WhatsApp would refuse template"):
        check(template)


def test_review_guidelines_are_warnings() -> None:
    template = definition(body("Hi {{1}} {{2}}, welcome.", {"body_text": [["a", "b"]]}))
    issues = lint(template)
    assert {issue.severity for issue in issues} == {"warning"}
    assert any("side by side" in issue.message for issue in issues)
    check(template)  # warnings do not stop a submission


def test_named_placeholders_follow_the_declared_format_in_any_case() -> None:
    named = definition(
        body(
            "Hi {{first_name}}, welcome.",
            {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"}]},
        ),
        parameter_format="named",
    )
    assert named.parameter_format == "NAMED" and lint(named) == []


def test_authentication_bodies_have_no_text() -> None:
    auth = definition(
        TemplateComponent.model_validate({"type": "BODY", "add_security_recommendation": True}),
        TemplateComponent(
            type="BUTTONS", buttons=[TemplateButton(type="OTP", otp_type="COPY_CODE")]
        ),
        category="AUTHENTICATION",
    )
    assert lint(auth) == []


# -- template management --------------------------------------------------------------


async def test_templates_are_created_listed_read_and_deleted(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    assert (created.status, created.category) == ("PENDING", "UTILITY")
    sent = wa.last_body()
    assert sent["name"] == "order_update" and sent["components"][1]["type"] == "BODY"
    template = await wa.channel.get_template(created.id)
    assert (template.name, template.status, template.language) == (
        "order_update",
        "PENDING",
        "en_US",
    )
    page = await wa.channel.list_templates(status=["PENDING"], category=["UTILITY"])
    assert [t.id for t in page.templates] == [created.id] and page.total_count == 1
    assert (await wa.channel.list_templates(status=["APPROVED"])).templates == []
    await wa.channel.delete_template("order_update", created.id)
    assert (await wa.channel.list_templates()).templates == []
    with pytest.raises(ProviderError) as refused:
        await wa.channel.delete_template("order_update")
    assert refused.value.code == 100


async def test_templates_are_listed_page_by_page(wa: Setup) -> None:
    for index in range(5):
        await wa.channel.create_template(GOOD.model_copy(update={"name": f"update_{index}"}))
    seen: list[str] = []
    page = await wa.channel.list_templates(limit=2)
    while True:
        seen += [t.name for t in page.templates]
        if page.after is None:
            break
        page = await wa.channel.list_templates(limit=2, after=page.after)
    assert seen == [f"update_{index}" for index in range(5)]
    by_name = await wa.channel.list_templates(name="update_3")
    assert [t.name for t in by_name.templates] == ["update_3"]


async def test_the_linter_refuses_before_any_request(wa: Setup) -> None:
    with pytest.raises(MessageInvalidError, match="without gaps"):
        await wa.channel.create_template(definition(body("A {{2}} b", {"body_text": [["x"]]})))
    assert wa.api.requests == []


def graph(wa: Setup, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """Call the fake directly, past the client's checks; the Graph error (or answer)."""
    auth = {"Authorization": f"Bearer {kit.CONFIG.access_token.get_secret_value()}"}
    request = wa.channel.http.build_request(
        method, f"https://graph.facebook.com/v21.0/{path}", json=body, headers=auth
    )
    answer = dict(wa.api(request).json())
    return dict(answer.get("error", answer))


@pytest.mark.parametrize(
    ("components", "subcode"),
    [
        ([{"type": "BODY", "text": "x" * 1025}], 2388040),
        ([{"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["a"]]}}], 2388299),
        ([{"type": "BODY", "text": "Hi"}, {"type": "FOOTER", "text": "by {{1}}"}], 2388073),
        ([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi"}], 2388047),
        ([{"type": "BODY", "text": "Hi {{1}} and {{3}}."}], None),
    ],
)
async def test_the_fake_refuses_what_meta_refuses_on_creation(
    wa: Setup, components: list[dict[str, Any]], subcode: int | None
) -> None:
    bad = {**GOOD.body(), "components": components}
    error = graph(wa, "POST", f"{kit.WABA_ID}/message_templates", bad)
    assert (error["code"], error.get("error_subcode")) == (100, subcode)


@pytest.mark.parametrize(
    ("template", "meta_refuses"),
    [pytest.param(t, True, id=f"refused-{i}") for i, (t, _) in enumerate(REFUSED)]
    + [pytest.param(t, False, id=f"accepted-{i}") for i, t in enumerate(ACCEPTED)],
)
async def test_the_linter_and_the_fake_agree(
    wa: Setup, template: TemplateDefinition, meta_refuses: bool
) -> None:
    """The linter (the client's reading of Meta's rules) and the sandbox (its own
    reading, fake_rules.py) refuse the same templates: the fake sees each one posted
    past the linter."""
    linter = [str(issue) for issue in lint(template) if issue.severity == "error"]
    answer = graph(wa, "POST", f"{kit.WABA_ID}/message_templates", template.body())
    fake = answer.get("error_data", {}).get("details") or answer.get("message")
    assert (bool(linter), "code" in answer) == (meta_refuses, meta_refuses), (linter, fake)


async def test_the_fake_refuses_a_duplicate(wa: Setup) -> None:
    await wa.channel.create_template(GOOD)
    with pytest.raises(ProviderError) as duplicate:
        await wa.channel.create_template(GOOD)
    assert duplicate.value.code == 100 and "already exists" in str(duplicate.value)


async def test_the_fake_catches_a_wrong_client_limit(
    wa: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake states Meta's limits itself: a client constant gone wrong is refused by
    the sandbox instead of agreed with."""
    monkeypatch.setattr(templates, "BODY_MAX", 2000)
    long_body = definition(body("x" * 1500))
    assert lint(long_body) == []
    with pytest.raises(ProviderError) as refused:
        await wa.channel.create_template(long_body)
    assert refused.value.code == 100 and "1024" in str(refused.value)
    monkeypatch.setattr(profile, "ABOUT_MAX", 300)
    with pytest.raises(ProviderError) as refused:
        await wa.channel.update_business_profile(BusinessProfile(about="x" * 140))
    assert refused.value.code == 100 and "about" in str(refused.value)


async def test_templates_need_the_business_account_id(wa: Setup) -> None:
    config = kit.CONFIG.model_copy(update={"business_account_id": None})
    channel = WhatsAppChannel(config, http_client=wa.channel.http)
    with pytest.raises(ConfigurationError, match="business_account_id"):
        await channel.list_templates()


async def test_a_template_is_sent_only_once_approved(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    customer = wa.channel.identity(CUSTOMER)
    message = Message(
        contact=customer,
        template=Template(name="order_update", language="en_US", parameters=["Ana", "#42"]),
    )
    with pytest.raises(ProviderError) as pending:
        await wa.channel.send(message)
    assert pending.value.code == 132001
    webhook = wa.api.review(created.id, "APPROVED")
    events = (await wa.channel.receive(kit.sign(kit.webhook(webhook)))).events
    assert isinstance(events[0], TemplateUpdate) and events[0].status == "APPROVED"
    assert events[0].template_id == created.id and events[0].contact is None
    assert (await wa.channel.send(message)).message_id
    short = message.model_copy(
        update={"template": Template(name="order_update", language="en_US", parameters=["Ana"])}
    )
    with pytest.raises(ProviderError) as mismatch:
        await wa.channel.send(short)
    assert mismatch.value.code == 132000
    other_language = Template(name="order_update", language="pt_BR", parameters=["a", "b"])
    with pytest.raises(ProviderError) as missing:
        await wa.channel.send(message.model_copy(update={"template": other_language}))
    assert missing.value.code == 132001
    wa.api.review(created.id, "PAUSED")
    with pytest.raises(ProviderError) as paused:
        await wa.channel.send(message)
    assert paused.value.code == 132015


async def test_the_sandbox_control_reviews_over_http(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    url = f"https://graph.facebook.com/_sandbox/templates/{created.id}"
    response = await wa.channel.http.post(url, json={"status": "REJECTED", "reason": "SCAM"})
    notification = json.dumps(response.json()["webhook"]).encode()
    event = (await wa.channel.receive(kit.sign(kit.webhook(notification)))).events[0]
    assert isinstance(event, TemplateUpdate)
    assert (event.status, event.reason) == ("REJECTED", "SCAM")
    assert (await wa.channel.get_template(created.id)).rejected_reason == "SCAM"
    wrong = await wa.channel.http.post(url, json={"status": "MAYBE"})
    assert wrong.status_code == 400


async def test_a_template_is_edited_within_metas_limits(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    new_body = body("Hello {{1}}, parcel {{2}} is on its way.", {"body_text": [["Ana", "#42"]]})
    with pytest.raises(ProviderError, match="APPROVED, REJECTED or PAUSED"):
        await wa.channel.edit_template(created.id, components=[new_body])  # still PENDING
    wa.api.review(created.id, "APPROVED")
    with pytest.raises(ProviderError, match="category of an approved"):
        await wa.channel.edit_template(created.id, category="MARKETING")
    await wa.channel.edit_template(created.id, components=[new_body])
    assert wa.last_body() == {"components": [new_body.model_dump(exclude_none=True)]}
    edited = await wa.channel.get_template(created.id)
    assert edited.status == "PENDING" and edited.components[0].text == new_body.text
    wa.api.review(created.id, "APPROVED")
    with pytest.raises(ProviderError, match="once in 24 hours"):
        await wa.channel.edit_template(created.id, message_send_ttl_seconds=3600)
    wa.api.review(created.id, "REJECTED")
    await wa.channel.edit_template(created.id, category="MARKETING")
    assert (await wa.channel.get_template(created.id)).category == "MARKETING"


async def test_an_edit_needs_something_to_edit_and_one_of_metas_categories(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    wa.api.review(created.id, "APPROVED")
    requests = len(wa.api.requests)
    with pytest.raises(MessageInvalidError, match="nothing to edit"):
        await wa.channel.edit_template(created.id)
    with pytest.raises(MessageInvalidError, match="category: must be one of"):
        await wa.channel.edit_template(created.id, category="PROMO")
    assert len(wa.api.requests) == requests  # refused before any request
    assert graph(wa, "POST", created.id, {})["code"] == 100
    wa.api.review(created.id, "REJECTED")
    assert "category" in str(graph(wa, "POST", created.id, {"category": "PROMO"}))
    refused = graph(wa, "POST", created.id, {"parameter_format": "NAMED"})
    assert "not parameter_format" in refused["error_data"]["details"]
    assert (await wa.channel.get_template(created.id)).status == "REJECTED"


async def test_a_new_category_is_linted_against_the_current_components(wa: Setup) -> None:
    """An authentication body has no text of its own; under MARKETING it needs one."""
    [auth] = [t for t in ACCEPTED if t.category == "AUTHENTICATION"]
    created = await wa.channel.create_template(auth)
    wa.api.review(created.id, "REJECTED")
    requests = len(wa.api.requests)
    with pytest.raises(MessageInvalidError, match=r"components\[0\]\.text: is required"):
        await wa.channel.edit_template(created.id, category="MARKETING")
    assert [r.method for r in wa.api.requests[requests:]] == ["GET"]  # the template, no edit
    error = graph(wa, "POST", created.id, {"category": "MARKETING"})
    assert error["code"] == 100 and "BODY text is required" in error["error_data"]["details"]
    await wa.channel.edit_template(created.id, category="AUTHENTICATION")  # unchanged: no lint


async def test_an_edit_is_linted_against_the_template(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    wa.api.review(created.id, "REJECTED")
    requests = len(wa.api.requests)
    with pytest.raises(MessageInvalidError, match="without gaps"):
        await wa.channel.edit_template(created.id, components=[body("A {{2}} b", {})])
    assert [r.method for r in wa.api.requests[requests:]] == ["GET"]  # the template, no edit
    error = graph(wa, "POST", created.id, {"components": [{"type": "FOOTER", "text": "f"}]})
    assert error["code"] == 100 and "BODY" in error["message"] + str(error.get("error_data"))
    assert graph(wa, "POST", "999", {"category": "UTILITY"})["error_subcode"] == 33


async def test_a_paused_template_is_unpaused(wa: Setup) -> None:
    created = await wa.channel.create_template(GOOD)
    wa.api.review(created.id, "PAUSED")
    await wa.channel.unpause_template(created.id)
    assert (await wa.channel.get_template(created.id)).status == "APPROVED"
    with pytest.raises(ProviderError, match="not PAUSED") as again:
        await wa.channel.unpause_template(created.id)
    assert again.value.provider_message == "Template is APPROVED, not PAUSED"


# -- template webhooks ----------------------------------------------------------------


async def test_template_webhooks_become_typed_events(wa: Setup) -> None:
    for body_, field, value in [
        (kit.template_status("DISABLED", "NONE"), "status", "DISABLED"),
        (kit.template_quality("RED", "YELLOW"), "quality", "RED"),
        (kit.template_category("MARKETING", "UTILITY"), "category", "MARKETING"),
    ]:
        result = await wa.channel.receive(kit.sign(kit.webhook(body_)))
        event = result.events[0]
        assert isinstance(event, TemplateUpdate) and getattr(event, field) == value
        assert event.raw["id"] == kit.WABA_ID and event.raw["time"]
        again = await wa.channel.receive(kit.sign(kit.webhook(body_)))
        assert again.duplicates and not again.events


async def test_a_malformed_template_change_is_kept(wa: Setup) -> None:
    notification = kit.notification({"event": "APPROVED"}, field="message_template_status_update")
    event = (await wa.channel.receive(kit.sign(kit.webhook(notification)))).events[0]
    assert isinstance(event, UnknownEvent) and "message_template_id" in event.reason


# -- typing indicator -----------------------------------------------------------------


async def test_typing_marks_the_last_message_read(wa: Setup) -> None:
    customer = wa.channel.identity(CUSTOMER)
    with pytest.raises(MessageInvalidError, match="message_id"):
        await wa.channel.typing(customer)
    first = await wa.customer_writes("first")
    wa.clock.advance(timedelta(seconds=5))
    last = await wa.customer_writes("second")
    assert last != first
    await wa.channel.typing(customer)
    assert wa.last_body() == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": last,
        "typing_indicator": {"type": "text"},
    }
    await wa.channel.typing(customer, message_id="wamid.GIVEN")
    assert wa.last_body()["message_id"] == "wamid.GIVEN"


async def test_the_fake_refuses_an_unknown_indicator(wa: Setup) -> None:
    url = f"https://graph.facebook.com/v21.0/{kit.CONFIG.phone_number_id}/messages"
    auth = {"Authorization": f"Bearer {kit.CONFIG.access_token.get_secret_value()}"}
    sent = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.X",
        "typing_indicator": {"type": "audio"},
    }
    response = await wa.channel.http.post(url, json=sent, headers=auth)
    assert response.status_code == 400 and response.json()["error"]["code"] == 100


# -- business profile and media -------------------------------------------------------


async def test_the_business_profile_is_read_and_updated(wa: Setup) -> None:
    update = BusinessProfile(
        about="Plants, delivered",
        email="help@shop.example",
        vertical="RETAIL",
        websites=["https://shop.example"],
    )
    await wa.channel.update_business_profile(update)
    assert wa.last_body()["messaging_product"] == "whatsapp"
    await wa.channel.update_business_profile(BusinessProfile(websites=["HTTPS://Shop.example"]))
    await wa.channel.update_business_profile(update)  # the scheme is not case-sensitive
    got = await wa.channel.business_profile()
    assert (got.about, got.vertical, got.websites) == (
        "Plants, delivered",
        "RETAIL",
        ["https://shop.example"],
    )
    requests = len(wa.api.requests)
    for bad in (
        BusinessProfile(about="x" * 140),
        BusinessProfile(websites=["a.example"]),
        BusinessProfile(vertical="SPACE"),
        BusinessProfile(websites=["https://a.example", "https://b.example", "https://c.example"]),
        BusinessProfile(websites=["ftp://a.example"]),
    ):
        with pytest.raises(MessageInvalidError, match="business profile"):
            await wa.channel.update_business_profile(bad)
    assert len(wa.api.requests) == requests


async def test_uploaded_media_can_be_deleted(wa: Setup) -> None:
    media = Media(kind=MediaKind.VIDEO, mime_type="video/mp4", data=b"\x00\x00 mp4")
    uploaded = await wa.channel.upload_media(media)
    assert uploaded.provider_id
    await wa.channel.delete_media(uploaded.provider_id)
    with pytest.raises(ProviderError):
        await wa.channel.delete_media(uploaded.provider_id)


# -- pywa against the sandbox ---------------------------------------------------------


class ToSandbox(httpx.HTTPTransport):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "graph.facebook.com":
            url = httpx.URL(self.base + request.url.raw_path.decode())
            headers = [(k, v) for k, v in request.headers.multi_items() if k != "host"]
            request = httpx.Request(request.method, url, headers=headers, content=request.read())
        return super().handle_request(request)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with cli_server("sandbox") as (url, _):
        yield f"{url}/whatsapp"


@pytest.fixture
def pywa_client(sandbox: str) -> Iterator[Any]:
    with httpx.Client(transport=ToSandbox(sandbox)) as session:
        yield pywa.WhatsApp(
            phone_id=kit.CONFIG.phone_number_id,
            token=kit.CONFIG.access_token.get_secret_value(),
            waba_id=kit.WABA_ID,
            session=session,
        )


def test_pywa_manages_templates_on_the_sandbox(pywa_client: Any, sandbox: str) -> None:
    template = pt.Template(
        name="pywa_shipping",
        language=pt.TemplateLanguage.ENGLISH_US,
        category=pt.TemplateCategory.UTILITY,
        components=[
            pt.BodyText("Hi {{1}}, order {{2}} has shipped.", "Ana", "#42"),
            pt.FooterText(text="Shop Support"),
            pt.Buttons(buttons=[pt.QuickReplyButton(text="Thanks")]),
        ],
    )
    created = pywa_client.create_template(template)
    assert created.status == pt.TemplateStatus.PENDING
    with pytest.raises(pywa.errors.WhatsAppError) as duplicate:
        pywa_client.create_template(template)
    assert duplicate.value.code == 100
    listed = pywa_client.get_templates(statuses=[pt.TemplateStatus.PENDING])
    assert [t.name for t in listed] == ["pywa_shipping"] and listed.total_count == 1
    with pytest.raises(pywa.errors.WhatsAppError) as pending:
        pywa_client.send_template(
            "+" + CUSTOMER, "pywa_shipping", pt.TemplateLanguage.ENGLISH_US, params=[]
        )
    assert pending.value.code == 132001
    review = httpx.post(f"{sandbox}/_sandbox/templates/{created.id}", json={"status": "APPROVED"})
    assert review.json()["webhook"]["entry"][0]["changes"][0]["value"]["event"] == "APPROVED"
    assert pywa_client.get_template(created.id).status == pt.TemplateStatus.APPROVED
    sent = pywa_client.send_template(
        "+" + CUSTOMER,
        "pywa_shipping",
        pt.TemplateLanguage.ENGLISH_US,
        params=[pt.BodyText.params("Ana", "#42")],
    )
    assert sent.id.startswith("wamid.")
    assert pywa_client.delete_template("pywa_shipping", template_id=created.id).success


def test_pywa_edits_and_unpauses_a_template_on_the_sandbox(pywa_client: Any, sandbox: str) -> None:
    template = pt.Template(
        name="pywa_edited",
        language=pt.TemplateLanguage.ENGLISH_US,
        category=pt.TemplateCategory.UTILITY,
        components=[pt.BodyText("Hi {{1}}, your order has shipped.", "Ana")],
    )
    created = pywa_client.create_template(template)
    httpx.post(f"{sandbox}/_sandbox/templates/{created.id}", json={"status": "PAUSED"})
    assert pywa_client.unpause_template(created.id).success
    assert not pywa_client.unpause_template(created.id).success  # approved, not paused
    components = [pt.BodyText("Hello {{1}}, your parcel is on its way.", "Ana")]
    updated = pywa_client.update_template(created.id, new_components=components)
    assert updated.success and updated.name == "pywa_edited"
    assert pywa_client.get_template(created.id).status == pt.TemplateStatus.PENDING


def test_pywa_reads_and_updates_the_profile_and_types(pywa_client: Any) -> None:
    assert pywa_client.update_business_profile(about="Plants, delivered").success
    assert pywa_client.get_business_profile().about == "Plants, delivered"
    with pytest.raises(pywa.errors.WhatsAppError) as refused:
        pywa_client.update_business_profile(about="x" * 140)
    assert refused.value.code == 100
    assert pywa_client.indicate_typing("wamid.FROM_CUSTOMER").success


def test_a_copy_code_button_has_an_example_code_not_a_text() -> None:
    """pywa's CopyCodeButton: an ``example`` string of at most 15 characters, no text."""

    def promo(code: str) -> TemplateDefinition:
        return TemplateDefinition.model_validate(
            {
                "name": "promo",
                "language": "en",
                "category": "MARKETING",
                "components": [
                    {"type": "BODY", "text": "Your code"},
                    {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": code}]},
                ],
            }
        )

    assert lint(promo("SAVE20")) == []
    [issue] = lint(promo("X" * 16))
    assert issue.where.endswith("buttons[0].example") and "at most 15" in issue.message
