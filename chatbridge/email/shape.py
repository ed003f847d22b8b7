"""Caps on a raw email's headers and MIME tree, checked before the standard library
parses it.

The ``email`` package's structured header parser is quadratic (a 64 KiB ``From:``
takes minutes) and recursive, and its MIME parser recurses once per nesting level. One
pass over the raw bytes reads every header block and boundary line the way the
stdlib's feedparser splits them (lines end at CRLF, CR or LF; a header block ends at a
blank line or the first line that is not a header field), so a hostile message is
refused after work linear in its size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from chatbridge.errors import PayloadError

#: Header fields in one header block (the message's or a part's).
MAX_HEADERS = 500
#: Bytes of one header field, continuation lines included.
MAX_HEADER_BYTES = 16 * 1024
#: Bytes of all header blocks of the message together.
MAX_TOTAL_HEADER_BYTES = 256 * 1024
#: Addresses in one address header, counted as its commas plus one.
MAX_ADDRESSES = 1000
#: Nesting of multipart and message/* parts.
MAX_DEPTH = 32
#: MIME parts, the message itself included.
MAX_PARTS = 200

ADDRESS_HEADERS = frozenset(
    {"from", "sender", "reply-to", "to", "cc", "bcc"}
    | {f"resent-{name}" for name in ("from", "sender", "to", "cc", "bcc")}
)
_LINE_END = re.compile(rb"\r\n|\r|\n")
_DASHES = re.compile(rb"[\r\n]--")
#: The feedparser's header line (``headerRE``): a field name and colon, a continuation
#: or an mbox ``From `` line.
_FIELD = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")


def check(raw: bytes) -> None:
    """Raise PayloadError if ``raw``'s headers or MIME structure are over the caps."""
    _Scan(raw).run()


@dataclass
class _Open:
    """An enclosing part: a multipart with its boundary, or a message/* part (None)."""

    boundary: bytes | None
    digest: bool = False


class _Scan:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0
        self.budget = MAX_TOTAL_HEADER_BYTES
        self.parts = 0
        self.open: list[_Open] = []

    def run(self) -> None:
        default = "text/plain"
        while True:
            self._part(default)
            enclosing = self._next_part()
            if enclosing is None:
                return
            default = "message/rfc822" if enclosing.digest else "text/plain"

    def _part(self, default_type: str) -> None:
        """One part from its header block on, with the messages nested in message/*."""
        while True:
            self._count_part()
            content_type, boundary = _content_type(self._header_block(), default_type)
            maintype = content_type.partition("/")[0]
            if content_type == "message/delivery-status":
                self._status_blocks()
            elif maintype == "message":
                self._push(_Open(None))
                default_type = "text/plain"
                continue
            elif maintype == "multipart" and boundary is not None:
                self._push(_Open(boundary, content_type == "multipart/digest"))
            return

    def _next_part(self) -> _Open | None:
        """Move past the next boundary line that opens a part of an enclosing multipart,
        and return that multipart; None when no multipart is open any more."""
        while any(o.boundary is not None for o in self.open):
            start = self._dashes()
            if start is None:
                return None
            line, self.pos = self._line(start)
            found = self._delimiter(line)
            if found is None:
                continue
            index, closing = found
            if not closing:
                del self.open[index + 1 :]
                return self.open[index]
            del self.open[index:]
        return None

    def _status_blocks(self) -> None:
        """message/delivery-status: blank-line separated blocks, each a part of its own."""
        while self.pos < len(self.raw):
            line, _ = self._line(self.pos)
            if self._delimiter(line) is not None:
                return
            self._count_part()
            self._header_block(lenient=True)

    def _header_block(self, lenient: bool = False) -> list[bytes]:
        """The unfolded fields of the header block at ``pos``; ``pos`` moves to its
        body. ``lenient`` reads non-field lines as part of the block."""
        fields: list[bytes] = []
        while self.pos < len(self.raw):
            line, end = self._line(self.pos)
            if not line:
                self.pos = end
                break
            if not (lenient or _FIELD.match(line)) or self._delimiter(line) is not None:
                break
            self.budget -= end - self.pos
            if self.budget < 0:
                raise PayloadError(f"email headers are over {MAX_TOTAL_HEADER_BYTES} bytes")
            self.pos = end
            if fields and line[:1] in (b" ", b"\t"):
                fields[-1] += line
            else:
                fields.append(line)
            _check_field(fields[-1], len(fields))
        return fields

    def _delimiter(self, line: bytes) -> tuple[int, bool] | None:
        """Which open multipart's boundary ``line`` is, and whether it closes it."""
        if not line.startswith(b"--"):
            return None
        line = line.rstrip(b" \t")
        for index in range(len(self.open) - 1, -1, -1):
            boundary = self.open[index].boundary
            if boundary is not None and line.startswith(boundary, 2):
                rest = line[2 + len(boundary) :]
                if rest in (b"", b"--"):
                    return index, rest == b"--"
        return None

    def _dashes(self) -> int | None:
        """Where the next line starting with ``--`` begins, at or after ``pos``."""
        if self.raw.startswith(b"--", self.pos):
            return self.pos
        found = _DASHES.search(self.raw, self.pos)
        return None if found is None else found.start() + 1

    def _line(self, start: int) -> tuple[bytes, int]:
        """The line at ``start`` without its end, and where the next line begins."""
        found = _LINE_END.search(self.raw, start)
        if found is None:
            return self.raw[start:], len(self.raw)
        return self.raw[start : found.start()], found.end()

    def _push(self, part: _Open) -> None:
        self.open.append(part)
        if len(self.open) > MAX_DEPTH:
            raise PayloadError(f"email nests MIME parts deeper than {MAX_DEPTH} levels")

    def _count_part(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise PayloadError(f"email has more than {MAX_PARTS} MIME parts")


def _check_field(field: bytes, count: int) -> None:
    if count > MAX_HEADERS:
        raise PayloadError(f"email has more than {MAX_HEADERS} headers in one block")
    if len(field) > MAX_HEADER_BYTES:
        raise PayloadError(f"an email header is over {MAX_HEADER_BYTES} bytes")
    name = _name(field)
    if name in ADDRESS_HEADERS and field.count(b",") >= MAX_ADDRESSES:
        raise PayloadError(f"email {name.title()}: has more than {MAX_ADDRESSES} addresses")


def _name(field: bytes) -> str:
    return field.partition(b":")[0].strip().lower().decode("latin-1")


def _content_type(fields: list[bytes], default_type: str) -> tuple[str, bytes | None]:
    """The content type and boundary the stdlib reads from a part's first Content-Type,
    found with the stdlib's own parameter splitting (on a compat32 message)."""
    field = next((f for f in fields if _name(f) == "content-type"), None)
    probe = Message()
    probe.set_default_type(default_type)
    if field is not None:
        probe["Content-Type"] = field.partition(b":")[2].decode("ascii", "surrogateescape").strip()
    boundary = probe.get_boundary()
    try:
        encoded = None if boundary is None else boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        encoded = None
    return probe.get_content_type(), encoded
