"""Instagram messaging channel: the Messenger Platform's Instagram flavour."""

from chatbridge.instagram.channel import InstagramChannel, InstagramConfig

__all__ = ["InstagramChannel", "InstagramConfig"]
