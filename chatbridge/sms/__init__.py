"""The sms channel (not yet implemented)."""
