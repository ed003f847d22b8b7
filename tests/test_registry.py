import pytest

from chatbridge import UnknownChannelError, channel_names, load_channel
from chatbridge.whatsapp import WhatsAppChannel


def test_builtins_register_through_entry_points() -> None:
    assert "whatsapp" in channel_names()
    assert load_channel("whatsapp") is WhatsAppChannel


def test_unknown_channel_names_the_installed_ones() -> None:
    with pytest.raises(UnknownChannelError, match=r"installed: .*whatsapp"):
        load_channel("carrier-pigeon")
