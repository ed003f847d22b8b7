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

import inspect
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

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
    cls = _entry_point(CHANNELS, name, "channel", channel_names).load()
    if not (isinstance(cls, type) and issubclass(cls, Channel)) or inspect.isabstract(cls):
        raise ConfigurationError(f"entry point {name!r} does not name a concrete Channel class")
    return cls


def _entry_point(group: str, name: str, what: str, names: Callable[[], list[str]]) -> EntryPoint:
    """The one entry point ``name`` of ``group``; two packages claiming it is an error."""
    matches = {ep.value: ep for ep in entry_points(group=group, name=name)}
    if not matches:
        installed = ", ".join(names()) or "none"
        raise UnknownChannelError(f"no {what} named {name!r} is installed; installed: {installed}")
    if len(matches) > 1:
        raise ConfigurationError(
            f"several packages register the {what} {name!r}: {', '.join(sorted(matches))}"
        )
    return next(iter(matches.values()))


def kit_names() -> list[str]:
    """The names of every installed kit, sorted."""
    return sorted({ep.name for ep in entry_points(group=KITS)})


def installed_kits() -> dict[str, ChannelKit]:
    """Every installed kit, by name."""
    return {name: load_kit(name) for name in kit_names()}


def load_attribute(spec: str, default: str = "") -> Any:
    """The object ``MODULE:ATTRIBUTE`` names (``default`` when it names no attribute).
    ImportError or AttributeError when there is none."""
    module, _, attribute = spec.partition(":")
    return getattr(import_module(module), attribute or default)


def load_kit(name: str) -> ChannelKit:
    """The kit registered as ``name``, or ``MODULE:ATTRIBUTE`` for one that is not
    registered. Raises :class:`~chatbridge.errors.UnknownChannelError` naming the
    installed kits."""
    from chatbridge.plugin.kit import ChannelKit

    if ":" in name:
        try:
            kit = load_attribute(name)
        except (ImportError, AttributeError) as exc:
            raise UnknownChannelError(f"cannot load kit {name}: {exc}") from exc
    else:
        kit = _entry_point(KITS, name, "kit", kit_names).load()
    if not isinstance(kit, ChannelKit):
        raise ConfigurationError(f"{name} does not name a ChannelKit")
    return kit
