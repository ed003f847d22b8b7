"""LINE Official Account channel (Messaging API)."""

from chatbridge.line.channel import LineChannel, LineConfig, MulticastResult, QuotaStatus

__all__ = ["LineChannel", "LineConfig", "MulticastResult", "QuotaStatus"]
