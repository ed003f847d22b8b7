"""WeChat Service Account (Official Account) channel."""

from chatbridge.wechat.channel import WeChatChannel, WeChatConfig

__all__ = ["WeChatChannel", "WeChatConfig"]
