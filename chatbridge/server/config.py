"""Configuration files for ``chatbridge serve`` and ``chatbridge verify`` (TOML)::

[store]                 # memory (default), sqlite or redis
kind = "sqlite"
path = "chatbridge.db"  # or: url = "redis://localhost:6379/0"

[outbox]                # where received events and their dedup marks wait for the handler
kind = "sqlite"         # memory (default; or just give a path), sqlite or redis
path = "outbox.db"      # or: url = "redis://localhost:6379/0"
lease_seconds = 300     # how long a worker holds a record before it is taken again
max_length = 1000000    # redis: records the stream may hold before intake answers 503

[history]               # optional: every event and send, per customer (chatbridge.conversations)
kind = "sqlite"         # sqlite or postgres: pip install 'chatbridge[postgres]'
path = "history.db"     # or: url = "postgresql://user@host/chatbridge"
link = "suggest"        # identities with one phone number: suggest (default), auto or off
reopen_within_days = 7  # a resolved conversation the customer writes to again reopens

[automation]            # optional, needs [history]: rules, hours, agents (docs/automation.md)
queue = "support"       # where new conversations wait for an agent

[http]                  # how the channels call the provider APIs
engine = "aiohttp"      # httpx (default) or aiohttp: pip install 'chatbridge[aiohttp]'
max_connections = 64    # per channel: the sends it keeps in flight (default: the engine's)

[channels.whatsapp]     # the table name is the webhook route: /whatsapp
type = "whatsapp"       # a registered channel (chatbridge.channels entry point)
phone_number_id = "..." # the rest is the channel's config_type
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.errors import ConfigurationError
from chatbridge.http import DEFAULT_ENGINE
from chatbridge.registry import load_channel
from chatbridge.server.outbox import DEFAULT_LEASE, MemoryOutbox, Outbox, SQLiteOutbox
from chatbridge.store.base import Store
from chatbridge.store.memory import MemoryStore
from chatbridge.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from chatbridge.automation import Automation
    from chatbridge.conversations import History


@dataclass
class Deployment:
    """Everything a config file describes."""

    channels: dict[str, Channel]
    store: Store
    outbox: Outbox
    history: History | None = None
    automation: Automation | None = None


def load(path: str | Path, processes: int = 1) -> Deployment:
    """Read ``path`` and build its store, outbox and channels, for ``processes`` serving
    processes (several need a store and an outbox they all share: SQLite or Redis)."""
    document = _read(path)
    store = _store(document.get("store", {}))
    outbox = _outbox(document.get("outbox", {}))
    if processes > 1 and (isinstance(store, MemoryStore) or isinstance(outbox, MemoryOutbox)):
        raise ConfigurationError(
            f"{processes} processes need a store and an outbox they share: set [store] and "
            f'[outbox] kind = "sqlite" or "redis" in {path} (memory is per process)'
        )
    http = document.get("http", {})
    options: ChannelOptions = {"store": store, "http_engine": http.get("engine", DEFAULT_ENGINE)}
    history = _history(document["history"], path) if "history" in document else None
    if processes > 1 and document.get("history", {}).get("path") == ":memory:":
        raise ConfigurationError(f"{processes} processes need a [history] they share")
    if history is not None:
        options["history"] = history
    if "max_connections" in http:
        if type(http["max_connections"]) is not int:
            raise ConfigurationError(f"[http] max_connections in {path} must be a whole number")
        options["http_max_connections"] = http["max_connections"]
    channels = {
        route: _channel(route, dict(table), options)
        for route, table in document.get("channels", {}).items()
    }
    if not channels:
        raise ConfigurationError(f"{path} configures no [channels.<route>] table")
    automation = None
    if "automation" in document:
        if history is None:
            raise ConfigurationError(f"[automation] in {path} needs a [history] to keep its state")
        from chatbridge.automation import Automation

        automation = Automation.from_config(document["automation"], history, channels.values())
    return Deployment(channels, store, outbox, history, automation)


def load_history(path: str | Path) -> History:
    """The history ``path`` configures (``chatbridge history`` and ``report``)."""
    document = _read(path)
    if "history" not in document:
        raise ConfigurationError(f"{path} configures no [history]")
    return _history(document["history"], path)


def load_automation_table(path: str | Path) -> dict[str, Any]:
    """The ``[automation]`` table of ``path`` (``chatbridge rules`` and ``agents``)."""
    document = _read(path)
    if "automation" not in document:
        raise ConfigurationError(f"{path} configures no [automation]")
    table: dict[str, Any] = document["automation"]
    return table


def _read(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config {path}: {exc}") from exc


def _history(table: dict[str, Any], path: str | Path) -> History:
    from chatbridge.conversations import History

    kind = table.get("kind", "sqlite")
    days = table.get("reopen_within_days", 7)
    options: dict[str, Any] = {
        "link": table.get("link", "suggest"),
        "reopen_within": None if days is None else timedelta(days=days),
    }
    if options["link"] not in ("suggest", "auto", "off"):
        raise ConfigurationError(f"[history] link in {path} is suggest, auto or off")
    if kind == "sqlite":
        return History.sqlite(table.get("path", "history.db"), **options)
    if kind == "postgres":
        if "url" not in table:
            raise ConfigurationError(f'[history] kind = "postgres" in {path} needs a url')
        return History.postgres(table["url"], **options)
    raise ConfigurationError(f"unknown history kind {kind!r} (sqlite or postgres)")


def _store(table: dict[str, Any]) -> Store:
    kind = table.get("kind", "memory")
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(table.get("path", "chatbridge.db"))
    if kind == "redis":
        from chatbridge.store.redis import RedisStore

        return RedisStore.from_url(table.get("url", "redis://localhost:6379/0"))
    raise ConfigurationError(f"unknown store kind {kind!r} (memory, sqlite or redis)")


def _outbox(table: dict[str, Any]) -> Outbox:
    kind = table.get("kind", "sqlite" if "path" in table else "memory")
    lease = timedelta(seconds=table.get("lease_seconds", DEFAULT_LEASE.total_seconds()))
    if kind == "memory":
        return MemoryOutbox(lease)
    if kind == "sqlite":
        return SQLiteOutbox(table.get("path", "outbox.db"), lease)
    if kind == "redis":
        from chatbridge.server.outbox.redis import DEFAULT_MAX_LENGTH, RedisOutbox

        return RedisOutbox.from_url(
            table.get("url", "redis://localhost:6379/0"),
            lease=lease,
            max_length=table.get("max_length", DEFAULT_MAX_LENGTH),
        )
    raise ConfigurationError(f"unknown outbox kind {kind!r} (memory, sqlite or redis)")


def _channel(route: str, table: dict[str, Any], options: ChannelOptions) -> Channel:
    kind = table.pop("type", route)
    try:
        return load_channel(kind).from_config(table, **options)
    except ValidationError as exc:
        raise ConfigurationError(
            f"[channels.{route}] is not a valid {kind} config:\n{exc}"
        ) from exc
