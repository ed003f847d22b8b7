"""WhatsApp message templates on the WhatsApp Business Account: their wire shapes and a
local linter that refuses what Meta refuses, before submission.

Every rule below is sourced in docs/whatsapp.md ("The linter"); the one that only BSPs
report (placeholders side by side) is a warning (``LintIssue.severity``), which
:func:`check` lets through.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatbridge.errors import MessageInvalidError

#: A template name: lowercase letters, digits and underscores, at most 512 characters.
NAME = re.compile(r"[a-z0-9_]{1,512}")
NAME_MAX = 512
CATEGORIES = ("AUTHENTICATION", "MARKETING", "UTILITY")
BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTONS_MAX = 10
BUTTON_TEXT_MAX = 25
URL_MAX = 2000
PHONE_NUMBER_MAX = 20
#: A COPY_CODE button's example code (pywa ``CopyCodeButton.example``: "Maximum 15").
COPY_CODE_MAX = 15
#: At most this many buttons of one type (Meta "Components > Buttons", pywa).
BUTTON_TYPE_MAX = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
MEDIA_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT", "GIF"})
#: What a placeholder may hold, nothing around it: a number from 1 without a leading 0
#: (positional) or lowercase letters and underscores (named).
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_POSITIONAL = re.compile(r"[1-9][0-9]*")
_NAMED = re.compile(r"[a-z_]+")
#: The one variable a URL button's url may hold, at its end (Meta "Components > URL
#: buttons").
URL_VARIABLE = "{{1}}"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class TemplateButton(_Wire):
    """One button of a ``BUTTONS`` component (QUICK_REPLY, URL, PHONE_NUMBER...)."""

    type: str
    text: str | None = None
    url: str | None = None
    phone_number: str | None = None
    #: A URL button's example values; a COPY_CODE button's one example code.
    example: list[str] | str | None = None


class TemplateComponent(_Wire):
    """A HEADER, BODY, FOOTER or BUTTONS component; other keys (``add_security_
    recommendation``, carousel ``cards``...) are passed through unchanged."""

    type: str
    format: str | None = None
    text: str | None = None
    example: dict[str, Any] | None = None
    buttons: list[TemplateButton] | None = None


class TemplateDefinition(BaseModel):
    """What ``POST /{waba-id}/message_templates`` submits for review."""

    name: str
    language: str
    category: str
    components: list[TemplateComponent]
    parameter_format: Literal["POSITIONAL", "NAMED"] | None = None
    allow_category_change: bool | None = None
    message_send_ttl_seconds: int | None = None

    @field_validator("parameter_format", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        """Meta's examples write both ``named`` and ``NAMED``."""
        return value.upper() if isinstance(value, str) else value

    def body(self) -> dict[str, Any]:
        """The JSON body Meta expects (unset fields left out)."""
        return self.model_dump(exclude_none=True)


class MessageTemplate(_Wire):
    """A template as ``GET /{waba-id}/message_templates`` or ``GET /{template-id}``
    returns it."""

    id: str
    name: str
    language: str
    status: str
    category: str
    components: list[TemplateComponent] = Field(default_factory=list)
    parameter_format: str | None = None
    quality_score: dict[str, Any] | None = None
    rejected_reason: str | None = None
    previous_category: str | None = None
    correct_category: str | None = None


class CreatedTemplate(_Wire):
    """``POST /{waba-id}/message_templates`` success: ``{id, status, category}``."""

    id: str
    status: str
    category: str


class TemplatePage(BaseModel):
    """One page of templates; pass ``after`` to :meth:`list_templates` for the next."""

    templates: list[MessageTemplate]
    after: str | None = None
    before: str | None = None
    total_count: int | None = None


class WATemplateList(_Wire):
    """``GET /{waba-id}/message_templates`` success body."""

    data: list[MessageTemplate]
    paging: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None

    def page(self) -> TemplatePage:
        paging = self.paging or {}
        cursors = paging.get("cursors") or {}
        return TemplatePage(
            templates=self.data,
            # Graph gives cursors on every page; only ``next`` says there is one
            after=cursors.get("after") if paging.get("next") else None,
            before=cursors.get("before") if paging.get("previous") else None,
            total_count=(self.summary or {}).get("total_count"),
        )


class WASuccess(_Wire):
    """``{"success": true}`` answers (delete, edit, profile update, typing indicator)."""

    success: bool


class WAUnpause(WASuccess):
    """``POST /{template-id}/unpause``: ``success`` and, when false, Meta's ``reason``."""

    reason: str | None = None


# -- the linter -----------------------------------------------------------------------


class LintIssue(BaseModel):
    """One reason Meta would refuse (``error``) or likely reject (``warning``) a
    template; ``where`` names the component (``components[1].buttons[0].text``)."""

    model_config = ConfigDict(frozen=True)

    where: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def lint(template: TemplateDefinition) -> list[LintIssue]:
    """Everything in ``template`` that Meta refuses (errors) or BSPs report its review
    rejects (warnings), in component order."""
    return list(_lint(template))


def check(template: TemplateDefinition) -> None:
    """Raise MessageInvalidError listing every error :func:`lint` finds (warnings pass)."""
    refuse(lint(template), f"template {template.name!r}")


