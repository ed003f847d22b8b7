"""Facebook Messenger channel (Messenger Platform), shared with Instagram messaging."""

from chatbridge.messenger.channel import MessengerChannel, MessengerConfig

__all__ = ["MessengerChannel", "MessengerConfig"]
