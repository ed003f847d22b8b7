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
    )
    from chatbridge.channel import (
        ChannelOptions as ChannelOptions,
    )
    from chatbridge.clock import (
        Clock as Clock,
    )
    from chatbridge.clock import (
        FakeClock as FakeClock,
    )
    from chatbridge.clock import (
        SystemClock as SystemClock,
    )
    from chatbridge.errors import (
        ChatbridgeError as ChatbridgeError,
    )
    from chatbridge.errors import (
        ConfigurationError as ConfigurationError,
    )
    from chatbridge.errors import (
        DeliveryUnknownError as DeliveryUnknownError,
    )
    from chatbridge.errors import (
        HandshakeError as HandshakeError,
    )
    from chatbridge.errors import (
        HistoryError as HistoryError,
    )
    from chatbridge.errors import (
        InvalidAddressError as InvalidAddressError,
    )
    from chatbridge.errors import (
        MediaError as MediaError,
    )
    from chatbridge.errors import (
        MessageInvalidError as MessageInvalidError,
    )
    from chatbridge.errors import (
        PayloadError as PayloadError,
    )
    from chatbridge.errors import (
        PayloadTooLargeError as PayloadTooLargeError,
    )
    from chatbridge.errors import (
        PolicyRefusedError as PolicyRefusedError,
    )
    from chatbridge.errors import (
        ProviderAuthError as ProviderAuthError,
    )
    from chatbridge.errors import (
        ProviderError as ProviderError,
    )
    from chatbridge.errors import (
        ProviderPolicyError as ProviderPolicyError,
    )
    from chatbridge.errors import (
        ProviderUnavailableError as ProviderUnavailableError,
    )
    from chatbridge.errors import (
        RateLimitedError as RateLimitedError,
    )
    from chatbridge.errors import (
        ReplayError as ReplayError,
    )
    from chatbridge.errors import (
        SignatureError as SignatureError,
    )
    from chatbridge.errors import (
        UnknownChannelError as UnknownChannelError,
    )
    from chatbridge.errors import (
        UnsupportedMediaTypeError as UnsupportedMediaTypeError,
    )
    from chatbridge.errors import (
        UnsupportedMessageError as UnsupportedMessageError,
    )
    from chatbridge.errors import (
        UnsupportedOperationError as UnsupportedOperationError,
    )
    from chatbridge.errors import (
        UnsupportedRequestError as UnsupportedRequestError,
    )
    from chatbridge.errors import (
        WebhookError as WebhookError,
    )
    from chatbridge.models import (
        Button as Button,
    )
    from chatbridge.models import (
        Card as Card,
    )
    from chatbridge.models import (
        ChannelEvent as ChannelEvent,
    )
    from chatbridge.models import (
        Contact as Contact,
    )
    from chatbridge.models import (
        DeliveryState as DeliveryState,
    )
    from chatbridge.models import (
        Direction as Direction,
    )
    from chatbridge.models import (
        Event as Event,
    )
    from chatbridge.models import (
        Followed as Followed,
    )
    from chatbridge.models import (
        Identity as Identity,
    )
    from chatbridge.models import (
        Interactive as Interactive,
    )
    from chatbridge.models import (
        InteractiveReply as InteractiveReply,
    )
    from chatbridge.models import (
        ListRow as ListRow,
    )
    from chatbridge.models import (
        ListSection as ListSection,
    )
    from chatbridge.models import (
        Location as Location,
    )
    from chatbridge.models import (
        Media as Media,
    )
    from chatbridge.models import (
        MediaKind as MediaKind,
    )
    from chatbridge.models import (
        Message as Message,
    )
    from chatbridge.models import (
        MessageKind as MessageKind,
    )
    from chatbridge.models import (
        MessageReceived as MessageReceived,
    )
    from chatbridge.models import (
        OptedIn as OptedIn,
    )
    from chatbridge.models import (
        OptedOut as OptedOut,
    )
    from chatbridge.models import (
        ProviderErrorInfo as ProviderErrorInfo,
    )
    from chatbridge.models import (
        Reaction as Reaction,
    )
    from chatbridge.models import (
        Receipt as Receipt,
    )
    from chatbridge.models import (
        StatusUpdate as StatusUpdate,
    )
    from chatbridge.models import (
        Suppressed as Suppressed,
    )
    from chatbridge.models import (
        Template as Template,
    )
    from chatbridge.models import (
        TemplateUpdate as TemplateUpdate,
    )
    from chatbridge.models import (
        Unfollowed as Unfollowed,
    )
    from chatbridge.models import (
        UnknownEvent as UnknownEvent,
    )
    from chatbridge.models import (
        Window as Window,
    )
    from chatbridge.models import (
        WindowState as WindowState,
    )
    from chatbridge.policy import (
        Cost as Cost,
    )
    from chatbridge.policy import (
        Decision as Decision,
    )
    from chatbridge.policy import (
        Overage as Overage,
    )
    from chatbridge.policy import (
        PolicyEngine as PolicyEngine,
    )
    from chatbridge.policy import (
        PolicyRules as PolicyRules,
    )
    from chatbridge.policy import (
        RefusalReason as RefusalReason,
    )
    from chatbridge.policy import (
        Remedy as Remedy,
    )
    from chatbridge.policy import (
        RemedyKind as RemedyKind,
    )
    from chatbridge.registry import (
        channel_names as channel_names,
    )
    from chatbridge.registry import (
        kit_names as kit_names,
    )
    from chatbridge.registry import (
        load_channel as load_channel,
    )
    from chatbridge.registry import (
        load_kit as load_kit,
    )
    from chatbridge.store import (
        ContactState as ContactState,
    )
    from chatbridge.store import (
        MemoryStore as MemoryStore,
    )
    from chatbridge.store import (
        SQLiteStore as SQLiteStore,
    )
    from chatbridge.store import (
        Store as Store,
    )
    from chatbridge.webhook import (
        WebhookRequest as WebhookRequest,
    )
    from chatbridge.webhook import (
        WebhookResponse as WebhookResponse,
    )
    from chatbridge.webhook import (
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
        "HistoryError",
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
        "TemplateUpdate",
        "UnknownEvent",
        "Window",
        "WindowState",
    ),
    "chatbridge.policy": (
        "Cost",
        "Decision",
        "Overage",
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
