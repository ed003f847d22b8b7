"""RFC 5322 / MIME: inbound messages to the common model, outbound messages to MIME.

Parsing uses the standard library's ``email`` package with the modern ``default``
policy (charsets, ``get_body``), after :mod:`~chatbridge.email.shape` checked the
message's caps. Headers are read as unstructured text, each parsed once per message:
the stdlib's structured header parser is quadratic and recursive on hostile input, and
the sender is taken from the raw ``From`` with ``getaddresses``. Threading follows RFC
5322 section 3.6.4: the thread key is the first id of ``References`` (the thread's
root), else ``In-Reply-To``, else the message's own ``Message-ID``.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parsedate_to_datetime
from typing import Any, cast

from chatbridge.email import shape
from chatbridge.email.quotes import strip_quoted
from chatbridge.errors import InvalidAddressError, MessageInvalidError, PayloadError
from chatbridge.models import Direction, Media, MediaKind, Message
from chatbridge.plugin.parsing import Inbound

_MSG_ID = re.compile(r"<([^<>\s]+)>")
#: An addr-spec with a dot-atom local part (RFC 5322 section 3.4.1; UTF-8 letters as
#: RFC 6532 allows) and a domain of letter-digit-hyphen labels.
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_MAILBOX = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_MEDIA_KINDS = {"image": MediaKind.IMAGE, "audio": MediaKind.AUDIO, "video": MediaKind.VIDEO}


def message_ids(value: str | None) -> list[str]:
    """The ids in a Message-ID / In-Reply-To / References header, without brackets."""
    return _MSG_ID.findall(value or "")


def thread_key(references: list[str], in_reply_to: str | None, own_id: str | None) -> str | None:
    """The conversation key: the thread's root id (RFC 5322 section 3.6.4)."""
    return references[0] if references else in_reply_to or own_id


def mailbox(address: str) -> str:
    """``address`` as one bare mailbox, lowercased; InvalidAddressError for a list,
    CR/LF or anything but ``local@domain``."""
    if "\r" in address or "\n" in address:
        raise InvalidAddressError(f"email address {address!r} contains CR or LF")
    value = address.strip()
    if "," in value or ";" in value:
        raise InvalidAddressError(f"{address!r} is a list; an email identity is one mailbox")
    local = value.rpartition("@")[0]
    if len(value) > 254 or len(local) > 64 or not _MAILBOX.fullmatch(value):
        raise InvalidAddressError(f"{address!r} is not one email address (local@domain)")
    return value.lower()


def sender_mailbox(value: str) -> str | None:
    """The first valid mailbox (see :func:`mailbox`) in a ``From`` or sender value."""
    if len(value) > shape.MAX_HEADER_BYTES:
        return None
    try:
        addresses = getaddresses([value])
    except RecursionError:
        return None
    for _, address in addresses:
        try:
            return mailbox(address)
        except InvalidAddressError:
            continue
    return None


class _MimeHeader(UnstructuredHeader):
    """A MIME structure header (Content-Type, -Disposition, -Transfer-Encoding) as
    sent: the message reads it by string splitting, like the compat32 policy, so it
    means exactly what :mod:`~chatbridge.email.shape` saw."""

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        super().parse(value, kwds)
        kwds["decoded"] = value

    @property
    def content_disposition(self) -> str | None:
        return str(self).partition(";")[0].strip().lower() or None


_HEADERS = HeaderRegistry(use_default_map=False)
for _name in ("content-type", "content-disposition", "content-transfer-encoding"):
    _HEADERS.map_to_type(_name, cast(type[BaseHeader], _MimeHeader))


def _reading_policy() -> EmailPolicy[EmailMessage]:
    """The ``default`` policy with unstructured headers, each parsed once."""
    return policy.default.clone(header_factory=functools.cache(_HEADERS))


def parse_message(raw: bytes, inbound: Inbound) -> Message:
    """The common-model message of one raw RFC 5322 email. CPU-bound: callers on an
    event loop run it in a worker thread."""
    shape.check(raw)
    try:
        parsed = BytesParser(policy=_reading_policy()).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        return _message(parsed, inbound)
    except (ValueError, TypeError, LookupError, AttributeError, IndexError, RecursionError) as exc:
        raise PayloadError(f"not a readable email: {type(exc).__name__}: {exc}") from exc


