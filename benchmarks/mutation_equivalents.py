"""Surviving mutants reviewed as equivalent: no request, config or send the provider
could make tells them from the original code. ``benchmarks/mutation.py`` reports a
survivor listed here as "equivalent" and leaves it out of the score; a listed mutant
that is killed is reported as killed (and printed, since the entry is then wrong).

A mutant is listed by its file, the function or attribute mutated, and text of its
mutated line(s) (or, after "-", a line it drops), so entries survive line moves. Each
reason says why it is equivalent.
"""

from __future__ import annotations

from typing import Protocol

HEADER_CASE = "HTTP header names are case-insensitive (WebhookRequest.header lowercases)"
HASH_NAME_CASE = "hash names are case-insensitive to hashlib and hmac (OpenSSL)"
FOR_SECURITY = "usedforsecurity only matters on a FIPS-restricted OpenSSL"
MESSAGE = "changes only the text of an error message"
MISSING_REFUSED = (
    "the default only stands in for a missing value, which is refused either way: "
    "the missing value is checked first, or is signed so no one without the secret "
    "can leave it out"
)

APPID_CHECKED = (
    "moves a bound by the few bytes that would leave no room for the appid, which the "
    "appid check then refuses either way"
)


class _Mutant(Protocol):
    file: str
    name: str
    diff: str


