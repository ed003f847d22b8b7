"""The email channel (not yet implemented)."""
