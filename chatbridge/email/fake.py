"""A stand-in mail transport that keeps what it is given (the real SMTP path is tested
against a local aiosmtpd server)."""

from __future__ import annotations

from email.message import EmailMessage

from chatbridge.plugin.fake import FakeAPI


class FakeMailer(FakeAPI):
    """Records every message handed to it in ``sent``."""

    hosts = ()

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[EmailMessage] = []

    @property
    def received(self) -> int:
        return len(self.sent)

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)
