"""WhatsApp Cloud API channel."""

from chatbridge.whatsapp.channel import WhatsAppChannel, WhatsAppConfig

__all__ = ["WhatsAppChannel", "WhatsAppConfig"]
