"""The history through ``chatbridge serve``, the ``history`` and ``report`` commands and
the config's ``[history]`` table."""

import csv
import time
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from chatbridge import ConfigurationError, Identity, Message, MessageReceived
from chatbridge.conversations import History
from chatbridge.server.cli import main
from chatbridge.server.config import load, load_history
from chatbridge.testing.sandbox import send_webhook
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.loopback import cli_server
from tests.test_cli import WHATSAPP_CONFIG

CUSTOMER = Identity(channel="whatsapp", address=whatsapp_kit.CUSTOMER)


def _history_table(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f'[history]\nkind = "sqlite"\npath = "{tmp_path / "history.db"}"\n'
    url = request.getfixturevalue("postgres_database")
    return f'[history]\nkind = "postgres"\nurl = "{url}"\n'


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_serve_records_each_event_once_across_two_workers(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("CHATBRIDGE_TEST_HANDLED", str(tmp_path / "handled"))
    shared = (
        f'\n[store]\nkind = "sqlite"\npath = "{tmp_path / "state.db"}"\n'
        f'\n[outbox]\nkind = "sqlite"\npath = "{tmp_path / "outbox.db"}"\n\n'
    )
    config = tmp_path / "chatbridge.toml"
    config.write_text(WHATSAPP_CONFIG + shared + _history_table(backend, tmp_path, request))
    args = ["--config", str(config), "--workers", "2", "--handler", "tests.record_handler:record"]
    ids = [f"wamid.h{i}" for i in range(12)]
    with cli_server("serve", *args) as (base, _):

        async def deliver_each_twice() -> None:
            async with httpx.AsyncClient() as http, anyio.create_task_group() as group:
                for event_id in ids * 2:
                    body = whatsapp_kit.inbound("text", {"body": event_id}, id=event_id)
                    group.start_soon(send_webhook, whatsapp_kit.kit, f"{base}/whatsapp", body, http)

        anyio.run(deliver_each_twice)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (
                'chatbridge_events_handled_total{channel="whatsapp"} 12.0'
                in httpx.get(f"{base}/metrics").text
            ):
                break
            time.sleep(0.05)

    async def read() -> list[str | None]:
        async with load_history(config) as history:
            page = await history.timeline(CUSTOMER, limit=100)
            conversations = await history.conversations(customer=CUSTOMER)
        assert len(conversations) == 1  # both workers' messages joined one conversation
        return [entry.text for entry in page.entries]

    assert sorted(anyio.run(read), key=str) == sorted(ids)


def _fill(path: Path) -> None:
    async def fill() -> None:
        async with History.sqlite(path) as history:
            at = datetime(2026, 12, 1, 9, tzinfo=UTC)
            message = Message(contact=CUSTOMER, direction="inbound", text="Where is my order?")
            event = MessageReceived(
                channel="whatsapp", event_id="w1", contact=CUSTOMER, timestamp=at, message=message
            )
            await history.record_events([event])

    anyio.run(fill)


def test_history_and_report_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "chatbridge.toml"
    config.write_text(f'[history]\npath = "{tmp_path / "h.db"}"\n')
    _fill(tmp_path / "h.db")
    assert main(["history", "--config", str(config), f"whatsapp:{whatsapp_kit.CUSTOMER}"]) == 0
    out = capsys.readouterr().out
    assert "Where is my order?" in out and "whatsapp" in out
    assert main(["history", "--config", str(config), "sms:+15550000000"]) == 1
    assert "no customer sms:+15550000000" in capsys.readouterr().err

    rows = tmp_path / "report.csv"
    span = ["--since", "2026-11-30", "--until", "2026-12-03", "--csv", str(rows)]
    assert main(["report", "--config", str(config), *span]) == 0
    assert "2026-12-01" in capsys.readouterr().out
    with rows.open() as file:
        [row] = list(csv.DictReader(file))
    assert (row["period"], row["channel"], row["conversations"]) == ("2026-12-01", "whatsapp", "1")
    with pytest.raises(SystemExit, match="unknown time zone 'Mars/Olympus'"):
        main(["report", "--config", str(config), "--timezone", "Mars/Olympus"])


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ('kind = "postgres"', "needs a url"),
        ('link = "sometimes"', "suggest, auto or off"),
        ('kind = "mongodb"', "unknown history kind"),
    ],
)
def test_history_config_errors(tmp_path: Path, table: str, error: str) -> None:
    config = tmp_path / "chatbridge.toml"
    config.write_text(f"{WHATSAPP_CONFIG}\n[history]\n{table}\n")
    with pytest.raises(ConfigurationError, match=error):
        load(config)


def test_history_config_gives_channels_their_history(tmp_path: Path) -> None:
    config = tmp_path / "chatbridge.toml"
    config.write_text(f'{WHATSAPP_CONFIG}\n[history]\npath = "{tmp_path / "h.db"}"\n')
    deployment = load(config)
    assert deployment.history is not None
    assert deployment.channels["whatsapp"].history is deployment.history
    without = tmp_path / "plain.toml"
    without.write_text(WHATSAPP_CONFIG)
    assert load(without).channels["whatsapp"].history is None
    with pytest.raises(ConfigurationError, match="configures no"):
        load_history(without)
