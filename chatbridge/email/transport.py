"""How outbound email leaves: SMTP through aiosmtplib, behind a small protocol so tests
and fakes can stand in."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Literal, Protocol

import aiosmtplib
from pydantic import BaseModel, ConfigDict, SecretStr

from chatbridge.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderPolicyError,
    ProviderUnavailableError,
)


class MailTransport(Protocol):
    """Something that delivers a finished MIME message."""

    async def send(self, message: EmailMessage) -> None: ...


class SmtpSettings(BaseModel):
    """An SMTP submission server. ``security`` is ``starttls`` (port 587), ``tls``
    (implicit TLS, port 465) or ``none`` (local relays and tests only)."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 587
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    timeout: float = 30.0
    validate_certs: bool = True


class SmtpTransport:
    """Sends over SMTP; SMTP failures become chatbridge errors."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self.settings
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                timeout=settings.timeout,
                validate_certs=settings.validate_certs,
            )
        except aiosmtplib.SMTPException as exc:
            raise smtp_error(exc) from exc


def smtp_error(exc: aiosmtplib.SMTPException) -> ProviderError:
    """The typed error for an SMTP failure (4xx temporary, 5xx permanent)."""
    kwargs: dict[str, Any] = {"provider": "smtp", "provider_message": str(exc)}
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return ProviderAuthError(f"SMTP authentication failed: {exc}", code=exc.code, **kwargs)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return ProviderPolicyError(
            f"SMTP server refused the recipient: {exc}", code=codes[0] if codes else None, **kwargs
        )
    code = getattr(exc, "code", None)
    if isinstance(code, int) and 500 <= code < 600:
        return ProviderError(f"SMTP server refused the message: {exc}", code=code, **kwargs)
    return ProviderUnavailableError(f"SMTP delivery failed: {exc}", code=code, **kwargs)
