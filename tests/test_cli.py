"""The command line, config files, and the provider sandboxes end to end."""

import json
import subprocess
import time
import tomllib
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import redis

from chatbridge import (
    ConfigurationError,
    DeliveryState,
    FakeClock,
    Message,
    ProviderPolicyError,
    StatusUpdate,
    load_channel,
)
from chatbridge.registry import kit_names, load_kit
from chatbridge.server.cli import main
from chatbridge.server.config import load
from chatbridge.testing.sandbox import (
    SandboxApp,
    sandbox_config,
    send_webhook,
    served_kits,
    smtp_sandbox,
)
from chatbridge.webhook import WebhookRequest
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.loopback import cli_server, free_port

WHATSAPP_CONFIG = """
[channels.whatsapp]
type = "whatsapp"
phone_number_id = "106540352242922"
access_token = "EAAG-test-access-token"
app_secret = "whatsapp-test-app-secret"
verify_token = "whatsapp-test-verify-token"
"""


def test_demo_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "template sent outside the window" in capsys.readouterr().out


def test_verify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "chatbridge.toml"
    config.write_text(WHATSAPP_CONFIG)
    signed = whatsapp_kit.sign(whatsapp_kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"})))
    captured = {
        "method": "POST",
        "url": signed.url,
        "headers": dict(signed.headers),
        "body": signed.body.decode(),
    }
    request = tmp_path / "request.json"
    request.write_text(json.dumps(captured))
    assert main(["verify", "--config", str(config), "--channel", "whatsapp", str(request)]) == 0
    assert "OK: signature valid; MessageReceived" in capsys.readouterr().out
    captured["body"] = captured["body"].replace("hi", "ho")
    request.write_text(json.dumps(captured))
    assert main(["verify", "--config", str(config), "--channel", "whatsapp", str(request)]) == 1
    assert "REJECTED (HTTP 401)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[store]\nkind = 'etcd'\n" + WHATSAPP_CONFIG, "unknown store kind"),
        ("[outbox]\nkind = 'kafka'\n" + WHATSAPP_CONFIG, "unknown outbox kind"),
        ("[channels.whatsapp]\ntype = 'whatsapp'\n", "not a valid whatsapp config"),
        ("[channels.x]\ntype = 'pigeon'\n", "no channel named 'pigeon'"),
        ("[store]\n", "configures no"),
        ("not toml [", "cannot read config"),
    ],
)
def test_config_errors_are_explained(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load(config)
    request = tmp_path / "r.json"
    request.write_text("{}")
    assert main(["verify", "--config", str(config), "--channel", "x", str(request)]) == 1
    assert capsys.readouterr().err.startswith("chatbridge: ")


@pytest.mark.parametrize(
    ("table", "kind"),
    [("", "MemoryOutbox"), ("path = 'o.db'", "SQLiteOutbox"), ("kind = 'redis'", "RedisOutbox")],
)
def test_config_chooses_the_outbox(tmp_path: Path, table: str, kind: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[outbox]\n{table}\nlease_seconds = 7\n" + WHATSAPP_CONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        outbox = load(config).outbox
    assert type(outbox).__name__ == kind and outbox.lease == timedelta(seconds=7)


def test_conformance_command() -> None:
    assert main(["conformance", "chatbridge.whatsapp.kit:kit", "-x"]) == 0


def test_conformance_of_a_missing_kit_fails_naming_the_installed_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["conformance", "whatsap"]) == 1
    error = capsys.readouterr().err
    assert "no kit named 'whatsap'" in error and "whatsapp" in error


def test_a_conformance_run_in_which_no_check_ran_fails() -> None:
    assert main(["conformance", "whatsapp", "-k", "no_such_check"]) != 0


@pytest.mark.anyio
async def test_a_conversation_over_the_sandboxes() -> None:
    kits = served_kits()
    sandbox = SandboxApp(kits)
    config = tomllib.loads(sandbox_config("http://sandbox.test", kits))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as http:
        channels = {}
        for route, table in config["channels"].items():
            kind = table.pop("type")
            channel = load_channel(kind).from_config(table, http_client=http, clock=FakeClock())
            channels[route] = channel
        for route, channel in channels.items():
            kit = kits[route]
            for body in kit.open_conversation(kit.customer, channel.clock.now()):
                await channel.receive(kit.sign(kit.webhook(body), None))
            wrote = f"http://sandbox.test/{route}/_sandbox/customer-wrote"
            assert (await http.post(wrote, json={"address": kit.customer})).status_code == 204
            receipt = await channel.send(
                Message(contact=channel.identity(kit.customer), text="hello")
            )
            assert receipt.contact.address == kit.customer, route
        whatsapp = channels["whatsapp"]
        uploaded = await whatsapp.upload_media(whatsapp_kit.kit.media)  # type: ignore[arg-type]
        assert await whatsapp.download_media(uploaded) == whatsapp_kit.kit.media.data  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_sandbox_enforces_the_providers_windows() -> None:
    kits = served_kits()
    sandbox = SandboxApp(kits)
    config = tomllib.loads(sandbox_config("http://sandbox.test", kits))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as http:
        for route, code in (("whatsapp", 131047), ("wechat", 45015)):
            table = config["channels"][route]
            channel = load_channel(table.pop("type")).from_config(table, http_client=http)
            customer = channel.identity(kits[route].customer)
            # chatbridge believes the window is open; the provider knows the customer never wrote
            await channel.store.update_contact_state(
                customer, follower=True, last_inbound_at=channel.clock.now()
            )
            with pytest.raises(ProviderPolicyError) as refused:
                await channel.send(Message(contact=customer, text="hello"))
            assert refused.value.code == code


@pytest.mark.anyio
async def test_the_sandbox_fails_sends_to_undeliverable_contacts_later() -> None:
    """A send to a contact marked undeliverable is accepted, then reported failed by a
    signed status webhook that the channel maps to a failed StatusUpdate of that send."""
    served = served_kits()
    kits = {name: kit for name, kit in served.items() if kit.failed_later}
    assert set(kits) >= {"whatsapp", "sms-twilio", "sms-vonage", "wechat"}
    reports: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        reports.append(request)
        return httpx.Response(200)

    webhooks = httpx.AsyncClient(transport=httpx.MockTransport(receive))
    sandbox = SandboxApp(served, client=webhooks)
    config = tomllib.loads(sandbox_config("http://sandbox.test", kits))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox)) as http:
        for route, kit in kits.items():
            table = config["channels"][route]
            channel = load_channel(table.pop("type")).from_config(table, http_client=http)
            contact = channel.identity(kit.customer)
            await channel.store.update_contact_state(
                contact, follower=True, last_inbound_at=channel.clock.now()
            )
            control = f"http://sandbox.test/{route}/_sandbox"
            await http.post(f"{control}/customer-wrote", json={"address": kit.customer})
            mark = {"address": kit.customer, "webhook": f"https://app.test/{route}"}
            assert (await http.post(f"{control}/undeliverable", json=mark)).status_code == 204
            template = kit.outside_window(contact) if kit.outside_window else None
            receipt = await channel.send(template or Message(contact=contact, text="hello"))
            [report] = reports
            reports.clear()
            request = WebhookRequest("POST", str(report.url), dict(report.headers), report.content)
            [event] = (await channel.receive(request)).events
            assert isinstance(event, StatusUpdate), route
            assert (event.state, event.message_id) == (DeliveryState.FAILED, receipt.message_id)
            assert event.errors, route
        line = await http.post("http://sandbox.test/line/_sandbox/undeliverable", json=mark)
        assert line.status_code == 400  # LINE reports no delivery failures
        for webhook in ("ftp://app.test/x", "http://[::1/x", 7):
            wrong = {"address": kit.customer, "webhook": webhook}
            answer = await http.post(f"{control}/undeliverable", json=wrong)
            assert answer.status_code == 400, webhook


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_serve_with_two_workers_handles_each_event_once_and_stops_on_sigterm(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    handled = tmp_path / "handled"
    monkeypatch.setenv("CHATBRIDGE_TEST_HANDLED", str(handled))
    config = tmp_path / "chatbridge.toml"
    if backend == "sqlite":
        store = f'kind = "sqlite"\npath = "{tmp_path / "state.db"}"'
        outbox = f'kind = "sqlite"\npath = "{tmp_path / "outbox.db"}"'
    else:
        url = request.getfixturevalue("redis_url").rpartition("/")[0] + "/7"  # its own db
        redis.Redis.from_url(url).flushdb()
        store = outbox = f'kind = "redis"\nurl = "{url}"'
    shared = f"\n[store]\n{store}\n\n[outbox]\n{outbox}\n"
    config.write_text(WHATSAPP_CONFIG + shared)
    args = ["--config", str(config), "--workers", "2", "--handler", "tests.record_handler:record"]
    ids = [f"wamid.w{i}" for i in range(20)]
    with cli_server("serve", *args) as (base, server):

        async def deliver_each_twice() -> None:
            async with httpx.AsyncClient() as http, anyio.create_task_group() as group:
                for event_id in ids * 2:  # providers redeliver: each must be handled once
                    body = whatsapp_kit.inbound("text", {"body": "hi"}, id=event_id)
                    group.start_soon(send_webhook, whatsapp_kit.kit, f"{base}/whatsapp", body, http)

        anyio.run(deliver_each_twice)
        all_handled = 'chatbridge_events_handled_total{channel="whatsapp"} 20.0'
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{base}/metrics").text  # any process: the sum of all
            if all_handled in metrics:
                break
            time.sleep(0.05)
    assert server.returncode == 0  # SIGTERM: a graceful stop
    assert sorted(line.split()[1] for line in _lines(handled)) == sorted(ids)
    assert all_handled in metrics
    assert 'chatbridge_events_received_total{channel="whatsapp"} 40.0' in metrics


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_serve_with_workers_refuses_state_kept_per_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "chatbridge.toml"
    config.write_text(WHATSAPP_CONFIG)
    assert main(["serve", "--config", str(config), "--workers", "2"]) == 1
    assert "need a store and an outbox they share" in capsys.readouterr().err


@pytest.mark.parametrize("kit", ["wechat", "acme"])
def test_conformance_against_a_running_sandbox(kit: str) -> None:
    with cli_server("sandbox") as (url, _):  # acme: the third-party example package
        assert main(["conformance", kit, "--chatbridge-sandbox", url, "-x"]) == 0


def test_serve_receives_a_sandbox_webhook(tmp_path: Path) -> None:
    config = tmp_path / "chatbridge.toml"
    config.write_text(WHATSAPP_CONFIG)
    with cli_server("serve", "--config", str(config), stdout=subprocess.PIPE) as (base, server):
        body = whatsapp_kit.inbound("text", {"body": "served"})
        response = anyio.run(send_webhook, whatsapp_kit.kit, f"{base}/whatsapp", body)
        assert response.status_code == 200
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(2)]
        event = json.loads(lines[-1])
        assert event["type"] == "message" and event["message"]["text"] == "served"


