"""How a received event is written into an outbox record, and read back.

A record is versioned JSON: ``{"v": 1, "route": ..., "event": {...}, "at": ...}``
(``at``: when it was acknowledged, unix seconds; absent in older records). Media bytes
travel as Base64 (the common model's JSON form), so every event the channels produce
can be queued. Records written before versions existed (no ``v``) read as version 0,
which had the same shape. A record that cannot be read raises :class:`RecordError`;
the worker dead-letters it with that reason instead of retrying it forever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticSerializationError, from_json

from chatbridge.clock import from_unix
from chatbridge.models import Event, UnknownEvent
from chatbridge.webhook import invalid_reason

#: The record version this chatbridge writes; it reads this one and every older one.
VERSION = 1


class RecordError(ValueError):
    """An outbox record that this version of chatbridge cannot read."""


class _Record(BaseModel):
    # NaN and infinities are valid JSON floats to the providers' parsers: keep them.
    model_config = ConfigDict(ser_json_inf_nan="constants")

    v: int = 0
    route: str
    event: Event
    at: float | None = None


class Record(NamedTuple):
    """A record read back: where the event came in, the event, and when it was
    acknowledged (None for records written before that was kept)."""

    route: str
    event: Event
    accepted_at: datetime | None


def encode(route: str, event: Event, accepted_at: datetime | None = None) -> bytes:
    """The record of ``event`` received at ``route`` and acknowledged at ``accepted_at``.

    Text that is not valid Unicode (lone surrogates, which the email parser makes of
    undecodable header bytes) cannot be written as UTF-8: each such character is stored
    as ``?`` rather than the event refused. An event that cannot be written at all (a
    provider object nested past the serializer's depth limit) is stored as an
    :class:`~chatbridge.models.UnknownEvent` saying why, so it still reaches the handler.
    """
    at = accepted_at.timestamp() if accepted_at is not None else None
    record = _Record(v=VERSION, route=route, event=event, at=at)
    try:
        return _dump(record)
    except PydanticSerializationError:
        pass
    try:
        return _dump(_Record.model_validate(_scrub(record.model_dump())))
    except (PydanticSerializationError, ValidationError, RecursionError) as exc:
        reason = f"the {event.type} event could not be stored: {str(exc)[:200]}"
        unknown = UnknownEvent(
            channel=event.channel,
            event_id=_scrub(event.event_id),
            contact=event.contact,
            timestamp=event.timestamp,
            name=event.type,
            reason=_scrub(reason),
        )
        return _dump(_Record(v=VERSION, route=route, event=unknown, at=at))


def _dump(record: _Record) -> bytes:
    return record.model_dump_json().encode()


def decode(payload: bytes | str) -> Record:
    """The record's route, event and acceptance time; :class:`RecordError` if it cannot
    be read."""
    try:
        record = _Record.model_validate_json(payload)
    except ValidationError as exc:
        problem = _version_problem(payload) or f"unreadable record: {invalid_reason(exc)}"
        raise RecordError(problem) from exc
    if record.v > VERSION:
        raise RecordError(_newer(record.v))
    return Record(record.route, record.event, _time(record.at))


def _time(at: float | None) -> datetime | None:
    """``at`` as a datetime; None when absent or beyond any date (a damaged record)."""
    try:
        return from_unix(at) if at is not None else None
    except (ValueError, OverflowError, OSError):
        return None


def _version_problem(payload: bytes | str) -> str | None:
    try:
        version = from_json(payload).get("v", 0)
    except (ValueError, AttributeError):
        return None
    return _newer(version) if isinstance(version, int) and version > VERSION else None


def _newer(version: int) -> str:
    return f"record version {version} is from a newer chatbridge (this one reads up to {VERSION})"


def _scrub(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(key): _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    return value
