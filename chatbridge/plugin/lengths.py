"""Declarative length and count limits for outbound messages, checked before sending."""

from __future__ import annotations

from collections.abc import Sized

from chatbridge.errors import MessageInvalidError


def check_length(channel: str, what: str, value: str | None, maximum: int) -> None:
    """Raise MessageInvalidError if ``value`` has more than ``maximum`` characters."""
    if value is not None and len(value) > maximum:
        raise MessageInvalidError(
            f"{channel} allows at most {maximum} characters in {what}; got {len(value)}"
        )


def check_count(channel: str, what: str, items: Sized, maximum: int, minimum: int = 0) -> None:
    """Raise MessageInvalidError unless ``minimum <= len(items) <= maximum``."""
    if not minimum <= len(items) <= maximum:
        raise MessageInvalidError(
            f"{channel} allows {minimum} to {maximum} {what}; got {len(items)}"
        )


class Lengths:
    """A channel's length and count checks, with its name given once (``Channel.lengths``)."""

    __slots__ = ("channel",)

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def text(self, what: str, value: str | None, maximum: int) -> None:
        """Raise MessageInvalidError if ``value`` has more than ``maximum`` characters."""
        check_length(self.channel, what, value, maximum)

    def count(self, what: str, items: Sized, maximum: int, minimum: int = 0) -> None:
        """Raise MessageInvalidError unless ``minimum <= len(items) <= maximum``."""
        check_count(self.channel, what, items, maximum, minimum)
