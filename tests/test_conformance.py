"""Every installed channel kit (built-in ones included) against the conformance suite."""

from chatbridge_conformance import ConformanceSuite


class TestConformance(ConformanceSuite):
    pass
