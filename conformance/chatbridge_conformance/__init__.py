"""chatbridge's channel conformance suite: a ChannelKit contract and the checks."""

from chatbridge.kit import ChannelKit, Sample
from chatbridge_conformance.suite import ConformanceSuite, Harness

__all__ = ["ChannelKit", "ConformanceSuite", "Harness", "Sample"]
