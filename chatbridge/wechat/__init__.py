"""The wechat channel (not yet implemented)."""
