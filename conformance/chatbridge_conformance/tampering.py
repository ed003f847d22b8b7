"""Tampered copies of a signed webhook.

The parts a kit's ``sign`` adds or changes (headers, query parameters, form or JSON
fields) are found by comparing the request before and after signing; each is then
removed, emptied, truncated, cut to a prefix, re-cased or re-encoded. Every tampered
copy must be refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from chatbridge.webhook import WebhookRequest

Where = Literal["header", "query", "form", "json"]
_FORM = "application/x-www-form-urlencoded"
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class SignedPart:
    """One value the signing added or changed: where it is and its name (a dotted path
    for JSON fields)."""

    where: Where
    name: str
    value: str


def signed_parts(unsigned: WebhookRequest, signed: WebhookRequest) -> list[SignedPart]:
    """What ``signed`` carries that ``unsigned`` did not (or carried otherwise)."""
    parts = [
        SignedPart("header", name, value)
        for name, value in signed.headers.items()
        if unsigned.header(name) != value
    ]
    before, after = dict(_query(unsigned.url)), _query(signed.url)
    parts += [SignedPart("query", k, v) for k, v in after if before.get(k) != v]
    if _is_form(signed) and _is_form(unsigned):
        before = dict(_form(unsigned.body))
        parts += [SignedPart("form", k, v) for k, v in _form(signed.body) if before.get(k) != v]
    old, new = _json(unsigned.body), _json(signed.body)
    if isinstance(new, dict):
        parts += [
            SignedPart("json", path, value)
            for path, value in _leaves(new)
            if _leaf(old, path) != value
        ]
    return parts


def tampered(value: str) -> Iterator[tuple[str, str]]:
    """Wrong versions of a signature value, each with what was done to it."""
    candidates = [
        ("empty", ""),
        ("truncated", value[:-1]),
        ("a prefix", value[: len(value) // 2]),
        ("one character changed", value[:-1] + ("0" if value[-1:] != "0" else "1")),
    ]
    prefix, _, digest = value.rpartition("=") if "=" in value.rstrip("=") else ("", "", value)
    if not _HEX.fullmatch(digest):  # hex digits carry no information in their case
        candidates.append(("re-cased", value.swapcase()))
    if recoded := _recoded(digest):
        candidates.append(("re-encoded", f"{prefix}={recoded}" if prefix else recoded))
    seen = {value}
    for what, candidate in candidates:
        if candidate not in seen:
            seen.add(candidate)
            yield what, candidate


def replace(request: WebhookRequest, part: SignedPart, value: str | None) -> WebhookRequest:
    """``request`` with ``part`` set to ``value`` (None: removed)."""
    if part.where == "header":
        headers = {k: v for k, v in request.headers.items() if k.lower() != part.name.lower()}
        if value is not None:
            headers[part.name] = value
        return WebhookRequest(request.method, request.url, headers, request.body)
    if part.where == "query":
        scheme, netloc, path, _, fragment = urlsplit(request.url)
        query = urlencode(_edited(_query(request.url), part.name, value))
        url = urlunsplit((scheme, netloc, path, query, fragment))
        return WebhookRequest(request.method, url, request.headers, request.body)
    if part.where == "form":
        body = urlencode(_edited(_form(request.body), part.name, value)).encode()
    else:
        document = json.loads(request.body)
        *parents, key = part.name.split(".")
        target = document
        for parent in parents:
            target = target[parent]
        if value is None:
            del target[key]
        else:
            target[key] = value
        body = json.dumps(document).encode()
    return WebhookRequest(request.method, request.url, request.headers, body)


def altered_url(request: WebhookRequest) -> Iterator[tuple[str, WebhookRequest]]:
    """``request`` sent to another path, and with a query parameter added."""
    scheme, netloc, path, query, fragment = urlsplit(request.url)
    other_path = urlunsplit((scheme, netloc, path + "x", query, fragment))
    more_query = urlunsplit((scheme, netloc, path, f"{query}&x=1" if query else "x=1", fragment))
    for what, url in (("another path", other_path), ("an added query parameter", more_query)):
        yield what, WebhookRequest(request.method, url, request.headers, request.body)


def _recoded(digest: str) -> str | None:
    """The same bytes in the other encoding (hex <-> base64), when ``digest`` is one."""
    if len(digest) >= 32 and len(digest) % 2 == 0 and _HEX.fullmatch(digest):
        return base64.b64encode(bytes.fromhex(digest)).decode()
    try:
        raw = base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) >= 16 else None


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def _is_form(request: WebhookRequest) -> bool:
    return (request.header("content-type") or "").startswith(_FORM)


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return []


def _edited(pairs: list[tuple[str, str]], name: str, value: str | None) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in pairs if k != name]
    return kept if value is None else [*kept, (name, value)]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _leaves(document: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, f"{path}.")
        elif isinstance(value, str):
            yield path, value


def _leaf(document: Any, path: str) -> object:
    for key in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document
