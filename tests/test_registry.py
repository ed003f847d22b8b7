import pytest

from chatbridge import UnknownChannelError, channel_names, load_channel
from chatbridge.whatsapp import WhatsAppChannel


def test_builtins_register_through_entry_points() -> None:
    assert "whatsapp" in channel_names()
    assert load_channel("whatsapp") is WhatsAppChannel


def test_unknown_channel_names_the_installed_ones() -> None:
    with pytest.raises(UnknownChannelError, match=r"installed: .*whatsapp"):
        load_channel("carrier-pigeon")


def test_a_name_two_packages_register_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from chatbridge import ConfigurationError, registry

    def twice(group: str, name: str) -> list[EntryPoint]:
        return [EntryPoint(name, f"{package}:Channel", group) for package in ("one", "two")]

    monkeypatch.setattr(registry, "entry_points", twice)
    with pytest.raises(ConfigurationError, match="several packages register the channel"):
        load_channel("whatsapp")


def test_an_abstract_channel_is_not_loadable(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from chatbridge import ConfigurationError, registry

    def base(group: str, name: str) -> list[EntryPoint]:
        return [EntryPoint(name, "chatbridge.sms.channel:SmsChannel", group)]

    monkeypatch.setattr(registry, "entry_points", base)
    with pytest.raises(ConfigurationError, match="concrete Channel class"):
        load_channel("sms")
