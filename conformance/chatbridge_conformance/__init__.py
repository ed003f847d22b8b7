"""chatbridge's channel conformance suite: the checks, run over ChannelKits.

The suite (which needs pytest, respx and hypothesis) is imported on first use, because
pytest loads this package's plugin in every environment where chatbridge is installed.
"""

from typing import TYPE_CHECKING, Any

from chatbridge.plugin.kit import ChannelKit, Sample

if TYPE_CHECKING:
    from chatbridge_conformance.suite import ConformanceSuite, Harness

__all__ = ["ChannelKit", "ConformanceSuite", "Harness", "Sample"]


def __getattr__(name: str) -> Any:
    if name in ("ConformanceSuite", "Harness"):
        from chatbridge_conformance import suite

        return getattr(suite, name)
    raise AttributeError(f"module 'chatbridge_conformance' has no attribute {name!r}")
