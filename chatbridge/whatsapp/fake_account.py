"""The account side of the loopback Cloud API (:class:`~chatbridge.whatsapp.fake.
FakeWhatsAppAPI` serves it): message templates on the WhatsApp Business Account, their
review (a sandbox control: Meta's reviewers are not here) and the business profile.
Refusals carry Meta's codes where a source gives them (docs/whatsapp.md, "The sandbox")."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from chatbridge.plugin import graph
from chatbridge.plugin.fake import Refused, json_response
from chatbridge.whatsapp import fake_rules, profile

#: Review outcomes the sandbox control accepts (Meta's ``event`` values).
REVIEW_STATUSES = frozenset(
    {"APPROVED", "REJECTED", "PAUSED", "DISABLED", "FLAGGED", "REINSTATED", "IN_APPEAL"}
)
PAGE_SIZE = 25  # an assumption: Graph's default page size is not documented for templates
#: What the fake reports as the account's template limit (pywa reads it; not Meta's value).
TEMPLATE_LIMIT = 250
#: What ``POST /{template-id}`` may change (Meta "Template management > Edit templates":
#: "You can only edit a template's category, components, or time-to-live").
EDITABLE = frozenset({"category", "components", "message_send_ttl_seconds"})
DAY = 24 * 3600.0


def refused(
    code: int, message: str, details: str | None = None, subcode: int | None = None
) -> Refused:
    data = {"messaging_product": "whatsapp", "details": details} if details else None
    return Refused(
        graph.error_response(400, code, f"(#{code}) {message}", subcode, error_data=data)
    )


def invalid(details: str, subcode: int | None = None) -> Refused:
    return refused(100, "Invalid parameter", details, subcode)


def template_notification(
    waba_id: str, template: Mapping[str, Any], field: str, **value: Any
) -> bytes:
    """The webhook body Meta POSTs when ``template`` changes (``field``: one of Meta's
    template fields; ``value``: the change's fields besides the template's own)."""
    change = {
        "field": field,
        "value": {
            "message_template_id": int(template["id"]),
            "message_template_name": template["name"],
            "message_template_language": template["language"],
            **value,
        },
    }
    entry = {"id": waba_id, "time": int(time.time()), "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


class FakeAccount:
    """Templates (``templates``: by id, as Meta returns them) and the business profile
    of one account; ids come from ``ids``, shared with the media store."""

    def __init__(self, waba_id: str, ids: Iterator[int]) -> None:
        self.waba_id = waba_id
        self.templates: dict[str, dict[str, Any]] = {}
        self.profile: dict[str, Any] = {"about": "", "vertical": "UNDEFINED", "websites": []}
        self._ids = ids
        self._edits: dict[str, list[float]] = {}  # template id -> unix times of its edits

    # -- templates --------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> httpx.Response:
        for required in ("name", "language", "category", "components"):
            if not body.get(required):
                raise refused(100, f"The parameter {required} is required.")
        _check(fake_rules.check_creation, body)
        name, language = body["name"], body["language"]
        for stored in self.templates.values():
            if (stored["name"], stored["language"]) == (name, language):
                details = f"Content in this language already exists for {name}"
                raise invalid(details, 2388024)
        template_id = str(10**15 + next(self._ids))  # Meta's ids: 16 digits, no leading 0
        self.templates[template_id] = {
            **body,
            "id": template_id,
            "parameter_format": str(body.get("parameter_format") or "POSITIONAL").upper(),
            "status": "PENDING",
            "quality_score": {"score": "UNKNOWN", "date": int(time.time())},
        }
        created = {"id": template_id, "status": "PENDING", "category": body["category"]}
        return json_response(200, created)

    def edit(self, template_id: str, body: dict[str, Any]) -> httpx.Response:
        """``POST /{template-id}``, within Meta's limits ("Template management > Edit
        templates"); the edited template goes back to review (``PENDING``)."""
        template = self.templates[template_id]
        if unknown := set(body) - EDITABLE:
            raise invalid(f"Only {', '.join(sorted(EDITABLE))} can be edited, not {min(unknown)}")
        if not body:
            raise invalid(f"Nothing to edit: give one of {', '.join(sorted(EDITABLE))}")
        if template["status"] not in ("APPROVED", "REJECTED", "PAUSED"):
            raise invalid("Only APPROVED, REJECTED or PAUSED templates can be edited")
        category = body.get("category", template["category"])
        _check(fake_rules.check_category, category)
        if template["status"] == "APPROVED" and category != template["category"]:
            raise invalid("You cannot edit the category of an approved template")
        now, edits = time.time(), self._edits.setdefault(template_id, [])
        if template["status"] == "APPROVED" and (
            any(now - at < DAY for at in edits) or sum(now - at < 30 * DAY for at in edits) >= 10
        ):
            raise invalid("Approved templates can be edited once in 24 hours, 10 times in 30 days")
        if "components" in body or category != template["category"]:
            components = body.get("components", template["components"])
            parameter_format = template["parameter_format"]
            _check(fake_rules.check_components, components, category, parameter_format)
        edits.append(now)
        template.update(body, category=category)
        template["status"] = "PENDING"
        edited = {"success": True, "id": template_id, "name": template["name"]}
        return json_response(200, {**edited, "category": category})

    def unpause(self, template_id: str) -> httpx.Response:
        """``POST /{template-id}/unpause``: a paused template is approved again."""
        template = self.templates[template_id]
        if template["status"] != "PAUSED":
            reason = f"Template is {template['status']}, not PAUSED"
            return json_response(200, {"success": False, "reason": reason})
        template["status"] = "APPROVED"
        return json_response(200, {"success": True})

    def list(self, request: httpx.Request) -> httpx.Response:
        query = request.url.params
        found = [t for t in self.templates.values() if _matches(t, query)]
        try:
            limit = int(query.get("limit", PAGE_SIZE))
            start = _cursor(query["after"]) + 1 if "after" in query else 0
            if "before" in query:
                start = max(_cursor(query["before"]) - limit, 0)
        except ValueError:
            raise invalid("limit, after and before must be a number and cursors") from None
        if limit < 1:
            raise invalid("limit must be positive")
        page = found[start : start + limit]
        body: dict[str, Any] = {"data": page}
        if page:
            cursors = {"before": _encode(start), "after": _encode(start + len(page) - 1)}
            body["paging"] = {"cursors": cursors}
            if start + limit < len(found):
                body["paging"]["next"] = str(
                    request.url.copy_merge_params({"after": cursors["after"]})
                )
            if start > 0:
                body["paging"]["previous"] = str(
                    request.url.copy_merge_params({"before": cursors["before"]})
                )
        if "summary" in query:
            body["summary"] = {
                "total_count": len(found),
                "message_template_count": len(self.templates),
                "message_template_limit": TEMPLATE_LIMIT,
                "are_translations_complete": True,
            }
        return json_response(200, body)

    def delete(self, request: httpx.Request) -> httpx.Response:
        name, hsm_id = request.url.params.get("name"), request.url.params.get("hsm_id")
        if not name:
            raise refused(100, "The parameter name is required.")
        doomed = [
            template_id
            for template_id, t in self.templates.items()
            if t["name"] == name and hsm_id in (None, template_id)
        ]
        if not doomed:
            raise invalid(f"Message template {name!r} not found")
        for template_id in doomed:
            del self.templates[template_id]
        return json_response(200, {"success": True})

    def review(self, template_id: str, status: str, reason: str | None = None) -> bytes:
        """Meta's reviewers' part: set the template's ``status`` (APPROVED, REJECTED...)
        and return the ``message_template_status_update`` webhook Meta sends for it."""
        if status not in REVIEW_STATUSES:
            raise ValueError(f"status must be one of {', '.join(sorted(REVIEW_STATUSES))}")
        template = self.templates[template_id]
        template["status"] = status
        if status == "REJECTED":
            template["rejected_reason"] = reason or "INVALID_FORMAT"
        return template_notification(
            self.waba_id,
            template,
            "message_template_status_update",
            event=status,
            reason=template.get("rejected_reason", "NONE") if status == "REJECTED" else "NONE",
            message_template_category=template["category"],
        )

    def check_send(self, content: Mapping[str, Any]) -> None:
        """Refuse a template send the way Meta does for a template this account has: in
        no such language, not approved, or with the wrong number of body parameters.
        Names the fake never saw are taken as approved in WhatsApp Manager."""
        named = [t for t in self.templates.values() if t["name"] == content.get("name")]
        if not named:
            return
        code = (content.get("language") or {}).get("code")
        template = next((t for t in named if t["language"] == code), None)
        if template is None or template["status"] not in ("APPROVED", "PAUSED", "DISABLED"):
            details = f"template name ({content.get('name')}) does not exist in {code}"
            raise refused(132001, "Template name does not exist in the translation", details)
        if template["status"] == "PAUSED":
            raise refused(132015, "Template is Paused", f"{template['name']} is paused")
        if template["status"] == "DISABLED":
            raise refused(132016, "Template is Disabled", f"{template['name']} is disabled")
        expected = fake_rules.body_variables(template["components"])
        given = sum(
            len(c.get("parameters") or [])
            for c in content.get("components") or []
            if str(c.get("type", "")).lower() == "body"
        )
        if given != expected:
            details = (
                f"body: number of localizable_params ({given}) does not match the expected "
                f"number of params ({expected})"
            )
            raise refused(
                132000, "Number of parameters does not match the expected number of params", details
            )

    # -- business profile -------------------------------------------------------------

    def get_profile(self, request: httpx.Request) -> httpx.Response:
        fields = request.url.params.get("fields")
        shown = dict(self.profile)
        if fields:
            wanted = set(fields.split(","))
            shown = {key: value for key, value in shown.items() if key in wanted}
        return json_response(200, {"data": [{**shown, "messaging_product": "whatsapp"}]})

    def update_profile(self, body: dict[str, Any]) -> httpx.Response:
        fields = {key: value for key, value in body.items() if key != "messaging_product"}
        try:
            profile.BusinessProfile.model_validate(fields)  # the shape only
        except ValidationError as exc:
            raise invalid(f"malformed profile: {exc.errors()[0]['msg']}") from exc
        _check(fake_rules.check_profile, fields)
        handle = fields.pop("profile_picture_handle", None)
        self.profile.update(fields)
        if handle:
            self.profile["profile_picture_url"] = f"https://pps.whatsapp.net/fake/{handle}"
        return json_response(200, {"success": True})


def _check(rule: Callable[..., None], *args: Any) -> None:
    """Run one of :mod:`fake_rules`' rules, refusing as Meta does when it fails."""
    try:
        rule(*args)
    except fake_rules.Problem as problem:
        raise invalid(problem.details, problem.subcode) from None


def _matches(template: Mapping[str, Any], query: httpx.QueryParams) -> bool:
    """Whether ``template`` passes the list filters (a comma list: any of them)."""
    name = query.get("name")
    if name and name not in template["name"]:
        return False
    score = (template.get("quality_score") or {}).get("score")
    values = {
        "status": template["status"],
        "category": template["category"],
        "language": template["language"],
        "quality_score": score,
    }
    return all(values[key] in query[key].split(",") for key in values if query.get(key))


def _encode(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode().rstrip("=")


def _cursor(value: str) -> int:
    padded = value + "=" * (-len(value) % 4)
    try:
        return int(base64.urlsafe_b64decode(padded).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValueError(value) from None
