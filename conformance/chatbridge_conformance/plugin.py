"""pytest plugin: parametrizes the ``kit`` fixture of :class:`ConformanceSuite` tests.

Kits come from the suite class's ``kits`` attribute when it sets one, else from the
registry (every kit under the ``chatbridge.kits`` entry point group) plus
``--chatbridge-kit module:attribute`` (repeatable); ``--chatbridge-only NAME`` keeps only
the named kits. Each kit runs in each of its variants too (ids ``NAME:VARIANT``).

A conformance run cannot pass by accident: a kit named by ``--chatbridge-only`` or
``--chatbridge-kit`` that does not exist, a suite with no kit to run on, and a session
whose selected checks all skipped fail, and say which kits exist. (Checks deselected
with ``-k``/``-m`` are the user's choice, not a conformance run; ``chatbridge
conformance KIT -k ...`` that selects none exits 5, pytest's "no tests".)

This module is loaded by every pytest run where chatbridge is installed, so it imports
nothing beyond chatbridge itself: respx and hypothesis are needed only by the suite.
"""

from __future__ import annotations

import pytest

from chatbridge.errors import ChatbridgeError
from chatbridge.plugin.kit import ChannelKit
from chatbridge.registry import kit_names, load_kit

_RAN = pytest.StashKey[int]()
_COLLECTED = pytest.StashKey[int]()


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
        help="run sends against a running `chatbridge sandbox` at URL (kits it serves)",
    )
    group.addoption(
        "--chatbridge-only",
        action="append",
        default=[],
        metavar="NAME",
        help="run the conformance suite only on the kit(s) with this name",
    )


def _installed() -> str:
    return ", ".join(kit_names()) or "none"


def _load(spec: str) -> ChannelKit:
    try:
        return load_kit(spec)
    except ChatbridgeError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.cls
    if not getattr(suite, "chatbridge_conformance", False) or "kit" not in metafunc.fixturenames:
        return
    config = metafunc.config
    pinned: list[ChannelKit] | None = getattr(suite, "kits", None)
    only: list[str] = config.getoption("chatbridge_only")
    if pinned is not None:
        kits = {kit.name: kit for kit in pinned}
    else:
        kits = {kit.name: kit for kit in map(_load, config.getoption("chatbridge_kit"))}
        for name in only or kit_names():  # only the named kits are loaded
            kits.setdefault(name, _load(name))
    missing = sorted(set(only) - set(kits))
    if missing:
        raise pytest.UsageError(
            f"no conformance kit named {', '.join(missing)}; installed: {_installed()}"
        )
    if only:
        kits = {name: kit for name, kit in kits.items() if name in only}
    if not kits:
        raise pytest.UsageError(
            f"{suite.__name__} has no ChannelKit to run on; installed: {_installed()}"
        )
    cases = {
        f"{name}:{variant}" if variant else name: kit.variant(variant) if variant else kit
        for name, kit in kits.items()
        for variant in ["", *kit.variants]
    }
    metafunc.parametrize("kit", list(cases.values()), ids=list(cases))


def _is_check(item: pytest.Item) -> bool:
    return bool(getattr(getattr(item, "cls", None), "chatbridge_conformance", False))


def pytest_collection_finish(session: pytest.Session) -> None:
    session.stash[_COLLECTED] = sum(1 for item in session.items if _is_check(item))
    session.stash[_RAN] = 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    result = yield  # raises when the check failed or skipped itself
    if _is_check(item):
        item.session.stash[_RAN] = item.session.stash.get(_RAN, 0) + 1
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    collected = session.stash.get(_COLLECTED, 0)
    if collected and not session.stash.get(_RAN, 0) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"chatbridge conformance: {collected} checks collected but none ran "
                f"(all skipped or deselected); installed kits: {_installed()}",
                red=True,
            )
