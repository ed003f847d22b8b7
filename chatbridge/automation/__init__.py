"""Automation on top of the history: rules, business hours, assignment, fallback."""
