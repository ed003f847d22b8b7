"""The rules the loopback Cloud API applies to a template submitted to it (created or
edited) and to a business profile update, written down apart from the client's
(:mod:`chatbridge.whatsapp.templates`, :mod:`~chatbridge.whatsapp.profile`) so that a
wrong client value is caught by the sandbox instead of agreed with.

Every value is Meta's (docs/whatsapp.md, "The linter"); a refusal is ``(#100) Invalid
parameter`` with one of Meta's template-creation numbers as its subcode where one is
documented (docs/whatsapp.md, "The sandbox: account features").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Meta "Template components", "Utility templates".
NAME_MAX = 512
TEXT_MAX = {"HEADER": 60, "BODY": 1024, "FOOTER": 60}
BUTTON_TEXT_MAX = 25
URL_MAX = 2000
PHONE_MAX = 20
COPY_CODE_MAX = 15
BUTTONS_MAX = 10
PER_BUTTON_TYPE = {"QUICK_REPLY": 10, "URL": 2, "PHONE_NUMBER": 1, "COPY_CODE": 1}
CATEGORIES = frozenset({"AUTHENTICATION", "MARKETING", "UTILITY"})
MEDIA_HEADERS = frozenset({"IMAGE", "VIDEO", "GIF", "DOCUMENT"})
#: Template-creation error numbers (pywa ``errors.py``, after Meta's "Error codes").
CHARACTER_LIMIT, HEADER_FORMAT, FOOTER_FORMAT, DANGLING = 2388040, 2388047, 2388073, 2388299

_BRACES = re.compile(r"\{\{(.*?)\}\}")
#: Meta "Template review": "The correct format is {{1}}" (so no {{01}}); named ones are
#: lowercase letters and underscores ("Utility templates", <PARAMETER_NAME>).
_FORMATS = {"POSITIONAL": re.compile(r"[1-9][0-9]*"), "NAMED": re.compile(r"[a-z_]+")}
#: A URL button's one variable, appended to the URL ("Components > URL buttons").
URL_VARIABLE = "{{1}}"


class Problem(Exception):
    """What the Cloud API would refuse: ``details`` and, where Meta has one, a subcode."""

    def __init__(self, details: str, subcode: int | None = None) -> None:
        super().__init__(details)
        self.details, self.subcode = details, subcode


def placeholders(text: object) -> list[str]:
    """The placeholders of ``text``, each once, in order."""
    return list(dict.fromkeys(_BRACES.findall(text))) if isinstance(text, str) else []


def body_variables(components: Sequence[Mapping[str, Any]]) -> int:
    """How many parameters a send of a template with ``components`` must give its body."""
    body = next((c for c in components if str(c.get("type", "")).upper() == "BODY"), {})
    return len(placeholders(body.get("text")))


def check_creation(body: Mapping[str, Any]) -> None:
    """Raise :class:`Problem` for the first rule a ``POST /{waba}/message_templates`` body
    breaks."""
    name = body.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]+", name):
        raise Problem("name may hold only lowercase letters, digits and underscores")
    _at_most("name", name, NAME_MAX)
    check_category(body.get("category"))
    check_components(body.get("components"), body["category"], body.get("parameter_format"))


def check_category(category: object) -> None:
    """Raise :class:`Problem` unless ``category`` is one of Meta's (creation or edit)."""
    if category not in CATEGORIES:
        raise Problem(f"category must be one of {', '.join(sorted(CATEGORIES))}")


def check_components(components: object, category: str, parameter_format: object) -> None:
    """Raise :class:`Problem` for the first rule ``components`` break."""
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise Problem("components must be a list of objects")
    kinds = [str(c.get("type", "")).upper() for c in components]
    if "BODY" not in kinds:
        raise Problem("a BODY component is required")
    for kind in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
        if kinds.count(kind) > 1:
            raise Problem(f"a template has at most one {kind} component")
    pattern = _FORMATS.get(str(parameter_format or "POSITIONAL").upper())
    if pattern is None:
        raise Problem("parameter_format must be POSITIONAL or NAMED")
    for component, kind in zip(components, kinds, strict=True):
        if kind == "HEADER":
            _header(component, pattern)
        elif kind == "BODY" and (category != "AUTHENTICATION" or "text" in component):
            _text(component, "BODY", pattern)
            stripped = str(component["text"]).strip()
            if stripped.startswith("{{") or stripped.endswith("}}"):
                raise Problem("Variables can't be at the start or end of the template", DANGLING)
        elif kind == "FOOTER":
            if placeholders(component.get("text")):
                raise Problem("a footer holds no variables", FOOTER_FORMAT)
            _text(component, "FOOTER", pattern)
        elif kind == "BUTTONS":
            _buttons(component.get("buttons"))


def _at_most(what: str, value: str, maximum: int) -> None:
    if len(value) > maximum:
        raise Problem(f"{what} is {len(value)} characters; the limit is {maximum}", CHARACTER_LIMIT)


def _header(component: Mapping[str, Any], pattern: re.Pattern[str]) -> None:
    header_format = str(component.get("format", "")).upper()
    if header_format in MEDIA_HEADERS and not (component.get("example") or {}).get("header_handle"):
        raise Problem(f"a {header_format} header needs example.header_handle", HEADER_FORMAT)
    if header_format == "TEXT":
        text = component.get("text")
        if isinstance(text, str) and len(_BRACES.findall(text)) > 1:  # {{1}} twice: two
            raise Problem("a text header holds one variable", HEADER_FORMAT)
        _text(component, "HEADER", pattern)
    elif header_format not in (*MEDIA_HEADERS, "LOCATION"):
        raise Problem(f"header format {header_format!r} is not supported", HEADER_FORMAT)


