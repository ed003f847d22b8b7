"""Declarative length and count limits for outbound messages, checked before sending."""

from __future__ import annotations

from collections.abc import Sized

from chatbridge.errors import MessageInvalidError


class Lengths:
    """A channel's length and count checks, with its name given once (``Channel.lengths``)."""

    __slots__ = ("channel",)

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def text(self, what: str, value: str | None, maximum: int) -> None:
        """Raise MessageInvalidError if ``value`` has more than ``maximum`` characters."""
        if value is not None and len(value) > maximum:
            raise MessageInvalidError(
                f"{self.channel} allows at most {maximum} characters in {what}; got {len(value)}"
            )

    def utf8(self, what: str, value: str | None, maximum: int) -> None:
        """Raise MessageInvalidError if ``value`` takes more than ``maximum`` UTF-8 bytes."""
        size = len(value.encode("utf-8", "surrogatepass")) if value is not None else 0
        if size > maximum:
            raise MessageInvalidError(
                f"{self.channel} allows at most {maximum} UTF-8 bytes in {what}; got {size}"
            )

    def upload(self, kind: str, data: bytes, maximum: int) -> None:
        """Raise MessageInvalidError if ``data`` is over the provider's ``maximum`` bytes
        for a ``kind`` upload."""
        if len(data) > maximum:
            raise MessageInvalidError(
                f"{self.channel} {kind} uploads are limited to {maximum} bytes; got {len(data)}"
            )

    def count(self, what: str, items: Sized, maximum: int, minimum: int = 0) -> None:
        """Raise MessageInvalidError unless ``minimum <= len(items) <= maximum``."""
        if not minimum <= len(items) <= maximum:
            raise MessageInvalidError(
                f"{self.channel} allows {minimum} to {maximum} {what}; got {len(items)}"
            )
