"""A loopback imitation of the WhatsApp Cloud API: sends, typing indicators, media
upload, info, download and delete, templates and the business profile (``fake_account``),
on any Graph API version, checked the way the Cloud API checks them and refused with its
codes and error bodies (docs/whatsapp.md, "The sandbox")."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from chatbridge.plugin import graph
from chatbridge.plugin.fake import FakeAPI, Refused, json_response, parse_multipart
from chatbridge.whatsapp.channel import WhatsAppConfig
from chatbridge.whatsapp.fake_account import FakeAccount

#: The WhatsApp Business Account id the fake serves when the config names none.
DEFAULT_WABA_ID = "102290129340398"

#: The message types a send may have (the Cloud API's "Param type must be one of").
TYPES = (
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
)
MEDIA_TYPES = frozenset({"audio", "document", "image", "sticker", "video"})
TEXT_MAX = 4096
CAPTION_MAX = 1024
#: "+", "-", "(", ")" and spaces may stand in a number ("Phone numbers")
_PHONE = re.compile(r"\+?[\d\s()-]{5,30}")
_VERSION = r"/v\d+\.\d+"


@dataclass
class StoredMedia:
    """An uploaded file; ``sha256`` is computed at upload, as Meta reports it."""

    data: bytes
    mime_type: str
    sha256: str


def refused(code: int, message: str, details: str | None = None) -> Refused:
    """A Cloud API refusal: 400 with ``(#code) message`` (and ``details``)."""
    data = {"messaging_product": "whatsapp", "details": details} if details else None
    return Refused(graph.error_response(400, code, f"(#{code}) {message}", error_data=data))


def required(parameter: str) -> Refused:
    return refused(100, f"The parameter {parameter} is required.")


def wa_id(to: str) -> str:
    """The WhatsApp id a number is sent to: its digits (Meta "Phone numbers")."""
    return re.sub(r"\D", "", to)


class FakeWhatsAppAPI(FakeAPI):
    """The Cloud API's endpoints for one phone number id and its business account.

    ``sent`` holds every message body accepted; ``media`` every uploaded file (ids are
    digits, as Meta's are); ``account`` the templates and the business profile.

    Sandbox control (Meta's reviewers are not here): ``POST /_sandbox/templates/{id}``
    (``/whatsapp/_sandbox/...`` in ``chatbridge sandbox``) with ``{"status": "APPROVED",
    "reason"?}`` (or REJECTED, PAUSED...) sets a template's review
    outcome and answers ``{"webhook": ...}``, the ``message_template_status_update``
    notification Meta would POST (:meth:`review` does the same in Python).
    """

    hosts = ("graph.facebook.com",)

    def __init__(self, config: WhatsAppConfig) -> None:
        super().__init__()
        self.config = config
        self.sent: list[dict[str, Any]] = []
        self.media: dict[str, StoredMedia] = {}
        self._ids = itertools.count(1)
        self.account = FakeAccount(config.business_account_id or DEFAULT_WABA_ID, self._ids)
        number = re.escape(config.phone_number_id)
        waba = re.escape(self.account.waba_id)
        self.route("POST", rf"{_VERSION}/{number}/messages", self._messages)
        self.route("POST", rf"{_VERSION}/{number}/media", self._upload)
        self.route("GET", rf"{_VERSION}/{number}/whatsapp_business_profile", self._profile)
        self.route("POST", rf"{_VERSION}/{number}/whatsapp_business_profile", self._profile_update)
        self.route("GET", rf"{_VERSION}/{waba}/message_templates", self._templates)
        self.route("POST", rf"{_VERSION}/{waba}/message_templates", self._template_create)
        self.route("DELETE", rf"{_VERSION}/{waba}/message_templates", self._template_delete)
        self.route("GET", rf"{_VERSION}/(?P<media_id>\d+)", self._node)
        self.route("POST", rf"{_VERSION}/(?P<template_id>\d+)", self._template_edit)
        self.route("POST", rf"{_VERSION}/(?P<template_id>\d+)/unpause", self._template_unpause)
        self.route("DELETE", rf"{_VERSION}/(?P<media_id>\d+)", self._media_delete)
        self.route("GET", r"/fake-media/(?P<media_id>\d+)", self._media_bytes)
        self.route("POST", r"/_sandbox/templates/(?P<template_id>\d+)", self._review)

    def review(self, template_id: str, status: str, reason: str | None = None) -> bytes:
        """Set the review outcome of template ``template_id``; the webhook body Meta
        sends for it (unsigned: the kit signs it)."""
        return self.account.review(template_id, status, reason)

    def authorize(self, request: httpx.Request) -> None:
        if request.url.path.removeprefix(self.prefix).startswith("/_sandbox/"):
            return  # a sandbox control, not Meta's API
        if request.headers.get("authorization") != f"Bearer {self._token}":
            message = "Invalid OAuth access token - Cannot parse access token"
            raise Refused(graph.error_response(401, 190, message))

    @property
    def _token(self) -> str:
        return self.config.access_token.get_secret_value()

    def unknown(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(self.prefix)
        return graph.no_such_object(request, path.rstrip("/").rpartition("/")[2])

    def unreadable(self, request: httpx.Request) -> httpx.Response:
        # Graph reads a body it cannot parse as no parameters at all
        return required("messaging_product").response

    # -- messages ---------------------------------------------------------------------

    def _messages(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        _check_product(body)
        if "status" in body:  # a read receipt, maybe with the typing indicator
            if body["status"] != "read":
                raise refused(
                    100, f'Param status must be one of {{READ}} - got "{body["status"]}".'
                )
            if not body.get("message_id"):
                raise required("message_id")
            _check_typing(body.get("typing_indicator"))
            return json_response(200, {"success": True})
        to = body.get("to")
        if not isinstance(to, str) or not to:
            raise required("to")
        if not _PHONE.fullmatch(to) or not wa_id(to):
            raise refused(100, "Invalid parameter", f"The phone number {to!r} is malformed.")
        kind = body.get("type", "text")
        if kind not in TYPES:
            allowed = ", ".join(t.upper() for t in TYPES)
            raise refused(100, f'Param type must be one of {{{allowed}}} - got "{kind}".')
        content = body.get(kind)
        if not isinstance(content, dict):
            raise required(kind)
        self._check_content(kind, content)
        if kind != "template" and self.window_closed(to):
            message = "Re-engagement message"
            details = "More than 24 hours have passed since the recipient last replied."
            raise refused(131047, message, details)
        self.sent.append(body)
        sent: dict[str, Any] = {"id": f"wamid.FAKE{next(self._ids):08d}"}
        self.accepted(sent["id"], to)
        if kind == "template":
            sent["message_status"] = "accepted"
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": wa_id(to)}],
                "messages": [sent],
            },
        )

    def address(self, given: str) -> str:
        return wa_id(given)

    def _check_content(self, kind: str, content: Mapping[str, Any]) -> None:
        if kind == "text":
            _check_text(content.get("body"), "text['body']", TEXT_MAX)
        elif kind in MEDIA_TYPES:
            self._check_media(kind, content)
        elif kind == "template":
            language = content.get("language")
            if not content.get("name"):
                raise _missing("template", "name")
            if not isinstance(language, dict) or not language.get("code"):
                raise _missing("template", "language['code']")
            self.account.check_send(content)
        elif kind == "interactive":
            _check_interactive(content)
        elif kind == "reaction" and not content.get("message_id"):
            raise _missing("reaction", "message_id")

    def _check_media(self, kind: str, content: Mapping[str, Any]) -> None:
        media_id, link = content.get("id"), content.get("link")
        if bool(media_id) == bool(link):
            raise refused(100, f"Param {kind} must have exactly one of id or link")
        if link and not str(link).lower().startswith(("http://", "https://")):
            raise refused(100, "Invalid parameter", f"{kind}['link'] must be an http(s) URL")
        if media_id and str(media_id) not in self.media:
            raise refused(100, "Invalid parameter", f"{kind}['id'] {media_id} is no uploaded media")
        if "caption" in content:
            _check_text(content["caption"], f"{kind}['caption']", CAPTION_MAX)

    # -- media ------------------------------------------------------------------------

    def _upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        parts = parse_multipart(request)
        _check_product({name: part.text for name, part in parts.items()})
        if "file" not in parts:
            raise required("file")
        kind = parts["type"].text if "type" in parts else parts["file"].content_type
        if not kind:
            raise required("type")
        media_id = f"{next(self._ids):016d}"
        data = parts["file"].data
        self.media[media_id] = StoredMedia(data, kind, hashlib.sha256(data).hexdigest())
        return json_response(200, {"id": media_id})

    def _stored(self, request: httpx.Request, media_id: str) -> StoredMedia:
        stored = self.media.get(media_id)
        if stored is None:
            raise Refused(graph.no_such_object(request, media_id))
        return stored

    def _media_info(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        media_id = match["media_id"]
        stored = self._stored(request, media_id)
        return json_response(
            200,
            {
                "messaging_product": "whatsapp",
                "url": str(request.url.copy_with(path=f"{self.prefix}/fake-media/{media_id}")),
                "mime_type": stored.mime_type,
                "sha256": stored.sha256,
                "file_size": len(stored.data),
                "id": media_id,
            },
        )

    def _node(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        """``GET /{id}``: a template's or a media item's (one id space, as Graph's)."""
        template = self.account.templates.get(match["media_id"])
        if template is not None:
            return json_response(200, template)
        return self._media_info(request, match)

    def _media_delete(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._stored(request, match["media_id"])
        del self.media[match["media_id"]]
        return json_response(200, {"success": True})

    def _media_bytes(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        stored = self._stored(request, match["media_id"])
        return httpx.Response(200, content=stored.data, headers={"content-type": stored.mime_type})

    # -- account ----------------------------------------------------------------------

    def _templates(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return self.account.list(request)

    def _template_create(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return self.account.create(self.json_body(request))

    def _template_delete(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return self.account.delete(request)

    def _template_edit(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._template(request, match["template_id"])
        return self.account.edit(match["template_id"], self.json_body(request))

    def _template_unpause(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._template(request, match["template_id"])
        return self.account.unpause(match["template_id"])

    def _template(self, request: httpx.Request, template_id: str) -> None:
        """Refuse as Graph does a request for a template this account does not have."""
        if template_id not in self.account.templates:
            raise Refused(graph.no_such_object(request, template_id))

    def _profile(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return self.account.get_profile(request)

    def _profile_update(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        _check_product(body)
        return self.account.update_profile(body)

    def _review(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = self.json_body(request)
        template_id = match["template_id"]
        self._template(request, template_id)
        try:
            webhook = self.review(template_id, str(body.get("status")), body.get("reason"))
        except ValueError as exc:
            return json_response(400, {"message": str(exc)})
        return json_response(200, {"webhook": json.loads(webhook)})


def _check_typing(indicator: object) -> None:
    """A typing indicator is ``{"type": "text"}`` (the only type Meta documents)."""
    if indicator is None:
        return
    kind = indicator.get("type") if isinstance(indicator, dict) else None
    if kind != "text":
        raise refused(
            100, f"Param typing_indicator['type'] must be one of {{TEXT}} - got \"{kind}\"."
        )


def _check_product(body: Mapping[str, Any]) -> None:
    product = body.get("messaging_product")
    if product is None:
        raise required("messaging_product")
    if product != "whatsapp":
        raise refused(
            100, f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".'
        )


def _missing(kind: str, parameter: str) -> Refused:
    details = f"Parameter of type {kind} is missing {parameter}"
    return refused(131008, "Required parameter is missing", details)


def _check_text(value: object, parameter: str, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise required(parameter)
    if len(value) > limit:
        raise refused(100, f"Param {parameter} must be at most {limit} characters long.")


def _check_interactive(content: Mapping[str, Any]) -> None:
    body = content.get("body")
    if not isinstance(body, dict) or not body.get("text"):
        raise _missing("interactive", "body['text']")
    action = content.get("action")
    if not isinstance(action, dict):
        raise _missing("interactive", "action")
    if content.get("type") == "button":
        buttons = action.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            details = "Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3"
            raise refused(131009, "Parameter value is not valid", details)
