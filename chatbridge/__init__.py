"""chatbridge: one typed API for customer conversations on WhatsApp, WeChat, LINE,
email, SMS, Messenger and Instagram, with each channel's policy rules made explicit.

The names below are imported on first use, so ``import chatbridge`` stays fast and
loads only what a program touches. Channels live in their packages
(``chatbridge.whatsapp``...), plugin helpers in :mod:`chatbridge.plugin`, the webhook
server in :mod:`chatbridge.server`, sandboxes and the demo in :mod:`chatbridge.testing`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatbridge.channel import (
        Channel as Channel,
        ChannelOptions as ChannelOptions,
    )
    from chatbridge.clock import (
        Clock as Clock,
        FakeClock as FakeClock,
        SystemClock as SystemClock,
    )
    from chatbridge.errors import (
        ChatbridgeError as ChatbridgeError,
        ConfigurationError as ConfigurationError,
        DeliveryUnknownError as DeliveryUnknownError,
        HandshakeError as HandshakeError,
        InvalidAddressError as InvalidAddressError,
        MediaError as MediaError,
        MessageInvalidError as MessageInvalidError,
        PayloadError as PayloadError,
        PayloadTooLargeError as PayloadTooLargeError,
        PolicyRefusedError as PolicyRefusedError,
        ProviderAuthError as ProviderAuthError,
        ProviderError as ProviderError,
        ProviderPolicyError as ProviderPolicyError,
        ProviderUnavailableError as ProviderUnavailableError,
        RateLimitedError as RateLimitedError,
        ReplayError as ReplayError,
        SignatureError as SignatureError,
        UnknownChannelError as UnknownChannelError,
        UnsupportedMediaTypeError as UnsupportedMediaTypeError,
        UnsupportedMessageError as UnsupportedMessageError,
        UnsupportedOperationError as UnsupportedOperationError,
        UnsupportedRequestError as UnsupportedRequestError,
        WebhookError as WebhookError,
    )
    from chatbridge.models import (
        Button as Button,
        Card as Card,
        ChannelEvent as ChannelEvent,
        Contact as Contact,
        DeliveryState as DeliveryState,
        Direction as Direction,
        Event as Event,
        Followed as Followed,
        Identity as Identity,
        Interactive as Interactive,
        InteractiveReply as InteractiveReply,
        ListRow as ListRow,
        ListSection as ListSection,
        Location as Location,
        Media as Media,
        MediaKind as MediaKind,
        Message as Message,
        MessageKind as MessageKind,
        MessageReceived as MessageReceived,
        OptedIn as OptedIn,
        OptedOut as OptedOut,
        ProviderErrorInfo as ProviderErrorInfo,
        Reaction as Reaction,
        Receipt as Receipt,
        StatusUpdate as StatusUpdate,
        Suppressed as Suppressed,
        Template as Template,
        Unfollowed as Unfollowed,
        UnknownEvent as UnknownEvent,
        Window as Window,
        WindowState as WindowState,
    )
    from chatbridge.policy import (
        Decision as Decision,
        PolicyEngine as PolicyEngine,
        PolicyRules as PolicyRules,
        RefusalReason as RefusalReason,
        Remedy as Remedy,
        RemedyKind as RemedyKind,
    )
    from chatbridge.registry import (
        channel_names as channel_names,
        kit_names as kit_names,
        load_channel as load_channel,
        load_kit as load_kit,
    )
    from chatbridge.store import (
        ContactState as ContactState,
        MemoryStore as MemoryStore,
        SQLiteStore as SQLiteStore,
        Store as Store,
    )
    from chatbridge.webhook import (
        WebhookRequest as WebhookRequest,
        WebhookResponse as WebhookResponse,
        WebhookResult as WebhookResult,
    )

#: Where each public name lives.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "chatbridge.channel": ("Channel", "ChannelOptions"),
    "chatbridge.clock": ("Clock", "FakeClock", "SystemClock"),
    "chatbridge.errors": (
        "ChatbridgeError",
        "ConfigurationError",
        "DeliveryUnknownError",
        "HandshakeError",
        "InvalidAddressError",
        "MediaError",
        "MessageInvalidError",
        "PayloadError",
        "PayloadTooLargeError",
        "PolicyRefusedError",
        "ProviderAuthError",
        "ProviderError",
        "ProviderPolicyError",
        "ProviderUnavailableError",
        "RateLimitedError",
        "ReplayError",
        "SignatureError",
        "UnknownChannelError",
        "UnsupportedMediaTypeError",
        "UnsupportedMessageError",
        "UnsupportedOperationError",
        "UnsupportedRequestError",
        "WebhookError",
    ),
    "chatbridge.models": (
        "Button",
        "Card",
        "ChannelEvent",
        "Contact",
        "DeliveryState",
        "Direction",
        "Event",
        "Followed",
        "Identity",
        "Interactive",
        "InteractiveReply",
        "ListRow",
        "ListSection",
        "Location",
        "Media",
        "MediaKind",
        "Message",
        "MessageKind",
        "MessageReceived",
        "OptedIn",
        "OptedOut",
        "ProviderErrorInfo",
        "Reaction",
        "Receipt",
        "StatusUpdate",
        "Suppressed",
        "Template",
        "Unfollowed",
        "UnknownEvent",
        "Window",
        "WindowState",
    ),
    "chatbridge.policy": (
        "Decision",
        "PolicyEngine",
        "PolicyRules",
        "RefusalReason",
        "Remedy",
        "RemedyKind",
    ),
    "chatbridge.registry": ("channel_names", "kit_names", "load_channel", "load_kit"),
    "chatbridge.store": ("ContactState", "MemoryStore", "SQLiteStore", "Store"),
    "chatbridge.webhook": ("WebhookRequest", "WebhookResponse", "WebhookResult"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'chatbridge' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
