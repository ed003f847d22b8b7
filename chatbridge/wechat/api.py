"""What the account-feature modules (menus, QR codes, tags, users) need of the channel:
one authenticated JSON call, with the access token added and refreshed by the channel."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from chatbridge.errors import MessageInvalidError, ProviderError

M = TypeVar("M", bound=BaseModel)


class Api(Protocol):
    """``WeChatChannel._api``: the JSON body of a successful call; a non-zero
    ``errcode`` is raised as the typed error (``wechat/errors.py``)."""

    async def __call__(
        self, method: str, path: str, idempotency_key: str | None = None, **kwargs: Any
    ) -> dict[str, Any]: ...


def read(model: type[M], body: dict[str, Any], what: str) -> M:
    """``body`` as ``model``, or a ProviderError naming ``what`` was unexpected."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        message = f"WeChat API returned an unexpected {what} response"
        raise ProviderError(message, provider="wechat", details=body) from exc


def utf8_length(text: str) -> int:
    """WeChat's length of ``text``: its UTF-8 bytes (a Chinese character counts 3)."""
    return len(text.encode())


def refuse(message: str, errcode: int | None = None) -> MessageInvalidError:
    """A request chatbridge refuses before sending, naming the errcode WeChat would
    answer."""
    return MessageInvalidError(message + (f" (WeChat errcode {errcode})" if errcode else ""))
