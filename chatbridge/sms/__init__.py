"""SMS: shared rules (E.164, segments, keywords, opt-out) and the Twilio and Vonage
providers (``chatbridge.sms.twilio``, ``chatbridge.sms.vonage``)."""

from chatbridge.sms.channel import SmsChannel, SmsEstimate, SmsSettings
from chatbridge.sms.segments import Encoding, SegmentCount, count_segments

__all__ = ["Encoding", "SegmentCount", "SmsChannel", "SmsEstimate", "SmsSettings", "count_segments"]