def lint_category(category: str) -> list[LintIssue]:
    """The issue with ``category`` if it is none of Meta's (a creation or an edit)."""
    if category in CATEGORIES:
        return []
    return [LintIssue(where="category", message=f"must be one of {', '.join(CATEGORIES)}")]


def lint_components(
    components: Sequence[TemplateComponent], category: str, parameter_format: str | None = None
) -> list[LintIssue]:
    """:func:`lint` for the components of a template in ``category`` alone (an edit)."""
    return list(_lint_components(components, category, parameter_format))


def placeholders(text: str | None) -> list[str]:
    """The placeholders of ``text`` in order of appearance (``["1", "2"]``,
    ``["order_id"]``)."""
    return _PLACEHOLDER.findall(text or "")


def refuse(issues: Sequence[LintIssue], what: str) -> None:
    """Raise MessageInvalidError listing the errors among ``issues`` (warnings pass)."""
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors:
        listed = "; ".join(str(issue) for issue in errors)
        raise MessageInvalidError(f"WhatsApp would refuse {what}: {listed}")


def _lint(template: TemplateDefinition) -> Iterator[LintIssue]:
    if not NAME.fullmatch(template.name):
        yield LintIssue(
            where="name",
            message=f"must be 1 to {NAME_MAX} lowercase letters, digits or underscores",
        )
    if not template.language:
        yield LintIssue(where="language", message="is required")
    yield from lint_category(template.category)
    yield from _lint_components(template.components, template.category, template.parameter_format)


def _lint_components(
    components: Sequence[TemplateComponent], category: str, parameter_format: str | None
) -> Iterator[LintIssue]:
    kinds = [component.type.upper() for component in components]
    for kind in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
        if kinds.count(kind) > 1:
            yield LintIssue(where="components", message=f"at most one {kind} component")
    if "BODY" not in kinds:
        yield LintIssue(where="components", message="a BODY component is required")
    formats: set[str] = set()
    for index, component in enumerate(components):
        where = f"components[{index}]"
        match component.type.upper():
            case "HEADER":
                yield from _lint_header(component, where, formats)
            case "BODY":
                if category != "AUTHENTICATION" or component.text is not None:
                    yield from _lint_body(component, where, formats)
            case "FOOTER":
                yield from _lint_text(component.text, f"{where}.text", FOOTER_MAX, limit=0)
            case "BUTTONS":
                yield from _lint_buttons(component.buttons or [], f"{where}.buttons")
    if len(formats) > 1:
        yield LintIssue(where="components", message="mixes positional and named placeholders")
    declared = (parameter_format or "POSITIONAL").upper()
    if formats and formats != {declared}:
        found = formats.pop()
        yield LintIssue(
            where="parameter_format",
            message=f"is {declared} but the placeholders are {found}",
        )


def _lint_text(
    text: str | None, where: str, maximum: int, *, limit: int | None = None, required: bool = True
) -> Iterator[LintIssue]:
    """Presence, length, brace syntax and (``limit``) placeholder count of ``text``."""
    if not text:
        if required:
            yield LintIssue(where=where, message="is required")
        return
    if len(text) > maximum:
        yield LintIssue(where=where, message=f"has {len(text)} characters; at most {maximum}")
    if text.count("{{") != text.count("}}") or _PLACEHOLDER.sub("", text).count("{{"):
        yield LintIssue(where=where, message="has unmatched {{ or }} (a placeholder is {{1}})")
    for name in placeholders(text):
        if not (_POSITIONAL.fullmatch(name) or _NAMED.fullmatch(name)):
            yield LintIssue(
                where=where,
                message=f"placeholder {{{{{name}}}}} must be digits without a leading 0 "
                "({{1}}) or lowercase letters and _ ({{first_name}}), nothing else",
            )
    found = placeholders(text)
    if limit is not None and len(found) > limit:
        yield LintIssue(where=where, message=f"allows {limit} placeholder(s); has {len(found)}")


def _well_formed(text: str | None) -> list[str]:
    """The placeholders of ``text`` that are positional or named (the others are
    reported by :func:`_lint_text`)."""
    return [n for n in placeholders(text) if _POSITIONAL.fullmatch(n) or _NAMED.fullmatch(n)]


def _format_of(names: Sequence[str]) -> set[str]:
    return {"POSITIONAL" if _POSITIONAL.fullmatch(name) else "NAMED" for name in names}


