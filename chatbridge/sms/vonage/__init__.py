"""SMS through Vonage."""

from chatbridge.sms.vonage.channel import VonageChannel, VonageConfig

__all__ = ["VonageChannel", "VonageConfig"]
