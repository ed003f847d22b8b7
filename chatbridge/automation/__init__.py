"""Automation on top of the history (docs/automation.md): rules that reply, tag, set
priority and route; business hours with greeting and away replies; assignment of
conversations to agents; fallback delivery to the customer's other channels."""

from chatbridge.automation.engine import Automation, HandedOff, Hooks
from chatbridge.automation.fallback import (
    Condition,
    Fallback,
    FallbackPlan,
    FallbackStep,
    PlanState,
    PlanStatus,
)

__all__ = [
    "Automation",
    "HandedOff",
    "Hooks",
    "Condition",
    "Fallback",
    "FallbackPlan",
    "FallbackStep",
    "PlanState",
    "PlanStatus",
]
