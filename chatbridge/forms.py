"""Parsing of HTML form bodies (urlencoded and multipart), as providers post them."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message as EmailMessage
from urllib.parse import parse_qsl

from chatbridge.errors import PayloadError


@dataclass(frozen=True)
class Part:
    """One form field: its bytes, and for uploaded files their type and name."""

    data: bytes
    content_type: str | None = None
    filename: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes, max_fields: int = 1000) -> dict[str, Part]:
    """The fields of a form body by name (a repeated name keeps its last value).

    Raises PayloadError for other content types, undecodable bodies or more than
    ``max_fields`` fields.
    """
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, max_num_fields=max_fields
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"malformed urlencoded form: {exc}") from exc
        return {name: Part(value.encode()) for name, value in pairs}
    if kind == "multipart/form-data":
        return _multipart(content_type, body, max_fields)
    raise PayloadError(f"expected a form body, got content type {kind or 'none'!r}")


def _multipart(content_type: str, body: bytes, max_fields: int) -> dict[str, Part]:
    document = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    payload = document.get_payload() if document.is_multipart() else None
    if not isinstance(payload, list):
        raise PayloadError("malformed multipart form")
    if len(payload) > max_fields:
        raise PayloadError(f"form has more than {max_fields} fields")
    parts: dict[str, Part] = {}
    for part in payload:
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(data, bytes):
            parts[name] = Part(data, part.get("content-type"), part.get_filename())
    return parts
