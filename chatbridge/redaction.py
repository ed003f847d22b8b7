"""Secrets kept out of errors: the secret values of a config, and text with them
replaced (a provider error that echoes the request must not show the token)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretStr

REDACTED = "[redacted]"


def secret_values(value: object) -> list[str]:
    """The ``SecretStr`` values in ``value`` (a config), nested ones included."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return [secret] if secret else []
    if isinstance(value, BaseModel):
        value = dict(value)
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return [secret for item in value for secret in secret_values(item)]
    return []


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (as is, or URL-encoded) replaced."""
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, REDACTED)
    return text
