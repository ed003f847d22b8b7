"""The suite as a test module, for ``chatbridge conformance KIT`` (pytest collects it
with the kit the command line names)."""

from chatbridge_conformance.suite import ConformanceSuite


class TestConformance(ConformanceSuite):
    pass
