"""Instagram messaging: the Messenger channel with what Instagram does differently.

``page_id`` is the id the Send API is called on: the Facebook Page linked to the
Instagram professional account (``graph.facebook.com``, Facebook Login), or the
Instagram professional account id (``base_url="https://graph.instagram.com"``,
Instagram Login). Sources: docs/instagram.md.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

from chatbridge.messenger.channel import MessengerChannel, MessengerConfig
from chatbridge.messenger.errors import INSTAGRAM_CODES
from chatbridge.messenger.outbound import TextLimit

#: The configuration is the Messenger Platform's (see the module docstring for ids).
InstagramConfig = MessengerConfig
_MB = 1024 * 1024


class InstagramChannel(MessengerChannel):
    """Instagram Direct messages through the Messenger Platform.

    Policy: free-form messages within 24 hours of the customer's last message; the
    HUMAN_AGENT tag (``Message.tag``) within 7 days.
    """

    name = "instagram"
    error_codes = INSTAGRAM_CODES
    webhook_object = "instagram"
    #: "Message text must be UTF-8 and be a 1000 bytes or less."
    text_limit = TextLimit(1000, "bytes")
    rules = MessengerChannel.rules.model_copy(update={"tags": {"HUMAN_AGENT": timedelta(days=7)}})
    upload_max_bytes = MappingProxyType(
        {"image": 8 * _MB, "video": 25 * _MB, "audio": 25 * _MB, "file": 25 * _MB}
    )
    upload_fields = MappingProxyType({"platform": "instagram"})
    saved_attachment = "media_share"
