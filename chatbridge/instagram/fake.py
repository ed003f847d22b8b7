"""The Messenger fake, refusing out-of-window sends with Instagram's error."""

from __future__ import annotations

from chatbridge.messenger.channel import MessengerConfig
from chatbridge.messenger.errors import INSTAGRAM_OUTSIDE_WINDOW
from chatbridge.messenger.fake import FakeMessengerAPI, GraphError

OUTSIDE_WINDOW = GraphError(
    *INSTAGRAM_OUTSIDE_WINDOW, "(#10) This message is sent outside of allowed window."
)


def fake_instagram_api(config: MessengerConfig) -> FakeMessengerAPI:
    """A fresh fake Instagram messaging API for ``config``."""
    return FakeMessengerAPI(config, outside_window=OUTSIDE_WINDOW)
