"""The one registry of installed channels and their kits, through entry points.

Built-in channels register exactly like third-party ones, in their package metadata::

    [project.entry-points."chatbridge.channels"]
    acme = "acme_chat:AcmeChannel"

    [project.entry-points."chatbridge.kits"]      # the conformance suite and the sandbox
    acme = "acme_chat:kit"

A kit is registered under its channel's name. The config loader (``serve``), the CLI,
the sandbox and the conformance plugin all look channels and kits up here.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from chatbridge.channel import Channel
from chatbridge.errors import ConfigurationError, UnknownChannelError

if TYPE_CHECKING:
    from chatbridge.plugin.kit import ChannelKit

CHANNELS = "chatbridge.channels"
KITS = "chatbridge.kits"


def channel_names() -> list[str]:
    """The names of every installed channel, sorted."""
    return sorted({ep.name for ep in entry_points(group=CHANNELS)})


def load_channel(name: str) -> type[Channel]:
    """The channel class registered as ``name``."""
    matches = entry_points(group=CHANNELS, name=name)
    if not matches:
        raise UnknownChannelError(
            f"no channel named {name!r} is installed; installed: {', '.join(channel_names())}"
        )
    cls = next(iter(matches)).load()
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise ConfigurationError(f"entry point {name!r} does not name a Channel subclass")
    return cls


def kit_names() -> list[str]:
    """The names of every installed kit, sorted."""
    return sorted({ep.name for ep in entry_points(group=KITS)})


def installed_kits() -> dict[str, ChannelKit]:
    """Every installed kit, by name."""
    return {name: load_kit(name) for name in kit_names()}


def load_kit(name: str) -> ChannelKit:
    """The kit registered as ``name``, or ``MODULE:ATTRIBUTE`` for one that is not
    registered. Raises :class:`~chatbridge.errors.UnknownChannelError` naming the
    installed kits."""
    from chatbridge.plugin.kit import ChannelKit

    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            kit = getattr(import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise UnknownChannelError(f"cannot load kit {name}: {exc}") from exc
    else:
        matches = entry_points(group=KITS, name=name)
        if not matches:
            raise UnknownChannelError(
                f"no kit named {name!r} is installed; installed: {', '.join(kit_names())}"
            )
        kit = next(iter(matches)).load()
    if not isinstance(kit, ChannelKit):
        raise ConfigurationError(f"{name} does not name a ChannelKit")
    return kit