def _text(component: Mapping[str, Any], kind: str, pattern: re.Pattern[str]) -> None:
    """Text present and short enough; variables well formed, numbered and exemplified."""
    text = component.get("text")
    if not isinstance(text, str) or not text:
        raise Problem(f"the {kind} text is required")
    _at_most(f"the {kind} text", text, TEXT_MAX[kind])
    found = _BRACES.findall(text)
    if text.count("{{") != len(found) or text.count("}}") != len(found):
        raise Problem(f"the {kind} text has mismatched curly braces")
    names = placeholders(text)
    if not names:
        return
    if any(not pattern.fullmatch(name) for name in names):
        raise Problem(f"the {kind} variables do not match the parameter format")
    example = component.get("example")
    example = example if isinstance(example, dict) else {}
    key = f"{kind.lower()}_text"
    if pattern is _FORMATS["NAMED"]:
        given = {
            e.get("param_name")
            for e in example.get(f"{key}_named_params") or []
            if isinstance(e, dict) and e.get("example")
        }
        if not set(names) <= given:
            raise Problem(f"the {kind} needs {key}_named_params with an example for every variable")
        return
    if sorted(int(name) for name in names) != list(range(1, len(names) + 1)):
        raise Problem(f"the {kind} variables are not sequential")
    values = example.get(key)
    if kind == "BODY" and isinstance(values, list) and values:
        values = values[0]
    if not isinstance(values, list) or len(values) < len(names):
        raise Problem(f"the {kind} needs example.{key} for every variable")


def _buttons(buttons: object) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= BUTTONS_MAX:
        raise Problem(f"a BUTTONS component holds 1 to {BUTTONS_MAX} buttons")
    kinds = [str(b.get("type", "")).upper() if isinstance(b, dict) else "" for b in buttons]
    for kind, maximum in PER_BUTTON_TYPE.items():
        if kinds.count(kind) > maximum:
            raise Problem(f"a template holds at most {maximum} {kind} buttons")
    groups = [kind == "QUICK_REPLY" for kind in kinds]
    if sum(a != b for a, b in itertools.pairwise(groups)) > 1:
        raise Problem("invalid combination of buttons: quick replies must be grouped")
    for button, kind in zip(buttons, kinds, strict=True):
        _button(button, kind)


def _button(button: Mapping[str, Any], kind: str) -> None:
    if kind == "COPY_CODE":
        code = button.get("example")
        if not isinstance(code, str) or not code:
            raise Problem("a COPY_CODE button needs its example code, a string")
        _at_most("a copy code example", code, COPY_CODE_MAX)
        return
    if kind != "OTP":
        text = _required(button, "text")
        _at_most("a button text", text, BUTTON_TEXT_MAX)
        _no_variable("a button text", text)
    if kind == "PHONE_NUMBER":
        phone = _required(button, "phone_number")
        _at_most("a phone_number", phone, PHONE_MAX)
        _no_variable("a phone_number", phone)
    if kind == "URL":
        url = _required(button, "url")
        _at_most("a button url", url, URL_MAX)
        base = url.removesuffix(URL_VARIABLE)
        if "{{" in base or "}}" in base:
            raise Problem(f"a URL holds one variable, {URL_VARIABLE}, at its end")
        if base != url and not button.get("example"):
            raise Problem("a URL with a variable needs an example")


def _no_variable(what: str, value: str) -> None:
    """Meta's "Components" gives variables to the header, body and URL only."""
    if "{{" in value or "}}" in value:
        raise Problem(f"{what} holds no variables or curly braces")


def _required(button: Mapping[str, Any], key: str) -> str:
    value = button.get(key)
    if not isinstance(value, str) or not value:
        raise Problem(f"a button needs {key}")
    return value


#: Business profile (Meta "Business profiles"; docs/whatsapp.md, "Business profile"):
#: characters per field, websites, and the ``vertical`` values.
PROFILE_TEXT = {"about": (1, 139), "address": (0, 256), "description": (0, 512), "email": (0, 128)}
PROFILE_WEBSITES, PROFILE_WEBSITE = 2, 256
PROFILE_VERTICALS = frozenset(
    {
        "UNDEFINED",
        "OTHER",
        "AUTO",
        "BEAUTY",
        "APPAREL",
        "EDU",
        "ENTERTAIN",
        "EVENT_PLAN",
        "FINANCE",
        "GROCERY",
        "GOVT",
        "HOTEL",
        "HEALTH",
        "NONPROFIT",
        "PROF_SERVICES",
        "RETAIL",
        "TRAVEL",
        "RESTAURANT",
        "NOT_A_BIZ",
    }
)


def check_profile(fields: Mapping[str, Any]) -> None:
    """Raise :class:`Problem` for a profile update Meta refuses."""
    for field, (least, most) in PROFILE_TEXT.items():
        value = fields.get(field)
        if value is not None and not (isinstance(value, str) and least <= len(value) <= most):
            raise Problem(f"{field} must be {least} to {most} characters")
    if "@" not in fields.get("email", "@"):
        raise Problem("email must be an email address")
    if fields.get("vertical", "OTHER") not in PROFILE_VERTICALS:
        raise Problem("vertical is not one of Meta's values")
    websites = fields.get("websites", [])
    if not isinstance(websites, list) or len(websites) > PROFILE_WEBSITES:
        raise Problem(f"at most {PROFILE_WEBSITES} websites")
    for site in websites:
        if not (isinstance(site, str) and site.lower().startswith(("http://", "https://"))):
            raise Problem("a website starts with http:// or https://")
        if len(site) > PROFILE_WEBSITE:
            raise Problem(f"a website is at most {PROFILE_WEBSITE} characters")
