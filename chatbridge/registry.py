"""Channel discovery through the ``chatbridge.channels`` entry point group.

Built-in channels register exactly like third-party ones, in their package metadata::

    [project.entry-points."chatbridge.channels"]
    mychannel = "my_package:MyChannel"
"""

from __future__ import annotations

from importlib.metadata import entry_points

from chatbridge.channel import Channel
from chatbridge.errors import ConfigurationError, UnknownChannelError

GROUP = "chatbridge.channels"


def channel_names() -> list[str]:
    """The names of every installed channel, sorted."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load_channel(name: str) -> type[Channel]:
    """The channel class registered as ``name``."""
    matches = entry_points(group=GROUP, name=name)
    if not matches:
        raise UnknownChannelError(
            f"no channel named {name!r} is installed; installed: {', '.join(channel_names())}"
        )
    cls = next(iter(matches)).load()
    if not (isinstance(cls, type) and issubclass(cls, Channel)):
        raise ConfigurationError(f"entry point {name!r} does not name a Channel subclass")
    return cls
