"""The conformance checks every channel must pass.

Subclass :class:`ConformanceSuite` in a test module; the pytest plugin parametrizes its
``kit`` fixture over every installed kit (or set ``kits`` to pin them). The checks are
grouped by what they examine: :mod:`~chatbridge_conformance.signatures`,
:mod:`~chatbridge_conformance.inbound`, :mod:`~chatbridge_conformance.policy` and
:mod:`~chatbridge_conformance.provider`; docs/plugins.md lists them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatbridge.plugin.kit import ChannelKit
from chatbridge_conformance.harness import Harness, harness_for
from chatbridge_conformance.inbound import InboundChecks
from chatbridge_conformance.policy import PolicyChecks
from chatbridge_conformance.provider import ProviderChecks
from chatbridge_conformance.signatures import SignatureChecks


class ConformanceSuite(SignatureChecks, InboundChecks, PolicyChecks, ProviderChecks):
    """Checks the channel contract: signatures, parsing, policy, the provider's API.

    Set ``kits = [...]`` on a subclass to pin the kits it runs on.
    """

    chatbridge_conformance = True
    kits: list[ChannelKit] | None = None

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def harness(
        self, kit: ChannelKit, request: pytest.FixtureRequest
    ) -> AsyncIterator[Harness]:
        sandbox: str | None = request.config.getoption("chatbridge_sandbox", None)
        async for built in harness_for(kit, sandbox):
            yield built


__all__ = ["ConformanceSuite", "Harness"]
