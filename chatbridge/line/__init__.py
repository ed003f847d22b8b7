"""The line channel (not yet implemented)."""
