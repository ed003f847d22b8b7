"""Parsing of HTML form bodies (urlencoded and multipart), as providers post them.

Multipart bodies go through python-multipart's streaming parser (the one Starlette
uses) with every dimension capped: fields, bytes per field, headers per part, bytes
per header line and bytes in all. Whatever is malformed or over a cap is a
:class:`~chatbridge.errors.PayloadError`, never another exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import anyio.to_thread
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from chatbridge.errors import PayloadError, PayloadTooLargeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

#: Bodies larger than this are parsed in a worker thread by :func:`read_form`.
OFFLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Part:
    """One form field: its bytes, and for uploaded files their type and name."""

    data: bytes
    content_type: str | None = None
    filename: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class FormLimits:
    """The caps of one form body. ``part_headers`` and ``header_bytes`` bound each
    multipart part's header block (count of header lines, bytes per line)."""

    fields: int = 1000
    part_bytes: int = 32 * 1024 * 1024
    total_bytes: int = 64 * 1024 * 1024
    part_headers: int = 8
    header_bytes: int = 4096


def parse_form(
    content_type: str, body: bytes, max_fields: int = 1000, *, limits: FormLimits | None = None
) -> dict[str, Part]:
    """The fields of a form body by name (a repeated name keeps its last value).

    Raises PayloadError for other content types, malformed bodies or bodies over
    ``limits`` (``max_fields`` is shorthand for ``limits.fields``).
    """
    limits = limits or FormLimits(fields=max_fields)
    if len(body) > limits.total_bytes:
        raise PayloadTooLargeError(f"form body is over {limits.total_bytes} bytes")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return _urlencoded(body, limits)
    if kind == "multipart/form-data":
        return _multipart(content_type, body, limits)
    raise PayloadError(f"expected a form body, got content type {kind or 'none'!r}")


async def read_form(
    content_type: str, body: bytes, max_fields: int = 1000, *, limits: FormLimits | None = None
) -> dict[str, Part]:
    """:func:`parse_form`, in a worker thread for bodies over ``OFFLOAD_BYTES`` so a
    large upload never holds up the event loop."""
    if len(body) <= OFFLOAD_BYTES:
        return parse_form(content_type, body, max_fields, limits=limits)
    return await anyio.to_thread.run_sync(
        lambda: parse_form(content_type, body, max_fields, limits=limits)
    )


def _urlencoded(body: bytes, limits: FormLimits) -> dict[str, Part]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=limits.fields
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"malformed urlencoded form: {exc}") from exc
    fields = {name: Part(value.encode()) for name, value in pairs}
    if any(len(part.data) > limits.part_bytes for part in fields.values()):
        raise PayloadError(f"a form field is over {limits.part_bytes} bytes")
    return fields


def _multipart(content_type: str, body: bytes, limits: FormLimits) -> dict[str, Part]:
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise PayloadError("multipart form has no boundary")
    collector = _Collector(limits)
    try:
        parser = MultipartParser(
            boundary,
            collector.callbacks(),
            max_header_count=limits.part_headers,
            max_header_size=limits.header_bytes,
        )
        parser.write(body)
    except FormParserError as exc:
        raise PayloadError(f"malformed multipart form: {exc}") from exc
    if not collector.ended:
        raise PayloadError("multipart form ends before its closing boundary")
    return collector.fields


@dataclass
class _Collector:
    """Gathers the parts the streaming parser reports, enforcing the caps as it goes."""

    limits: FormLimits
    fields: dict[str, Part] = field(default_factory=dict)
    ended: bool = False
    _count: int = 0
    _headers: dict[str, str] = field(default_factory=dict)
    _name: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _data: bytearray = field(default_factory=bytearray)

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self._count += 1
        if self._count > self.limits.fields:
            raise PayloadError(f"form has more than {self.limits.fields} fields")
        self._headers.clear()
        self._data.clear()

    def _header_end(self) -> None:
        name = self._name.decode("latin-1").strip().lower()
        self._headers[name] = self._value.decode("latin-1").strip()
        self._name.clear()
        self._value.clear()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if len(self._data) + end - start > self.limits.part_bytes:
            raise PayloadError(f"a form field is over {self.limits.part_bytes} bytes")
        self._data.extend(data[start:end])

    def _part_end(self) -> None:
        params = parse_options_header(self._headers.get("content-disposition"))[1]
        name, filename = _utf8(params.get(b"name")), _utf8(params.get(b"filename"))
        if name is not None:
            self.fields[name] = Part(bytes(self._data), self._headers.get("content-type"), filename)

    def _end(self) -> None:
        self.ended = True


def _utf8(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("a multipart form field name is not UTF-8") from exc
