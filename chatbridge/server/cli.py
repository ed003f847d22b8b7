"""The ``chatbridge`` command: demo, serve, sandbox, verify, history, report, rules, agents,
conformance."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
import httpx

from chatbridge.errors import ChatbridgeError, WebhookError
from chatbridge.models import Event, Identity
from chatbridge.webhook import WebhookRequest


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ChatbridgeError as exc:
        print(f"chatbridge: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbridge", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="a cross-channel support conversation, offline")
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="run the webhook server from a config file")
    serve.add_argument("--config", required=True, type=Path, help="a chatbridge TOML config")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--handler", help="MODULE:FUNCTION called as handler(event, channel)")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (and the state)"
    )
    serve.set_defaults(run=_serve)

    sandbox = commands.add_parser("sandbox", help="serve loopback fakes of the provider APIs")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8900)
    sandbox.add_argument("--write-config", type=Path, help="write a serve config using it")
    sandbox.add_argument("--smtp-port", type=int, help="also run an SMTP sandbox (aiosmtpd)")
    sandbox.add_argument("--send", metavar="KIT", help="instead: send KIT's sample webhook")
    sandbox.add_argument("--sample", default=None, help="the sample's name (default: first)")
    sandbox.add_argument("--to", help="the webhook URL to --send to")
    sandbox.add_argument("--sandbox", help="the running sandbox's URL, to tell it who wrote")
    sandbox.set_defaults(run=_sandbox)

    verify = commands.add_parser("verify", help="check a captured webhook's signature")
    verify.add_argument("--config", required=True, type=Path)
    verify.add_argument("--channel", required=True, help="the [channels.<route>] to check with")
    verify.add_argument(
        "request", type=Path, help="the request as JSON: method, url, headers, body"
    )
    verify.set_defaults(run=_verify)

    history = commands.add_parser("history", help="a customer's timeline, all channels")
    history.add_argument("--config", required=True, type=Path, help="a config with [history]")
    history.add_argument("customer", help="a customer id (cus_...) or an identity CHANNEL:ADDRESS")
    history.add_argument("--limit", type=int, default=50, help="entries per page")
    history.add_argument("--before", help="the cursor a later page printed")
    history.set_defaults(run=_history)

    report = commands.add_parser("report", help="support metrics from the history")
    report.add_argument("--config", required=True, type=Path, help="a config with [history]")
    report.add_argument("--since", type=_day, help="first day (YYYY-MM-DD; default: 7 days ago)")
    report.add_argument("--until", type=_day, help="day after the last (default: tomorrow)")
    report.add_argument("--period", choices=("day", "week", "month"), default="day")
    report.add_argument("--timezone", default="UTC", help="where periods start (IANA name)")
    report.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    report.set_defaults(run=_report)

    rules = commands.add_parser("rules", help="which automation rules a message matches, and why")
    rules.add_argument("--config", required=True, type=Path, help="a config with [automation]")
    rules.add_argument("text", help="the customer's message")
    rules.add_argument("--channel", default="whatsapp", help="the channel it came on")
    rules.add_argument("--language", help="the customer's preferred language")
    rules.add_argument("--tag", action="append", default=[], help="a customer tag (repeat)")
    rules.add_argument("--at", type=_moment, help="when (ISO 8601 with offset; default: now)")
    rules.set_defaults(run=_rules)

    agents = commands.add_parser("agents", help="the agents: online, unhandled conversations")
    agents.add_argument("--config", required=True, type=Path, help="a config with [automation]")
    agents.add_argument("action", nargs="?", choices=("online", "offline"))
    agents.add_argument("agent", nargs="?", help="the agent to set online or offline")
    agents.set_defaults(run=_agents)

    conformance = commands.add_parser("conformance", help="run the conformance suite on a kit")
    conformance.add_argument("kit", help="an installed kit name or MODULE:ATTRIBUTE")
    conformance.add_argument("pytest_args", nargs=argparse.REMAINDER)
    conformance.set_defaults(run=_conformance)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from chatbridge.testing.demo import main as demo

    demo()
    return 0


def _uvicorn() -> Any:
    try:
        return import_module("uvicorn")
    except ImportError:
        print(
            "chatbridge: this command needs uvicorn: pip install 'chatbridge[server]'",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


#: What each ``serve --workers`` process reads to build its app (see :func:`worker_app`).
_CONFIG_ENV, _HANDLER_ENV = "CHATBRIDGE_SERVE_CONFIG", "CHATBRIDGE_SERVE_HANDLER"


def _serve(args: argparse.Namespace) -> int:
    from chatbridge.server import config

    if args.workers < 1:
        raise SystemExit("chatbridge: --workers needs at least 1 process")
    uvicorn = _uvicorn()
    deployment = config.load(args.config, processes=args.workers)  # refused here, if at all
    routes = ", ".join(f"/{route}" for route in deployment.channels)
    workers = f" by {args.workers} processes" if args.workers > 1 else ""
    print(f"chatbridge: serving {routes} on http://{args.host}:{args.port}{workers}", flush=True)
    where = {"host": args.host, "port": args.port, "lifespan": "on", "log_level": "warning"}
    if args.workers == 1:
        uvicorn.run(_webhook_app(deployment, args.handler), **where)
        return 0
    os.environ[_CONFIG_ENV] = str(args.config.resolve())
    os.environ[_HANDLER_ENV] = args.handler or ""
    with tempfile.TemporaryDirectory(prefix="chatbridge-metrics-") as metrics:
        # Each process writes its metrics here; GET /metrics on any of them sums them all.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", metrics)
        uvicorn.run(f"{__spec__.name}:worker_app", factory=True, workers=args.workers, **where)
    return 0


def worker_app() -> Any:
    """The webhook app of one ``serve --workers`` process (uvicorn builds one in each)."""
    from chatbridge.server import config

    deployment = config.load(os.environ[_CONFIG_ENV], processes=2)
    return _webhook_app(deployment, os.environ.get(_HANDLER_ENV) or None)


def _webhook_app(deployment: Any, handler_spec: str | None) -> Any:
    from chatbridge.server.app import Handler, WebhookApp

    handler: Handler = _load_handler(handler_spec) if handler_spec else _log_event
    app = WebhookApp(
        deployment.channels,
        handler,
        outbox=deployment.outbox,
        automation=deployment.automation,
        metrics=True,
    )
    _freeze_startup_objects()
    return app


def _freeze_startup_objects() -> None:
    """Leave the objects made so far (modules, configuration, channels: the serving
    process's for its whole life) out of the garbage collector's full passes: a pass over
    them all (~77,000) took 80-170 ms on a busy 2-core machine, every event of the moment
    waiting; those made later are few. Only ``chatbridge serve`` does this: an
    application mounting the webhook app decides for its own process."""
    gc.collect()
    gc.freeze()


def _load_handler(spec: str) -> Any:
    from chatbridge.registry import load_attribute

    try:
        return load_attribute(spec, "handle")
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"chatbridge: cannot load handler {spec}: {exc}") from exc


async def _log_event(event: Event, channel: Any) -> None:
    print(event.model_dump_json(exclude={"raw"}), flush=True)


def _sandbox(args: argparse.Namespace) -> int:
    from chatbridge.registry import load_kit
    from chatbridge.testing.sandbox import (
        SandboxApp,
        sandbox_config,
        send_webhook,
        served_kits,
        smtp_sandbox,
    )

    if args.send:
        if not args.to:
            raise SystemExit("chatbridge: --send KIT needs --to URL")
        kit = load_kit(args.send)
        sample = next((s for s in kit.samples if s.name == args.sample), kit.samples[0])
        response = anyio.run(send_webhook, kit, args.to, sample.body)
        if args.sandbox:  # the customer wrote: the provider's window opens
            control = f"{args.sandbox.rstrip('/')}/{kit.name}/_sandbox"
            httpx.post(f"{control}/customer-wrote", json={"address": kit.customer}, timeout=10)
            httpx.post(f"{control}/webhook-sent", content=sample.body, timeout=10)
        answer = f"HTTP {response.status_code} {response.text[:200]}"
        print(f"sent {kit.name} sample {sample.name!r}: {answer}")
        return 0 if response.is_success else 1
    kits = served_kits()
    base_url = f"http://{args.host}:{args.port}"
    if args.write_config:
        args.write_config.write_text(sandbox_config(base_url, kits))
        print(f"chatbridge: wrote {args.write_config} (channels pointing at {base_url})")
    app = SandboxApp(kits)
    for name in kits:
        print(f"  {name:<11} {base_url}/{name}")
    smtp = smtp_sandbox(args.host, args.smtp_port) if args.smtp_port else None
    if smtp is not None:
        print(f'  {"smtp":<11} smtp://{args.host}:{args.smtp_port} (security = "none")')
    try:
        _uvicorn().run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        if smtp is not None:
            smtp.stop()
    return 0


def _verify(args: argparse.Namespace) -> int:
    from chatbridge.server import config

    deployment = config.load(args.config)
    channel = deployment.channels.get(args.channel)
    if channel is None:
        raise SystemExit(f"chatbridge: no [channels.{args.channel}] in {args.config}")
    captured = json.loads(args.request.read_text())
    request = WebhookRequest(
        captured.get("method", "POST"),
        captured["url"],
        captured.get("headers", {}),
        captured.get("body", "").encode(),
    )
    try:
        result = anyio.run(channel.receive, request)
    except WebhookError as exc:
        print(f"REJECTED (HTTP {exc.status}): {type(exc).__name__}: {exc}")
        return 1
    kinds = ", ".join(type(event).__name__ for event in result.events) or "no events"
    print(f"OK: signature valid; {kinds}")
    return 0


def _console() -> Any:
    """A rich console; as wide as the table needs when the output is not a terminal."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _history(args: argparse.Namespace) -> int:
    from chatbridge.conversations.render import timeline_table
    from chatbridge.server import config

    channel, colon, address = args.customer.partition(":")
    who: str | Identity = Identity(channel=channel, address=address) if colon else args.customer

    async def read() -> int:
        async with config.load_history(args.config) as history:
            customer = await history.customer(who)
            if customer is None:
                print(f"chatbridge: no customer {args.customer} in the history", file=sys.stderr)
                return 1
            page = await history.timeline(customer.id, limit=args.limit, before=args.before)
        _console().print(timeline_table(customer, page))
        return 0

    return anyio.run(read)


def _report(args: argparse.Namespace) -> int:
    from chatbridge.conversations.render import report_table, write_csv
    from chatbridge.server import config

    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SystemExit(f"chatbridge: unknown time zone {args.timezone!r}") from None
    today = datetime.now(zone).date()
    since = args.since or today - timedelta(days=7)
    until = args.until or today + timedelta(days=1)

    def start(day: date) -> datetime:
        return datetime.combine(day, time(), zone)

    async def read() -> list[Any]:
        async with config.load_history(args.config) as history:
            return await history.report(
                start(since), start(until), period=args.period, timezone=args.timezone
            )

    rows = anyio.run(read)
    _console().print(report_table(rows))
    if args.csv:
        write_csv(rows, args.csv)
        print(f"chatbridge: wrote {len(rows)} rows to {args.csv}")
    return 0


def _moment(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs an offset (+09:00, Z)")
    return at


def _rules(args: argparse.Namespace) -> int:
    """The dry run: every rule, matched or not, and why."""
    from chatbridge.automation import BusinessHours, Context, Rules
    from chatbridge.server import config

    table = config.load_automation_table(args.config)
    hours = BusinessHours.from_config(table["hours"]) if "hours" in table else None
    context = Context(
        text=args.text,
        channel=args.channel,
        at=args.at or datetime.now(UTC),
        language=args.language,
        customer_tags=frozenset(args.tag),
    )
    explanations = Rules.from_config(table, hours).explain(context)
    for explanation in explanations:
        print(explanation)
    applied = [e.rule.name for e in explanations if e.applied]
    print(f"applies: {', '.join(applied)}" if applied else "applies: no rule")
    return 0


def _agents(args: argparse.Namespace) -> int:
    from chatbridge.automation import Assignments
    from chatbridge.server import config

    if bool(args.action) != bool(args.agent):
        raise SystemExit("chatbridge: agents online|offline AGENT, or no argument to list them")
    table = config.load_automation_table(args.config)

    async def run() -> tuple[dict[str, bool], dict[str, int], Assignments]:
        async with config.load_history(args.config) as history:
            assignments = Assignments.from_config(history, table)
            if args.action == "online":
                await assignments.online(args.agent)
            elif args.action == "offline":
                await assignments.offline(args.agent)
            return await assignments.status(), await assignments.load(), assignments

    try:
        online, load, assignments = anyio.run(run)
    except LookupError as exc:  # an agent the config does not list
        print(f"chatbridge: {exc}", file=sys.stderr)
        return 1
    for agent in assignments.agents.values():
        state = "online" if online.get(agent.id) else "offline"
        print(f"{agent.id:<20} {state:<8} {load.get(agent.id, 0)}/{agent.capacity} unhandled")
    return 0


def _conformance(args: argparse.Namespace) -> int:
    from chatbridge.registry import load_kit

    kit = load_kit(args.kit)  # an unknown kit fails here, naming the installed ones
    # Located, not imported, and run by a fresh interpreter: pytest must import the
    # suite itself to rewrite its asserts.
    spec = find_spec("chatbridge_conformance")
    if spec is None or spec.origin is None:
        raise SystemExit("chatbridge: install the suite: pip install 'chatbridge[conformance]'")
    checks = str(Path(spec.origin).with_name("checks.py"))
    options = ["--chatbridge-kit", args.kit] if ":" in args.kit else []
    argv = [checks, "-q", "-p", "no:cacheprovider", "--chatbridge-only", kit.name, *options]
    command = [sys.executable, "-m", "pytest", *argv, *args.pytest_args]
    return subprocess.call(command)  # noqa: S603 (our own interpreter and arguments)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
