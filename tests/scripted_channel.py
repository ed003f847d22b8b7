"""A channel whose deliveries a test scripts: what each send does (accepted with an id,
refused, failed, lost, or killing the process), and every message it delivered."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from chatbridge.errors import DeliveryUnknownError, ProviderUnavailableError
from chatbridge.models import Message, Receipt
from chatbridge.plugin import Channel, PolicyRules, WebhookRequest, WebhookResult


class _Config(BaseModel):
    pass


class Crash(BaseException):
    """Stands for the process dying at that point (no handler catches it)."""


class Scripted(Channel):
    """A channel named ``chat`` with WhatsApp's kind of window (24 hours, templates
    outside it). ``script`` holds what the next sends do: "fail", "unknown", "crash"
    (delivered, then the process dies) or "crash-before" (dies before delivering)."""

    name = "chat"
    config_type = _Config
    rules = PolicyRules(window=timedelta(hours=24))

    def __init__(self, **options: Any) -> None:
        super().__init__(_Config(), **options)
        self.delivered: list[Message] = []
        self.script: list[str] = []
        self._ids = itertools.count(1)

    async def _receive(self, request: WebhookRequest) -> WebhookResult:
        return WebhookResult()

    async def _deliver(self, message: Message) -> Receipt:
        step = self.script.pop(0) if self.script else "ok"
        if step == "crash-before":
            raise Crash
        if step == "fail":
            raise ProviderUnavailableError(f"{self.name} is down", provider=self.name)
        self.delivered.append(message)
        if step == "unknown":
            raise DeliveryUnknownError("no answer", provider=self.name)
        if step == "crash":
            raise Crash
        return self._receipt(message.contact, f"{self.name}-{next(self._ids)}", {})


class Mail(Scripted):
    """An email-like channel: no window."""

    name = "mail"
    rules = PolicyRules()


def channels(**options: Any) -> tuple[Scripted, Mail]:
    return Scripted(**options), Mail(**options)


Factory = Callable[..., tuple[Scripted, Mail]]