def _lint_placeholders(
    names: Sequence[str], example: dict[str, Any] | None, where: str, key: str
) -> Iterator[LintIssue]:
    """Sequential numbering and an example value for every placeholder (``key`` is
    ``body_text`` or ``header_text``)."""
    if not names:
        return
    example = example or {}
    positional = [name for name in names if _POSITIONAL.fullmatch(name)]
    if positional:
        numbers = sorted({int(name) for name in positional})
        if numbers != list(range(1, len(numbers) + 1)):
            shown = ", ".join(f"{{{{{n}}}}}" for n in numbers)
            yield LintIssue(
                where=where,
                message=f"placeholders must be numbered 1, 2, 3... without gaps; got {shown}",
            )
        values = example.get(key)
        if key == "body_text" and isinstance(values, list) and values:
            values = values[0]
        if not isinstance(values, list) or len(values) < len(numbers):
            yield LintIssue(
                where=f"{where}.example.{key}",
                message=f"needs an example value for each of its {len(numbers)} placeholder(s)",
            )
        return
    given = {
        entry.get("param_name")
        for entry in example.get(f"{key}_named_params") or []
        if isinstance(entry, dict) and entry.get("example")
    }
    missing = [name for name in dict.fromkeys(names) if name not in given]
    if missing:
        yield LintIssue(
            where=f"{where}.example.{key}_named_params",
            message=f"needs an example for {', '.join(missing)}",
        )


def _lint_header(
    component: TemplateComponent, where: str, formats: set[str]
) -> Iterator[LintIssue]:
    header_format = (component.format or "").upper()
    if header_format == "TEXT":
        yield from _lint_text(component.text, f"{where}.text", HEADER_TEXT_MAX, limit=1)
        names = _well_formed(component.text)
        formats |= _format_of(names)
        yield from _lint_placeholders(names, component.example, where, "header_text")
    elif header_format in MEDIA_FORMATS:
        handles = (component.example or {}).get("header_handle")
        if not handles:
            yield LintIssue(
                where=f"{where}.example.header_handle",
                message=f"a {header_format} header needs an uploaded sample (header_handle)",
            )
    elif header_format != "LOCATION":
        yield LintIssue(
            where=f"{where}.format",
            message="must be TEXT, IMAGE, VIDEO, GIF, DOCUMENT or LOCATION",
        )


def _lint_body(component: TemplateComponent, where: str, formats: set[str]) -> Iterator[LintIssue]:
    text = component.text
    yield from _lint_text(text, f"{where}.text", BODY_MAX)
    names = _well_formed(text)
    formats |= _format_of(names)
    yield from _lint_placeholders(names, component.example, where, "body_text")
    if not text or not names:
        return
    stripped = text.strip()
    if stripped.startswith("{{") or stripped.endswith("}}"):
        yield LintIssue(where=f"{where}.text", message="may not start or end with a placeholder")
    if re.search(r"\}\}\s*\{\{", text):
        yield LintIssue(
            where=f"{where}.text",
            message="has placeholders side by side (BSPs report that Meta's review rejects it)",
            severity="warning",
        )


def _lint_buttons(buttons: Sequence[TemplateButton], where: str) -> Iterator[LintIssue]:
    if not 1 <= len(buttons) <= BUTTONS_MAX:
        yield LintIssue(where=where, message=f"allows 1 to {BUTTONS_MAX}; got {len(buttons)}")
    kinds = [button.type.upper() for button in buttons]
    for kind, maximum in BUTTON_TYPE_MAX.items():
        if kinds.count(kind) > maximum:
            yield LintIssue(
                where=where, message=f"allows at most {maximum} {kind}; got {kinds.count(kind)}"
            )
    quick = [kind == "QUICK_REPLY" for kind in kinds]
    if sum(1 for a, b in itertools.pairwise(quick) if a != b) > 1:
        yield LintIssue(
            where=where,
            message="quick replies and other buttons must be in two groups, not interleaved",
        )
    for index, button in enumerate(buttons):
        here = f"{where}[{index}]"
        kind = button.type.upper()
        if kind == "COPY_CODE":  # no text of its own: the code's example (pywa CopyCodeButton)
            yield from _lint_copy_code(button.example, f"{here}.example")
        elif kind != "OTP":  # authentication buttons have localized defaults
            yield from _lint_text(button.text, f"{here}.text", BUTTON_TEXT_MAX, limit=0)
        if kind == "URL":
            yield from _lint_url(button, here)
        if kind == "PHONE_NUMBER":
            yield from _lint_text(
                button.phone_number, f"{here}.phone_number", PHONE_NUMBER_MAX, limit=0
            )


def _lint_copy_code(code: object, where: str) -> Iterator[LintIssue]:
    """A COPY_CODE button's example: one code, a string (not a list), 1 to 15 characters."""
    if not isinstance(code, str) or not code:
        yield LintIssue(where=where, message="needs the example code, a non-empty string")
    elif len(code) > COPY_CODE_MAX:
        yield LintIssue(where=where, message=f"has {len(code)} characters; at most {COPY_CODE_MAX}")


def _lint_url(button: TemplateButton, where: str) -> Iterator[LintIssue]:
    url = button.url or ""
    if not url:
        yield LintIssue(where=f"{where}.url", message="is required")
        return
    if len(url) > URL_MAX:
        yield LintIssue(where=f"{where}.url", message=f"has {len(url)} characters; at most 2000")
    base = url.removesuffix(URL_VARIABLE)
    if "{{" in base or "}}" in base:
        yield LintIssue(
            where=f"{where}.url",
            message=f"may hold one placeholder, {URL_VARIABLE}, at its end only",
        )
    elif base != url and not button.example:
        yield LintIssue(where=f"{where}.example", message="a URL with a placeholder needs one")
