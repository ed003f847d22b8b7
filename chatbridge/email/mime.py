"""RFC 5322 / MIME: inbound messages to the common model, outbound messages to MIME.

Parsing uses the standard library's ``email`` package with the modern ``default``
policy (decoded headers, charsets, ``get_body``); threading follows RFC 5322 section
3.6.4: the thread key is the first id of ``References`` (the thread's root), else
``In-Reply-To``, else the message's own ``Message-ID``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, getaddresses, make_msgid, parsedate_to_datetime
from typing import Any

from chatbridge.email.quotes import strip_quoted
from chatbridge.errors import MessageInvalidError, PayloadError
from chatbridge.models import Direction, Identity, Media, MediaKind, Message

CHANNEL = "email"
MAX_PARTS = 200
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_MEDIA_KINDS = {"image": MediaKind.IMAGE, "audio": MediaKind.AUDIO, "video": MediaKind.VIDEO}


def message_ids(value: str | None) -> list[str]:
    """The ids in a Message-ID / In-Reply-To / References header, without brackets."""
    return _MSG_ID.findall(value or "")


def thread_key(references: list[str], in_reply_to: str | None, own_id: str | None) -> str | None:
    """The conversation key: the thread's root id (RFC 5322 section 3.6.4)."""
    return references[0] if references else in_reply_to or own_id


def email_identity(address: str) -> Identity:
    """An email identity; addresses are compared case-insensitively."""
    return Identity(channel=CHANNEL, address=address.strip().lower())


def parse_message(raw: bytes, received_at: datetime) -> Message:
    """The common-model message of one raw RFC 5322 email."""
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        return _message(parsed, received_at)
    except (ValueError, TypeError, LookupError, AttributeError, IndexError) as exc:
        raise PayloadError(f"not a readable email: {type(exc).__name__}: {exc}") from exc


def _message(parsed: EmailMessage, received_at: datetime) -> Message:
    if sum(1 for _ in parsed.walk()) > MAX_PARTS:
        raise PayloadError(f"email has more than {MAX_PARTS} MIME parts")
    senders = [addr for _, addr in getaddresses([str(parsed.get("From", ""))]) if "@" in addr]
    if not senders:
        raise PayloadError("email has no valid From address")
    own_id = next(iter(message_ids(parsed.get("Message-ID"))), None)
    references = message_ids(parsed.get("References"))
    in_reply_to = next(iter(message_ids(parsed.get("In-Reply-To"))), None)
    text = _body(parsed, "plain")
    subject = parsed.get("Subject")
    return Message(
        contact=email_identity(senders[0]),
        direction=Direction.INBOUND,
        id=own_id,
        timestamp=_date(parsed.get("Date"), received_at),
        subject=str(subject) if subject is not None else None,
        text=text,
        stripped_text=strip_quoted(text) if text else None,
        html=_body(parsed, "html"),
        media=[_attachment(part) for part in parsed.iter_attachments()],
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


def _attachment(part: Any) -> Media:
    content = part.get_content()
    data = content.encode() if isinstance(content, str) else bytes(content)
    mime_type = part.get_content_type()
    return Media(
        kind=_MEDIA_KINDS.get(part.get_content_maintype(), MediaKind.FILE),
        mime_type=mime_type,
        data=data,
        size=len(data),
        filename=part.get_filename(),
    )


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
