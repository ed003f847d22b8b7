"""Automation on top of the history (docs/automation.md): rules that reply, tag, set
priority and route; business hours with greeting and away replies; assignment of
conversations to agents; fallback delivery to the customer's other channels."""

from chatbridge.automation.assignment import (
    Agent,
    Assigner,
    Assignments,
    LeastLoaded,
    Queue,
    RoundRobin,
    SkillsFirst,
)
from chatbridge.automation.engine import Automation, HandedOff, Hooks
from chatbridge.automation.fallback import (
    Condition,
    Fallback,
    FallbackPlan,
    FallbackStep,
    PlanState,
    PlanStatus,
)
from chatbridge.automation.hours import BusinessHours
from chatbridge.automation.rules import (
    Action,
    Context,
    Explanation,
    HandOff,
    Match,
    Reply,
    ReplyMenu,
    ReplyTemplate,
    RouteTo,
    Rule,
    Rules,
    SetPriority,
    Tag,
    When,
)

__all__ = [
    "Action",
    "Agent",
    "Assigner",
    "Assignments",
    "Automation",
    "BusinessHours",
    "Condition",
    "Context",
    "Explanation",
    "Fallback",
    "FallbackPlan",
    "FallbackStep",
    "HandOff",
    "HandedOff",
    "Hooks",
    "LeastLoaded",
    "Match",
    "PlanState",
    "PlanStatus",
    "Queue",
    "Reply",
    "ReplyMenu",
    "ReplyTemplate",
    "RoundRobin",
    "RouteTo",
    "Rule",
    "Rules",
    "SetPriority",
    "SkillsFirst",
    "Tag",
    "When",
]
