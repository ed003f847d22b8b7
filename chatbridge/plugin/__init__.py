"""Everything a channel plugin author imports, in one place.

A channel is one module: a pydantic config, a :class:`Channel` subclass with ``name``,
``config_type`` and two methods (``_receive``, ``_deliver``), and for the conformance
suite and the sandbox a :class:`ChannelKit` built on a :class:`FakeAPI`. docs/plugins.md
walks through one; ``examples/acme-chat`` is one as its own package.

Besides the names below, the modules of this package hold the helpers by job:
:mod:`~chatbridge.plugin.signing` (HMACs, constant-time checks),
:mod:`~chatbridge.plugin.parsing` (JSON with a depth cap; one bad item never loses a
batch), :mod:`~chatbridge.plugin.formdata` (form-encoded and multipart bodies, with
limits), :mod:`~chatbridge.plugin.lengths` (message length and count limits),
:mod:`~chatbridge.plugin.tokens` (cached access tokens) and
:mod:`~chatbridge.plugin.graph` (Meta's Graph API webhooks and errors).
"""

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.errors import (
    ErrorCodes,
    HandshakeError,
    MessageInvalidError,
    PayloadError,
    SignatureError,
    UnsupportedMessageError,
    UnsupportedOperationError,
    UnsupportedRequestError,
    provider_error,
)
from chatbridge.plugin.fake import FakeAPI, Refused, json_response, parse_multipart
from chatbridge.plugin.formdata import FormLimits, Part, parse_form
from chatbridge.plugin.kit import ChannelKit, Facts, Quota, Sample, signing_now, signing_time
from chatbridge.plugin.lengths import Lengths
from chatbridge.plugin.parsing import Inbound, load_json
from chatbridge.plugin.signing import hmac_base64, hmac_digest, hmac_hex, require_match
from chatbridge.plugin.tokens import AccessTokenCache
from chatbridge.policy import PolicyRules, RateLimit
from chatbridge.webhook import WebhookRequest, WebhookResponse, WebhookResult

__all__ = [
    "AccessTokenCache",
    "Channel",
    "ChannelKit",
    "ChannelOptions",
    "ErrorCodes",
    "Facts",
    "FakeAPI",
    "FormLimits",
    "HandshakeError",
    "Inbound",
    "Lengths",
    "MessageInvalidError",
    "Part",
    "PayloadError",
    "PolicyRules",
    "Quota",
    "RateLimit",
    "Refused",
    "Sample",
    "SignatureError",
    "UnsupportedMessageError",
    "UnsupportedOperationError",
    "UnsupportedRequestError",
    "WebhookRequest",
    "WebhookResponse",
    "WebhookResult",
    "hmac_base64",
    "hmac_digest",
    "hmac_hex",
    "json_response",
    "load_json",
    "parse_form",
    "parse_multipart",
    "provider_error",
    "require_match",
    "signing_now",
    "signing_time",
]