#: (file, function or attribute, text of the mutated line(s), why it is equivalent)
EQUIVALENT: tuple[tuple[str, str, str, str], ...] = (
    # -- signature
    ("chatbridge/plugin/signing.py", "hmac_hex", '"SHA256"', HASH_NAME_CASE),
    ("chatbridge/plugin/signing.py", "hmac_base64", '"SHA256"', HASH_NAME_CASE),
    ("chatbridge/plugin/graph.py", "SIGNATURE_HEADER", '"x-hub-signature-256"', HEADER_CASE),
    ("chatbridge/plugin/graph.py", "SIGNATURE_HEADER", '"X-HUB-SIGNATURE-256"', HEADER_CASE),
    (
        "chatbridge/plugin/graph.py",
        "answer_handshake",
        '"hub.verify_token", "XXXX"',
        "a missing hub.verify_token is compared with the configured token either way",
    ),
    ("chatbridge/whatsapp/channel.py", "WhatsAppChannel._receive", "provider=None", MESSAGE),
    ("chatbridge/messenger/channel.py", "MessengerChannel._receive", "provider=None", MESSAGE),
    ("chatbridge/line/signature.py", "SIGNATURE_HEADER", '"x-line-signature"', HEADER_CASE),
    ("chatbridge/line/signature.py", "SIGNATURE_HEADER", '"X-LINE-SIGNATURE"', HEADER_CASE),
    ("chatbridge/sms/twilio/signature.py", "SIGNATURE_HEADER", '"x-twilio-signature"', HEADER_CASE),
    ("chatbridge/sms/twilio/signature.py", "SIGNATURE_HEADER", '"X-TWILIO-SIGNATURE"', HEADER_CASE),
    ("chatbridge/sms/twilio/signature.py", "sign", '"SHA1"', HASH_NAME_CASE),
    (
        "chatbridge/sms/twilio/signature.py",
        "url_variants",
        'netloc.partition("@")',
        "the URL as given is tried too, and a netloc holds at most one @ (RFC 3986 3.2.1: "
        "one in the userinfo is percent-encoded), so both cut the same credentials",
    ),
    (
        "chatbridge/sms/twilio/signature.py",
        "url_variants",
        "(variant == parts.netloc) and False",
        "the shortcut only spares rebuilding the URL as given, which is how it was tried "
        "before 2026-12-02: urlunsplit of its own parts gives it back, but for a trailing "
        "empty '?' or '#' (then the shortcut alone tries it as sent)",
    ),
    ("chatbridge/sms/vonage/signature.py", "sms_signature", "usedforsecurity=None", FOR_SECURITY),
    ("chatbridge/sms/vonage/signature.py", "sms_signature", "usedforsecurity=True", FOR_SECURITY),
    ("chatbridge/sms/vonage/signature.py", "sms_signature", "secret).encode(), )", FOR_SECURITY),
    ("chatbridge/sms/vonage/signature.py", "verify_sms", '"timestamp", None', MISSING_REFUSED),
    ("chatbridge/sms/vonage/signature.py", "verify_sms", '"timestamp", )', MISSING_REFUSED),
    ("chatbridge/sms/vonage/signature.py", "verify_sms", '"timestamp", "XXXX"', MISSING_REFUSED),
    ("chatbridge/sms/vonage/signature.py", "verify_jwt", "type(None).__name__", MESSAGE),
    *(
        (
            "chatbridge/sms/vonage/signature.py",
            "verify_jwt",
            f'"payload_hash", {default}',
            MISSING_REFUSED,
        )
        for default in ("None", ")", '"XXXX"')
    ),
    (
        "chatbridge/sms/vonage/signature.py",
        "verify_sms",
        "given.lower() if (given) or True",
        "the channel refuses a webhook without sig before",
    ),
    ("chatbridge/sms/vonage/channel.py", "VonageChannel._parse", '"AUTHORIZATION"', HEADER_CASE),
    ("chatbridge/sms/vonage/channel.py", "VonageChannel._parse", 'or "XXXX"', MISSING_REFUSED),
    ("chatbridge/email/signature.py", "SENDGRID_SIGNATURE", "WEBHOOK-SIGNATURE", HEADER_CASE),
    ("chatbridge/email/signature.py", "SENDGRID_SIGNATURE", "webhook-signature", HEADER_CASE),
    ("chatbridge/email/signature.py", "SENDGRID_TIMESTAMP", "WEBHOOK-TIMESTAMP", HEADER_CASE),
    ("chatbridge/email/signature.py", "SENDGRID_TIMESTAMP", "webhook-timestamp", HEADER_CASE),
    ("chatbridge/email/signature.py", "check_timestamp", 'timestamp or "XXXX"', MISSING_REFUSED),
    ("chatbridge/email/channel.py", "EmailChannel._receive", '"CONTENT-TYPE"', HEADER_CASE),
    ("chatbridge/email/channel.py", "EmailChannel._receive", 'or "XXXX"', MISSING_REFUSED),
    (
        "chatbridge/email/channel.py",
        "EmailChannel._verify_mailgun",
        "3 * self.config.timestamp_tolerance",
        "a spent token is remembered longer than its timestamp is accepted either way",
    ),
    ("chatbridge/wechat/signature.py", "sha1_signature", "usedforsecurity=None", FOR_SECURITY),
    ("chatbridge/wechat/signature.py", "sha1_signature", "usedforsecurity=True", FOR_SECURITY),
    ("chatbridge/wechat/signature.py", "sha1_signature", ".encode(), )", FOR_SECURITY),
    *(
        ("chatbridge/wechat/signature.py", function, f'"{name}", {default}', MISSING_REFUSED)
        for function in ("verify_signature", "verify_msg_signature")
        for name in ("timestamp", "nonce")
        for default in ("None", ")", '"XXXX"')
    ),
    *(
        ("chatbridge/wechat/crypto.py", "MessageCrypto.decrypt", bound, APPID_CHECKED)
        for bound in (
            "len(plain) <= 20 + padding",
            "len(plain) < 21 + padding",
            "length >= len(content) - 4",
            "length > len(content) + 4",
            "length > len(content) - 5",
        )
    ),
    (
        "chatbridge/wechat/channel.py",
        "WeChatChannel._receive",
        "events=parse_pushes(document, self.inbound()),\n+            )",
        "WeChat takes an empty answer like `success` (docs/wechat.md)",
    ),
    # -- policy
    ("chatbridge/sms/keywords.py", "Keyword.OPT_OUT", 'OPT_OUT = "', "Keyword's values are unused"),
    ("chatbridge/sms/keywords.py", "Keyword.OPT_IN", 'OPT_IN = "', "Keyword's values are unused"),
    ("chatbridge/sms/keywords.py", "Keyword.HELP", 'HELP = "', "Keyword's values are unused"),
    (
        "chatbridge/sms/keywords.py",
        "keyword_of",
        '(text or "XXXX")',
        "a message without text is no keyword either way",
    ),
    ("chatbridge/sms/channel.py", "_keyword_events", "reason = f", MESSAGE),
    (
        "chatbridge/sms/channel.py",
        "SmsChannel._keyword_reply",
        "replies.get(keyword) if (keyword) or True",
        "replies has no None key: no keyword gets no reply either way",
    ),
    (
        "chatbridge/messenger/channel.py",
        "MessengerChannel.rules",
        "-outside_window=frozenset(),",
        "templates are invalid on Messenger, whatever the window allows",
    ),
    (
        "chatbridge/line/channel.py",
        "LineChannel._reply_token",
        "state.reply_token is None and state.reply_token_at is None",
        "a reply token and its time are always stored together",
    ),
)


def equivalence(mutant: _Mutant) -> str | None:
    """Why ``mutant`` is equivalent, if it is listed."""
    lines = mutant.diff.splitlines()
    added = [line[1:] for line in lines if line.startswith("+")]
    removed = [line[1:] for line in lines if line.startswith("-")]
    for file, name, mutated, why in EQUIVALENT:
        if mutant.file != file or mutant.name != name:
            continue
        if mutated.startswith("-"):  # the mutant drops this line and changes nothing else
            if [line for line in removed if line.strip() != mutated[1:]] == added != removed:
                return why
        elif mutated in "\n+".join(added):
            return why
    return None
