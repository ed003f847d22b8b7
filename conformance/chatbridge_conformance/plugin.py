"""pytest plugin: parametrizes the ``kit`` fixture of :class:`ConformanceSuite` tests.

Kits come from the suite class's ``kits`` attribute when it sets one, else from the
``chatbridge.kits`` entry point group plus ``--chatbridge-kit module:attribute``
(repeatable); ``--chatbridge-only NAME`` keeps only the named kits.

This module is loaded by every pytest run where chatbridge is installed, so it imports
nothing beyond chatbridge itself: respx and hypothesis are needed only by the suite.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

import pytest

from chatbridge.plugin.kit import ChannelKit

KITS_GROUP = "chatbridge.kits"


def installed_kits() -> dict[str, ChannelKit]:
    """Every kit registered under the ``chatbridge.kits`` entry point group, by name."""
    return {ep.name: ep.load() for ep in entry_points(group=KITS_GROUP)}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatbridge", "chatbridge channel conformance")
    group.addoption(
        "--chatbridge-kit",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="a ChannelKit to run the conformance suite on (repeatable)",
    )
    group.addoption(
        "--chatbridge-sandbox",
        default=None,
        metavar="URL",
        help="run sends against a running `chatbridge sandbox` at URL (built-in kits)",
    )
    group.addoption(
        "--chatbridge-only",
        action="append",
        default=[],
        metavar="NAME",
        help="run the conformance suite only on the kit(s) with this name",
    )


def _load(spec: str) -> ChannelKit:
    module, _, attribute = spec.partition(":")
    kit = getattr(import_module(module), attribute or "kit")
    if not isinstance(kit, ChannelKit):
        raise pytest.UsageError(f"{spec} is not a ChannelKit")
    return kit


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.cls
    if not getattr(suite, "chatbridge_conformance", False) or "kit" not in metafunc.fixturenames:
        return
    config = metafunc.config
    pinned: list[ChannelKit] | None = getattr(suite, "kits", None)
    if pinned is not None:
        kits = {kit.name: kit for kit in pinned}
    else:
        kits = installed_kits()
        for spec in config.getoption("chatbridge_kit"):
            kit = _load(spec)
            kits[kit.name] = kit
    only = config.getoption("chatbridge_only")
    if only:
        kits = {name: kit for name, kit in kits.items() if name in only}
    metafunc.parametrize("kit", list(kits.values()), ids=list(kits))
