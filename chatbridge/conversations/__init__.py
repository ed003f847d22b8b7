"""The support layer: one history per customer across channels.

:class:`History` records what the channels take in and send (give it to a channel as
``history=``, or configure ``[history]`` for ``chatbridge serve``): customers and their
linked identities, conversations (open, pending, resolved), timelines with delivery
states, internal notes, tags (mirrored to WeChat's when configured), custom fields,
search and metrics. docs/conversations.md.
"""

from chatbridge.conversations.history import History
from chatbridge.conversations.linking import PHONE_CHANNELS, LinkPolicy
from chatbridge.conversations.metrics import ReportRow
from chatbridge.conversations.mirrors import MirrorFailure
from chatbridge.conversations.model import (
    Conversation,
    ConversationState,
    Customer,
    Delivery,
    Entry,
    EntryKind,
    LinkSuggestion,
    Note,
    Page,
)
from chatbridge.recorder import TagMirror

__all__ = [
    "PHONE_CHANNELS",
    "Conversation",
    "ConversationState",
    "Customer",
    "Delivery",
    "Entry",
    "EntryKind",
    "History",
    "LinkPolicy",
    "LinkSuggestion",
    "MirrorFailure",
    "Note",
    "Page",
    "ReportRow",
    "TagMirror",
]