def _message(parsed: EmailMessage, inbound: Inbound) -> Message:
    sender = sender_mailbox(next((v for k, v in parsed.raw_items() if k.lower() == "from"), ""))
    if sender is None:
        raise PayloadError("email has no valid From address")
    own_id = next(iter(message_ids(parsed.get("Message-ID"))), None)
    references = message_ids(parsed.get("References"))
    in_reply_to = next(iter(message_ids(parsed.get("In-Reply-To"))), None)
    text = _body(parsed, "plain")
    subject = parsed.get("Subject")
    return Message(
        contact=inbound.identity(sender),
        direction=Direction.INBOUND,
        id=own_id,
        timestamp=_date(parsed.get("Date"), inbound.received_at),
        subject=str(subject) if subject is not None else None,
        text=text,
        stripped_text=strip_quoted(text) if text else None,
        html=_body(parsed, "html"),
        media=[_attachment(part) for part in _attachment_parts(parsed)],
        reply_to=in_reply_to,
        thread=thread_key(references, in_reply_to, own_id),
        raw={"headers": [[k, str(v)] for k, v in parsed.items()]},
    )


def _body(parsed: EmailMessage, subtype: str) -> str | None:
    part = parsed.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    return content if isinstance(content, str) else content.decode("utf-8", errors="replace")


def _attachment_parts(parsed: EmailMessage) -> list[Any]:
    """The attachment parts, in order; a multipart attached (a nested multipart/mixed)
    contributes its leaf parts."""
    parts: list[Any] = []
    pending: list[Any] = list(parsed.iter_attachments())
    while pending:
        part = pending.pop(0)
        if part.get_content_maintype() == "multipart":
            pending[:0] = part.iter_parts()
        else:
            parts.append(part)
    return parts


def _attachment(part: Any) -> Media:
    content = part.get_content()
    data = content.encode() if isinstance(content, str) else bytes(content)
    mime_type = part.get_content_type()
    return Media(
        kind=_MEDIA_KINDS.get(part.get_content_maintype(), MediaKind.FILE),
        mime_type=mime_type,
        data=data,
        size=len(data),
        filename=_filename(part),
    )


def _filename(part: Any) -> str | None:
    """The attachment's file name, with RFC 2047 encoded words decoded."""
    name = part.get_filename()
    return str(_HEADERS("filename", name)) if name and "=?" in name else name


def _date(value: object, fallback: datetime) -> datetime:
    try:
        parsed = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is None:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def new_message_id(domain: str) -> str:
    """A fresh Message-ID (without brackets) in ``domain``."""
    return make_msgid(domain=domain)[1:-1]


def build_email(
    message: Message, sender: str, sender_name: str | None, message_id: str, now: datetime
) -> EmailMessage:
    """The MIME message for ``message``: text and HTML alternatives, attachments, and
    In-Reply-To / References so the reply lands in the customer's thread."""
    email = EmailMessage(policy=policy.SMTP)
    email["From"] = formataddr((sender_name or "", sender))
    email["To"] = message.contact.address
    if message.subject:
        email["Subject"] = message.subject
    email["Date"] = format_datetime(now)
    email["Message-ID"] = f"<{message_id}>"
    if message.reply_to:
        email["In-Reply-To"] = f"<{message.reply_to}>"
    chain = list(dict.fromkeys(i for i in (message.thread, message.reply_to) if i))
    if chain:
        email["References"] = " ".join(f"<{i}>" for i in chain)
    email.set_content(message.text or "")
    if message.html:
        email.add_alternative(message.html, subtype="html")
    for media in message.media:
        if media.data is None:
            raise MessageInvalidError("email attachments need their bytes in media.data")
        maintype, _, subtype = (media.mime_type or "application/octet-stream").partition("/")
        email.add_attachment(
            media.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=media.filename or "attachment",
        )
    return email
