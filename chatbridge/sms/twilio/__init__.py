"""SMS/MMS through Twilio."""

from chatbridge.sms.twilio.channel import TwilioChannel, TwilioConfig

__all__ = ["TwilioChannel", "TwilioConfig"]
