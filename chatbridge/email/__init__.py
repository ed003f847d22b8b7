"""Email channel: SMTP out; raw RFC 5322, Mailgun and SendGrid webhooks in."""

from chatbridge.email.channel import EmailChannel, EmailConfig
from chatbridge.email.transport import MailTransport, SmtpSettings, SmtpTransport

__all__ = ["EmailChannel", "EmailConfig", "MailTransport", "SmtpSettings", "SmtpTransport"]