def test_sandbox_sends_email_provider_webhooks_and_runs_smtp(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import smtplib

    assert "email" in kit_names()
    port = free_port()
    smtp = smtp_sandbox("127.0.0.1", port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail(
                "support@shop.example", ["ana@customer.example"], b"Subject: hi\r\n\r\nhello"
            )
    finally:
        smtp.stop()
    assert "support@shop.example -> ana@customer.example" in capsys.readouterr().out


def test_the_sandbox_config_round_trips_any_channel_config() -> None:
    from pydantic import BaseModel, SecretStr

    from chatbridge.plugin import ChannelKit

    class Inner(BaseModel):
        key: SecretStr
        n: int = 1

    class Config(BaseModel):
        api_base: str = "https://api.example"
        nested: Inner
        tags: list[str]
        pem: str
        unset: int | None = None
        odd: dict[str, float]

    config = Config(
        nested=Inner(key="nested-secret", n=2),
        tags=["a", 'b"c'],
        pem="-----BEGIN-----\nAAA\\\n-----END-----\x7f",
        odd={"x.y": float("inf"), "é": 1.5},
    )
    acme = load_kit("acme")
    kit = ChannelKit(**{**vars(acme), "config": config, "name": "odd"})
    assert "nested-secret" in kit.secrets
    table = tomllib.loads(sandbox_config("http://sandbox.test", {"odd": kit}))["channels"]["odd"]
    assert table.pop("type") == "odd"
    assert Config.model_validate(table) == config.model_copy(
        update={"api_base": "http://sandbox.test/odd"}
    )
