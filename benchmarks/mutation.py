"""Mutation testing of the conformance suite: how many small bugs planted in the
channels' signature, inbound and policy code does the conformance suite alone catch?

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python -m benchmarks.mutation                   # the work tree, all of it
    .venv/bin/python -m benchmarks.mutation --ref HEAD        # the committed code and suite
    .venv/bin/python -m benchmarks.mutation --channel line --category signature
    .venv/bin/python -m benchmarks.mutation --sample inbound=1   # every inbound mutant too
    .venv/bin/python -m benchmarks.mutation --list            # the mutants, run nothing

Signature, policy and engine mutants all run; inbound ones, three times as many, are
sampled one in three by default (always the same ones). On 2 cores, signature and
policy take about 30 minutes; the engine under the suite about 90 more (its ~70
import-time mutants each need every check of every kit and variant). The engine (the policy engine,
reservations and the send path's checks: chatbridge's own code, which plugins use but
do not write) is reported apart from the plugins' policy code; ``--project-tests`` runs
the project's own tests of it (``ENGINE_TESTS``) on each mutant instead of the suite:

    .venv/bin/python -m benchmarks.mutation --category engine --project-tests

It prints a table (category x channel: mutants, equivalent, killed, survived, of which
not reached, timeout, score) and writes to ``--workdir`` (default /tmp/mutation):
``mutation-results.json`` (every mutant and its verdict), ``mutation-survivors.json``
(file, line, diff of each survivor) and ``mutation-report.md`` (the table, then the
survivors by file). pytest never collects it (testpaths = tests).

How it works:

- **Mutants** come from mutmut's operators (mutmut 3.8.1: numbers and strings changed,
  comparison, arithmetic and boolean operators swapped, ``not`` dropped, call arguments
  set to None or dropped, assignments set to None...), one mutant per run, written over
  a copy of the file. ``mutmut run`` itself is not used: its trampolines reach function
  bodies only, and a channel's policy is class-level data (``rules =
  PolicyRules(window=timedelta(hours=24))``). Left out as message text only: strings
  among a raised exception's arguments, and ``what`` arguments and defaults (the name
  of the field an error message names: ``require_match(..., what=)``, ``load_json``).
- **Scopes** (``SCOPES``): per category and channel, files, or functions, methods and
  class attributes of a file, and the kits whose conformance runs exercise them. "core"
  is code all channels share, "graph" Meta's Graph API code (WhatsApp, Messenger,
  Instagram), "sms" what Twilio and Vonage share.
- **The work tree is never written.** The sources (the work tree, or ``--ref``) are
  snapshotted under ``--workdir`` and copied once per worker; PYTHONPATH puts the copy
  first, and ``benchmarks/mutation_worker.py`` fails a run that imported chatbridge, the
  suite or the acme example from anywhere else. Each worker's fork server (same module)
  starts a run in ~0.4 s. Ctrl-C or SIGTERM kills the runs and reports what was measured.
- **Test selection.** The unmutated suite first runs once per kit under coverage,
  recording which checks run each line (a coverage context per check: its setup, call
  and teardown); it must pass. A mutant then runs, with ``pytest -x`` and the fastest
  first, the checks of its scope's kits that run its line; all of a kit's checks when
  the line also runs outside any check (at import: module and class-level code); none
  when no check runs it: "not reached", a survivor no check can see. Hypothesis is
  derandomized.
- **Verdicts.** killed: the run failed (a failing check, or an import or collection
  error); survived: it passed; timeout: killed at 10 s + ``--timeout-factor`` x the
  selected checks' time under coverage; equivalent: a survivor that
  ``benchmarks/mutation_equivalents.py`` lists, reviewed as no observable change.
  Score = (killed + timeout) / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import libcst as cst
from coverage import CoverageData
from libcst._nodes.internal import CodegenState
from libcst.metadata import (
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    WhitespaceInclusivePositionProvider,
)
from mutmut.mutation.file_mutation import NEVER_MUTATE_FUNCTION_NAMES, MutationVisitor
from mutmut.mutation.mutators import mutation_operators
from mutmut.mutation.pragma_handling import IgnoredCode

from benchmarks.mutation_equivalents import equivalence

REPO = Path(__file__).resolve().parent.parent
SUITE = "tests/test_conformance.py"
SOURCES = ("chatbridge", "conformance", "examples/acme-chat", "tests", "pyproject.toml")
ALL_KITS = (
    "whatsapp",
    "wechat",
    "line",
    "email",
    "sms-twilio",
    "sms-vonage",
    "messenger",
    "instagram",
    "acme",
)
META = ("whatsapp", "messenger", "instagram")
SMS = ("sms-twilio", "sms-vonage")
TIMEOUT_BASE = 10.0
#: The project's own tests of the policy engine (``--project-tests``): the engine's, the
#: send path's, and the channels' whose rules use its quota, rate, tag and reply parts
ENGINE_TESTS = (
    "tests/test_policy.py",
    "tests/test_ambiguous_sends.py",
    "tests/test_channel_contract.py",
    "tests/test_store.py",
    "tests/test_sms.py",
    "tests/test_line.py",
    "tests/test_messenger.py",
    "tests/test_whatsapp.py",
    "tests/test_wechat.py",
)


@dataclass(frozen=True)
class Scope:
    """Code of one category and channel: ``targets`` maps a file to the names in it to
    mutate (``function``, ``Class.method``, ``Class.attribute``, ``CONSTANT``), or to
    None for the whole file; ``kits`` are the kits whose conformance runs exercise it."""

    category: str
    channel: str
    kits: tuple[str, ...]
    targets: Mapping[str, tuple[str, ...] | None]


SCOPES = (
    # -- signature: the schemes, and each channel's webhook entry (what it verifies,
    #    with what, before parsing)
    Scope("signature", "core", ALL_KITS, {"chatbridge/plugin/signing.py": None}),
    Scope(
        "signature",
        "graph",
        META,
        {
            "chatbridge/plugin/graph.py": (
                "SIGNATURE_HEADER",
                "sign",
                "verify",
                "answer_handshake",
                "receive",
            )
        },
    ),
    Scope(
        "signature",
        "whatsapp",
        ("whatsapp",),
        {"chatbridge/whatsapp/channel.py": ("WhatsAppChannel._receive",)},
    ),
    Scope(
        "signature",
        "messenger",
        ("messenger", "instagram"),
        {"chatbridge/messenger/channel.py": ("MessengerChannel._receive",)},
    ),
    Scope(
        "signature",
        "line",
        ("line",),
        {
            "chatbridge/line/signature.py": None,
            "chatbridge/line/channel.py": ("LineChannel._receive",),
        },
    ),
    Scope(
        "signature",
        "wechat",
        ("wechat",),
        {
            "chatbridge/wechat/signature.py": None,
            # encrypt() only seals passive replies (outbound), not what is verified
            "chatbridge/wechat/crypto.py": ("_PAD_BLOCK", "aes_key", "MessageCrypto.decrypt"),
            "chatbridge/wechat/channel.py": ("WeChatChannel._receive", "WeChatChannel._open"),
        },
    ),
    Scope(
        "signature",
        "sms-twilio",
        ("sms-twilio",),
        {
            "chatbridge/sms/twilio/signature.py": None,
            "chatbridge/sms/twilio/channel.py": (
                "TwilioChannel._parse",
                "TwilioChannel._signed_url",
            ),
        },
    ),
    Scope(
        "signature",
        "sms-vonage",
        ("sms-vonage",),
        {
            # not sign_jwt: it signs for tests and fakes only
            "chatbridge/sms/vonage/signature.py": (
                "sms_signature",
                "verify_sms",
                "verify_jwt",
                "_within",
            ),
            "chatbridge/sms/vonage/channel.py": (
                "VonageConfig.timestamp_tolerance",
                "VonageChannel._parse",
            ),
        },
    ),
    Scope(
        "signature",
        "email",
        ("email",),
        {
            # not sign_sendgrid: it signs for tests and fakes only
            "chatbridge/email/signature.py": (
                "SENDGRID_SIGNATURE",
                "SENDGRID_TIMESTAMP",
                "check_timestamp",
                "mailgun_signature",
                "verify_mailgun",
                "sendgrid_public_key",
                "verify_sendgrid",
            ),
            "chatbridge/email/channel.py": (
                "EmailConfig.timestamp_tolerance",
                "EmailChannel._receive",
                "EmailChannel._verify_mailgun",
                "EmailChannel._mailgun_event",
                "EmailChannel._sendgrid",
            ),
        },
    ),
    # -- inbound: the receive path all channels share, and each channel's parsing into
    #    the common model
    Scope(
        "inbound",
        "core",
        ALL_KITS,
        {
            "chatbridge/plugin/parsing.py": None,
            "chatbridge/channel.py": (
                "Channel.max_body_bytes",
                "Channel.dedup_ttl",
                "Channel.receive",
                "Channel.parse_request",
                "Channel.dedup_key",
                "Channel._check_content_type",
                "Channel._check_size",
                "Channel._apply",
            ),
        },
    ),
    Scope(
        "inbound",
        "whatsapp",
        ("whatsapp",),
        {
            "chatbridge/whatsapp/inbound.py": None,
            "chatbridge/whatsapp/channel.py": (
                "WhatsAppChannel.max_body_bytes",
                "WhatsAppChannel.content_types",
            ),
        },
    ),
    Scope(
        "inbound",
        "messenger",
        ("messenger", "instagram"),
        {
            "chatbridge/messenger/inbound.py": None,
            "chatbridge/messenger/channel.py": (
                "MessengerChannel.max_body_bytes",
                "MessengerChannel.webhook_object",
            ),
        },
    ),
    Scope(
        "inbound",
        "instagram",
        ("instagram",),
        {"chatbridge/instagram/channel.py": ("InstagramChannel.webhook_object",)},
    ),
    Scope(
        "inbound",
        "line",
        ("line",),
        {
            "chatbridge/line/inbound.py": None,
            "chatbridge/line/channel.py": ("LineChannel.content_types",),
        },
    ),
    Scope(
        "inbound",
        "wechat",
        ("wechat",),
        {
            "chatbridge/wechat/inbound.py": None,
            "chatbridge/wechat/payloads.py": ("_parser", "parse_xml", "_children"),
            "chatbridge/wechat/channel.py": (
                "WeChatChannel.max_body_bytes",
                "WeChatChannel.content_types",
                "WeChatChannel._read_push",
            ),
        },
    ),
    Scope(
        "inbound",
        "sms-twilio",
        ("sms-twilio",),
        {
            "chatbridge/sms/twilio/inbound.py": None,
            "chatbridge/sms/twilio/channel.py": ("TwilioChannel.content_types",),
        },
    ),
    Scope(
        "inbound",
        "sms-vonage",
        ("sms-vonage",),
        {
            "chatbridge/sms/vonage/inbound.py": None,
            "chatbridge/sms/vonage/channel.py": (
                "VonageChannel.content_types",
                "VonageChannel._params",
            ),
        },
    ),
    Scope(
        "inbound",
        "email",
        ("email",),
        {
            "chatbridge/email/providers.py": None,
            "chatbridge/email/mime.py": (
                "_MSG_ID",
                "message_ids",
                "thread_key",
                "sender_mailbox",
                "_MimeHeader",
                "_reading_policy",
                "parse_message",
                "_message",
                "_body",
                "_attachment_parts",
                "_attachment",
                "_filename",
                "_date",
            ),
            "chatbridge/email/channel.py": ("EmailChannel.content_types",),
        },
    ),
    # -- engine: chatbridge's policy engine, quota and rate reservations and the send
    #    path's checks, which every channel uses and no plugin writes (reported apart)
    Scope(
        "engine",
        "core",
        ALL_KITS,
        {
            "chatbridge/policy.py": None,
            "chatbridge/reservation.py": None,
            "chatbridge/channel.py": (
                "Channel.rules",
                "Channel.window",
                "Channel.check",
                "Channel._is_billable",
                "Channel._send",
            ),
        },
    ),
    # -- policy: each channel's declared rules, reply and quota code, SMS keywords
    Scope(
        "policy",
        "whatsapp",
        ("whatsapp",),
        {"chatbridge/whatsapp/channel.py": ("WhatsAppChannel.rules",)},
    ),
    Scope(
        "policy",
        "messenger",
        ("messenger", "instagram"),
        {"chatbridge/messenger/channel.py": ("MessengerChannel.rules",)},
    ),
    Scope(
        "policy",
        "instagram",
        ("instagram",),
        {"chatbridge/instagram/channel.py": ("InstagramChannel.rules",)},
    ),
    Scope(
        "policy",
        "wechat",
        ("wechat",),
        {"chatbridge/wechat/channel.py": ("WeChatChannel.rules",)},
    ),
    Scope(
        "policy",
        "line",
        ("line",),
        {
            "chatbridge/line/channel.py": (
                "LineConfig.monthly_quota",
                "LineConfig.quota_timezone",
                "LineConfig.reply_token_ttl",
                "LineChannel.__init__",
                "LineChannel._reply_token",
                "LineChannel._is_billable",
            )
        },
    ),
    Scope(
        "policy",
        "sms",
        SMS,
        {
            "chatbridge/sms/keywords.py": None,
            "chatbridge/sms/channel.py": (
                "SmsChannel.__init__",
                "SmsChannel.answer",
                "SmsChannel._receive",
                "SmsChannel._keyword_reply",
                "_keyword_events",
            ),
        },
    ),
)


# -- mutants ---------------------------------------------------------------------------


@dataclass
class Mutant:
    id: str  # file:line:number
    category: str
    channel: str
    file: str
    line: int
    name: str  # the function, method or attribute mutated
    diff: str
    status: str = "pending"  # killed, survived, not reached, timeout
    seconds: float = 0.0
    checks: int = 0  # conformance checks selected to run
    exit_code: int | None = None


@dataclass
class Plan:
    """How to run one mutant: the mutated file, its scope, and the lines whose
    coverage says which checks reach it."""

    source: str
    scope: Scope
    lines: set[int]


class _Visitor(MutationVisitor):
    """mutmut's visitor, also into decorated functions: mutmut leaves those out only
    because its trampolines cannot wrap them, and here each mutant is a whole file."""

    def _skip_node_and_children(self, node: cst.CSTNode) -> bool:
        if (
            isinstance(node, cst.FunctionDef)
            and node.decorators
            and node.name.value not in NEVER_MUTATE_FUNCTION_NAMES
        ):
            return False
        return bool(super()._skip_node_and_children(node))


def _names(tree: ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of each module-level and class-level statement."""

    def first(node: ast.stmt) -> int:
        decorators: list[ast.expr] = getattr(node, "decorator_list", [])
        return min([node.lineno] + [d.lineno for d in decorators])

    def name(node: ast.stmt) -> str | None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            return node.name
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        return target.id if isinstance(target, ast.Name) else None

    spans = []
    for node in tree.body:
        if outer := name(node):
            spans.append((first(node), node.end_lineno or node.lineno, outer))
        for child in node.body if isinstance(node, ast.ClassDef) else []:
            if inner := name(child):
                spans.append((first(child), child.end_lineno or child.lineno, f"{outer}.{inner}"))
    return spans


def _statements(tree: ast.Module) -> list[tuple[int, int, set[int]]]:
    """(first line, last line, header lines) of every statement. Coverage reports a
    statement at its first line, so a mutant at line L is reached when a header line of
    the innermost statement holding L ran."""
    result = []
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt | ast.excepthandler):
            decorators = getattr(node, "decorator_list", [])
            first = min([node.lineno] + [d.lineno for d in decorators])
            last = node.end_lineno or node.lineno
            body = getattr(node, "body", None)
            header = body[0].lineno - 1 if isinstance(body, list) and body else last
            result.append((first, last, set(range(first, max(first, header) + 1))))
    return result


def _code(module: cst.Module, node: cst.CSTNode, indent: str) -> str:
    """``node``'s code inside a block indented by ``indent`` (which the continuation
    lines of a parenthesized expression carry)."""
    state = CodegenState(module.default_indent, module.default_newline, indent_tokens=[indent])
    node._codegen(state)
    return "".join(state.tokens)


#: Functions taking ``what`` positionally, and its position.
_WHAT_POSITION = {"load_json": 1}


def _what(arg: cst.Arg, call: cst.CSTNode | None) -> bool:
    """Whether ``arg`` of ``call`` is a ``what``: the codebase's name for the thing an
    error message names (``require_match(..., what=...)``, ``load_json(body, what)``)."""
    if arg.keyword is not None:
        return arg.keyword.value == "what"
    if not isinstance(call, cst.Call):
        return False
    func = call.func
    name = func.attr if isinstance(func, cst.Attribute) else func
    position = _WHAT_POSITION.get(name.value) if isinstance(name, cst.Name) else None
    return position is not None and position < len(call.args) and call.args[position] is arg


def _message_only(node: cst.CSTNode, mutated: cst.CSTNode, parents: Mapping[Any, Any]) -> bool:
    """Whether the mutation changes only the text of an error message: a string among a
    raised exception's arguments, or a ``what`` (argument or default)."""
    if isinstance(node, cst.Call) and isinstance(mutated, cst.Call):
        in_raise = isinstance(parents.get(node), cst.Raise)
        changed = [a for a in node.args if not any(a.deep_equals(b) for b in mutated.args)]
        return bool(changed) and all(
            _what(arg, node) or (in_raise and isinstance(arg.value, cst.BaseString))
            for arg in changed
        )
    current: cst.CSTNode | None = node if isinstance(node, cst.BaseString) else None
    while current is not None and not isinstance(current, cst.FunctionDef | cst.ClassDef):
        parent = parents.get(current)
        if (
            isinstance(current, cst.Raise)
            or (isinstance(current, cst.Arg) and _what(current, parent))
            or (isinstance(current, cst.Param) and current.name.value == "what")
        ):
            return True
        current = parent
    return False


def make_mutants(source: Path, scopes: Sequence[Scope]) -> tuple[list[Mutant], dict[str, Plan]]:
    """The mutants of ``scopes`` in the sources at ``source``, and how to run each."""
    mutants: list[Mutant] = []
    plans: dict[str, Plan] = {}
    owners: dict[str, list[tuple[Scope, tuple[str, ...] | None]]] = defaultdict(list)
    for scope in scopes:
        for file, targets in scope.targets.items():
            owners[file].append((scope, targets))
    for file, wanted in owners.items():
        text = (source / file).read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        named, statements = _names(tree), _statements(tree)
        wrapper = MetadataWrapper(cst.parse_module(text))
        visitor = _Visitor(mutation_operators, IgnoredCode(set(), set(), set()))
        wrapper.visit(visitor)
        positions = wrapper.resolve(PositionProvider)
        spans = wrapper.resolve(WhitespaceInclusivePositionProvider)
        parents = wrapper.resolve(ParentNodeProvider)
        starts = [0]
        for line_text in text.splitlines(keepends=True):
            starts.append(starts[-1] + len(line_text))
        for number, mutation in enumerate(visitor.mutations):
            original, replacement = mutation.original_node, mutation.mutated_node
            line = positions[original].start.line
            holding = [(last - first, n) for first, last, n in named if first <= line <= last]
            name = min(holding, default=(0, "<module>"))[1]
            owner = next((s for s, only in wanted if only is None or name in only), None)
            if owner is None or _message_only(original, replacement, parents):
                continue
            statement = min(
                (s for s in statements if s[0] <= line <= s[1]),
                key=lambda s: s[1] - s[0],
                default=(line, line, {line}),
            )
            head = lines[statement[0] - 1]
            indent = head[: len(head) - len(head.lstrip())]
            span = spans[original]
            begin = starts[span.start.line - 1] + span.start.column
            end = starts[span.end.line - 1] + span.end.column
            if text[begin:end] == _code(wrapper.module, original, indent):
                # The mutated node's code in place of the original's: a hundred times
                # faster than deep_replace and code generation of the whole module.
                mutated = text[:begin] + _code(wrapper.module, replacement, indent) + text[end:]
            else:
                module = wrapper.module.deep_replace(original, replacement)
                mutated = module.code if isinstance(module, cst.Module) else text
            if mutated == text:
                continue
            after = mutated.splitlines()
            new_end = span.end.line + len(after) - len(lines)
            diff = [f"-{old}" for old in lines[span.start.line - 1 : span.end.line]]
            diff += [f"+{new}" for new in after[span.start.line - 1 : new_end]]
            where = f"{file}:{line}:{number}"
            mutant = Mutant(where, owner.category, owner.channel, file, line, name, "\n".join(diff))
            mutants.append(mutant)
            plans[mutant.id] = Plan(mutated, owner, statement[2] | {line})
    return mutants, plans


# -- sources and workers ---------------------------------------------------------------


def snapshot(workdir: Path, ref: str | None) -> Path:
    """The sources to mutate, copied to ``workdir/source``: the work tree, or ``ref``."""
    source = workdir / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    if ref is not None:
        archive = subprocess.run(  # noqa: S603 (git, with the --ref given)
            ["git", "-C", str(REPO), "archive", "--format=tar", ref, *SOURCES],  # noqa: S607
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
    else:
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*cache", ".hypothesis")
        for part in SOURCES:
            if (REPO / part).is_dir():
                shutil.copytree(REPO / part, source / part, ignore=skip)
            else:
                shutil.copy2(REPO / part, source / part)
    (source / "benchmarks").mkdir()
    (source / "benchmarks/__init__.py").touch()
    shutil.copy2(Path(__file__).with_name("mutation_worker.py"), source / "benchmarks")
    return source


class Worker:
    """One copy of the sources, with its fork server (``benchmarks.mutation_worker``)."""

    def __init__(self, root: Path, source: Path) -> None:
        self.root = root
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(source, root)
        self.server: subprocess.Popen[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None  # run()'s
        self._stdin: IO[str] | None = None
        self._stdout: IO[str] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        paths = [self.root, self.root / "conformance", self.root / "examples/acme-chat"]
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(map(str, paths)),
            "CHATBRIDGE_MUTATION_ROOT": str(self.root),
            **extra,
        }

    def run(self, args: Sequence[str], timeout: float, **env: str) -> int | None:
        """``python args`` in a new process: its exit code, None on timeout."""
        self.process = process = subprocess.Popen(  # noqa: S603 (this interpreter)
            [sys.executable, *args],
            cwd=self.root,
            env=self.env(**env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            _kill(process)
            self.process = None

    def check(self, args: Sequence[str], timeout: float) -> int | None:
        """pytest ``args`` in a child of the fork server: its exit code, None on timeout."""
        if self.server is None:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.mutation_worker"],
                cwd=self.root,
                env=self.env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # the server and its children: one process group
            )
            self._stdin, self._stdout = self.server.stdin, self.server.stdout
        assert self._stdin is not None and self._stdout is not None
        self._stdin.write(json.dumps({"args": list(args), "timeout": timeout}) + "\n")
        self._stdin.flush()
        answer = self._stdout.readline()
        if not answer:
            raise RuntimeError(f"the fork server in {self.root} stopped")
        code: int | None = json.loads(answer)
        return code

    def stop(self) -> None:
        for process in (self.server, self.process):
            if process is not None:
                _kill(process)


def _kill(process: subprocess.Popen[Any]) -> None:
    """Kill ``process`` and its process group (it leads one), unless it has ended."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Pool:
    """The workers, lent to one mutant or kit at a time."""

    def __init__(self, workdir: Path, source: Path, count: int) -> None:
        self.workers = [Worker(workdir / f"work-{n}", source) for n in range(count)]
        self.stopping = threading.Event()
        self._free: queue.Queue[Worker] = queue.Queue()
        for worker in self.workers:
            self._free.put(worker)

    @contextmanager
    def lease(self) -> Iterator[Worker]:
        worker = self._free.get()
        try:
            if self.stopping.is_set():
                raise KeyboardInterrupt
            yield worker
        except Exception:
            if self.stopping.is_set():  # its run was killed by stop()
                raise KeyboardInterrupt from None
            raise
        finally:
            self._free.put(worker)
        if self.stopping.is_set():  # its run was killed by stop(): no verdict
            raise KeyboardInterrupt

    def stop(self) -> None:
        self.stopping.set()
        for worker in self.workers:
            worker.stop()


def pytest_args(kits: Sequence[str], tests: Sequence[str] = (SUITE,), *options: str) -> list[str]:
    """A conformance run of ``tests`` (node ids, or the suite) for ``kits``. Modules the
    fork server imported cannot be assertion-rewritten: pytest's warning is not an error."""
    return [
        *("-q", "-p", "no:cacheprovider", "-p", "benchmarks.mutation_worker"),
        *("-W", "ignore::pytest.PytestAssertRewriteWarning", *options),
        *(f"--chatbridge-only={kit}" for kit in kits),
        *tests,
    ]


# -- coverage and runs -----------------------------------------------------------------


@dataclass
class Coverage:
    """What the unmutated suite ran, per kit: its checks (node id -> seconds), and the
    checks that ran each line (file -> line -> node ids; "" outside any check)."""

    checks: dict[str, dict[str, float]]
    lines: dict[str, dict[str, dict[int, set[str]]]]

    def select(self, kits: Sequence[str], file: str, lines: set[int]) -> dict[str, float]:
        """The checks of ``kits`` that run any of ``lines`` (node id -> seconds), fastest
        first: ``-x`` stops at the first failure."""
        selected = {}
        for kit in kits:
            ran = [self.lines[kit].get(file, {}).get(line, set()) for line in lines]
            contexts = set().union(*ran)
            for node, seconds in self.checks.get(kit, {}).items():
                if "" in contexts or node in contexts:
                    selected[node] = seconds
        return dict(sorted(selected.items(), key=lambda item: item[1]))


def measure_coverage(pool: Pool, out: Path, kits: Sequence[str], files: set[str]) -> Coverage:
    """Run the unmutated suite once per kit under coverage; stop if it fails."""
    out.mkdir(exist_ok=True)

    def one(kit: str) -> tuple[dict[str, float], dict[str, dict[int, set[str]]]]:
        with pool.lease() as worker:
            data, durations = out / f"coverage-{kit}", out / f"durations-{kit}.json"
            include = ",".join(str(worker.root / file) for file in files)
            args = [
                *("-m", "coverage", "run", f"--data-file={data}"),
                *(f"--include={include}", "-m", "pytest", *pytest_args([kit])),
            ]
            code = worker.run(args, 900, CHATBRIDGE_MUTATION_DURATIONS=str(durations))
        if code != 0:
            raise SystemExit(f"the unmutated conformance suite fails for {kit} (exit {code})")
        covered = CoverageData(basename=str(data))
        covered.read()
        lines = {
            str(Path(measured).relative_to(worker.root)): {
                line: set(contexts)
                for line, contexts in covered.contexts_by_lineno(measured).items()
            }
            for measured in covered.measured_files()
        }
        return json.loads(durations.read_text()), lines

    with ThreadPoolExecutor(len(pool.workers)) as executor:
        results = dict(zip(kits, executor.map(one, kits), strict=True))
    return Coverage(
        {kit: checks for kit, (checks, _) in results.items()},
        {kit: lines for kit, (_, lines) in results.items()},
    )


def run_mutant(
    pool: Pool, mutant: Mutant, plan: Plan, checks: dict[str, float], factor: float
) -> None:
    """Run ``checks`` on ``mutant``."""
    budget = TIMEOUT_BASE + factor * sum(checks.values())
    # node ids end in [kit] or [kit:variant]; --chatbridge-only takes the kit's name
    kits = sorted({node.rpartition("[")[2].rstrip("]").partition(":")[0] for node in checks})
    started = time.monotonic()
    code = _run(pool, mutant, plan, pytest_args(kits, list(checks), "-x"), budget)
    mutant.seconds = round(time.monotonic() - started, 2)
    mutant.exit_code = code
    mutant.status = "timeout" if code is None else "survived" if code == 0 else "killed"


def run_project_tests(pool: Pool, mutant: Mutant, plan: Plan) -> None:
    """Run the project's own tests of the engine (``ENGINE_TESTS``) on ``mutant``."""
    started = time.monotonic()
    code = _run(pool, mutant, plan, pytest_args([], ENGINE_TESTS, "-x"), 120)
    mutant.seconds = round(time.monotonic() - started, 2)
    mutant.exit_code = code
    mutant.status = "timeout" if code is None else "survived" if code == 0 else "killed"


def _run(pool: Pool, mutant: Mutant, plan: Plan, args: list[str], budget: float) -> int | None:
    """pytest ``args`` on ``mutant`` in the copy of a free worker, restored after: the
    exit code, None on timeout."""
    with pool.lease() as worker:
        path = worker.root / mutant.file
        original = path.read_text()
        try:
            path.write_text(plan.source)
            Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)
            return worker.check(args, budget)
        finally:
            path.write_text(original)


def sample(mutants: list[Mutant], rates: Mapping[str, int]) -> list[Mutant]:
    """One in ``rates[category]`` of a category's mutants, always the same ones (by a
    hash of file and diff, not of line numbers that move as the code changes)."""
    return [
        m
        for m in mutants
        if zlib.crc32(f"{m.file}\n{m.diff}".encode()) % rates.get(m.category, 1) == 0
    ]


# -- report ----------------------------------------------------------------------------

STATUSES = ("killed", "survived", "not reached", "timeout", "equivalent")
CATEGORIES = ("signature", "inbound", "policy", "engine")


def table(mutants: Sequence[Mutant]) -> list[str]:
    rows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    for mutant in mutants:
        if mutant.status in STATUSES:
            rows[mutant.category, mutant.channel][mutant.status] += 1
            rows[mutant.category, "(all)"][mutant.status] += 1
    lines = [
        "| category | channel | mutants | equivalent | killed | survived | (not reached) "
        "| timeout | score |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (category, channel), counts in sorted(
        rows.items(), key=lambda row: (CATEGORIES.index(row[0][0]), row[0][1] == "(all)", row[0])
    ):
        survived = counts["survived"] + counts["not reached"]
        detected = counts["killed"] + counts["timeout"]
        total, equivalent = detected + survived + counts["equivalent"], counts["equivalent"]
        score = f"{detected / (total - equivalent):.0%}" if total > equivalent else "-"
        lines.append(
            f"| {category} | {channel} | {total} | {equivalent} | {counts['killed']} | "
            f"{survived} | {counts['not reached']} | {counts['timeout']} | {score} |"
        )
    return lines


def commit(ref: str) -> str:
    command = ["git", "-C", str(REPO), "rev-parse", "--short", ref]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603


def write_results(workdir: Path, mutants: Sequence[Mutant], origin: str, minutes: float) -> None:
    done = [m for m in mutants if m.status != "pending"]
    survivors = [m for m in done if m.status in ("survived", "not reached")]
    results = workdir / "mutation-results.json"
    results.write_text(json.dumps([asdict(m) for m in done], indent=1))
    fields = ("id", "category", "channel", "file", "line", "name")
    (workdir / "mutation-survivors.json").write_text(
        json.dumps(
            [
                {field: getattr(m, field) for field in fields}
                | {"not_reached": m.status == "not reached", "diff": m.diff}
                for m in survivors
            ],
            indent=1,
        )
    )
    report = ["# Mutation testing of the conformance suite", ""]
    report += [f"{origin}; {len(done)} with a verdict, in {minutes:.1f} min.", ""]
    report += table(done)
    by_file: dict[str, list[Mutant]] = defaultdict(list)
    for mutant in survivors:
        by_file[mutant.file].append(mutant)
    equivalent = [m for m in done if m.status == "equivalent"]
    report += [
        "",
        f"## Equivalent ({len(equivalent)}, reviewed: benchmarks/mutation_equivalents.py)",
        "",
    ]
    for m in sorted(equivalent, key=lambda m: (m.file, m.line)):
        report += [f"- {m.file}:{m.line} `{m.name}`: {equivalence(m)}"]
    report += ["", "## Survivors", ""]
    for file, group in sorted(by_file.items()):
        report += [f"### {file} ({len(group)})", ""]
        for m in sorted(group, key=lambda m: m.line):
            reached = ", not reached" if m.status == "not reached" else ""
            report += [f"{m.category}/{m.channel} `{m.name}`, line {m.line}{reached}:", ""]
            report += ["```diff", m.diff, "```", ""]
    (workdir / "mutation-report.md").write_text("\n".join(report))


# -- main ------------------------------------------------------------------------------


def _submit_conformance(
    executor: ThreadPoolExecutor,
    pool: Pool,
    mutants: Sequence[Mutant],
    plans: Mapping[str, Plan],
    args: argparse.Namespace,
) -> list[Future[None]]:
    """Measure the unmutated suite's coverage, then submit each mutant with the checks
    that reach it (the longest first: no long tail); mark the others not reached."""
    kits = sorted({kit for plan in plans.values() for kit in plan.scope.kits})
    files = {file for plan in plans.values() for file in plan.scope.targets}
    print(f"the unmutated suite under coverage for {len(kits)} kits")
    started = time.monotonic()
    coverage = measure_coverage(pool, args.workdir / "coverage", kits, files)
    print(f"coverage measured in {time.monotonic() - started:.0f} s")
    work = []
    for mutant in mutants:
        plan = plans[mutant.id]
        checks = coverage.select(plan.scope.kits, mutant.file, plan.lines)
        mutant.checks = len(checks)
        if checks:
            work.append((mutant, plan, checks))
        else:
            mutant.status = "not reached"
    work.sort(key=lambda item: -sum(item[2].values()))
    return [executor.submit(run_mutant, pool, *item, args.timeout_factor) for item in work]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--channel", action="append", help="only this channel's rows")
    parser.add_argument("--category", action="append", choices=CATEGORIES)
    parser.add_argument("--ref", help="mutate this git ref's sources, not the work tree")
    parser.add_argument("--workers", type=int, default=2)
    workdir = Path("/tmp/mutation")  # noqa: S108 (scratch copies and reports, rebuilt each run)
    parser.add_argument("--workdir", type=Path, default=workdir)
    parser.add_argument("--timeout-factor", type=float, default=3.0)
    parser.add_argument(
        "--sample",
        action="append",
        metavar="CATEGORY=N",
        help="run one in N of the category's mutants (default: inbound=3; inbound=1: all)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument(
        "--project-tests",
        action="store_true",
        help="run the project's own tests of the engine (ENGINE_TESTS), not the suite",
    )
    args = parser.parse_args(argv)

    scopes = [
        scope
        for scope in SCOPES
        if (not args.channel or scope.channel in args.channel)
        and (not args.category or scope.category in args.category)
    ]
    if not scopes:
        parser.error("no scope matches --channel/--category")
    if args.project_tests and any(scope.category != "engine" for scope in scopes):
        parser.error("--project-tests runs the engine's own tests: use it with --category engine")
    started = time.monotonic()
    ref = commit(args.ref) if args.ref else None  # fixed now: the branch may move meanwhile
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = snapshot(args.workdir, ref)
    mutants, plans = make_mutants(source, scopes)
    rates = {"inbound": 3}
    for option in args.sample or []:
        category, _, rate = option.partition("=")
        if category not in CATEGORIES or not rate.isdigit() or int(rate) < 1:
            parser.error(f"--sample {option}: expected CATEGORY=N, N >= 1")
        rates[category] = int(rate)
    generated = len(mutants)
    mutants = sample(mutants, rates)
    sampled = ", ".join(f"{c} 1 in {n}" for c, n in rates.items() if n > 1) or "none"
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id} [{mutant.category}/{mutant.channel} {mutant.name}]")
            print(mutant.diff)
        print(f"{len(mutants)} mutants")
        return 0

    pool = Pool(args.workdir, source, args.workers)

    def stop(signum: int, frame: object) -> None:
        pool.stop()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    interrupted = False
    try:
        print(f"{len(mutants)} of {generated} mutants (sampled: {sampled})")
        with ThreadPoolExecutor(args.workers) as executor:
            if args.project_tests:
                futures = [
                    executor.submit(run_project_tests, pool, mutant, plans[mutant.id])
                    for mutant in mutants
                ]
            else:
                futures = _submit_conformance(executor, pool, mutants, plans, args)
            for number, future in enumerate(as_completed(futures), 1):
                future.result()
                if number % 100 == 0:
                    print(f"{number}/{len(futures)} run in {time.monotonic() - started:.0f} s")
        for mutant in mutants:
            if equivalence(mutant) is None:
                continue
            if mutant.status in ("survived", "not reached"):
                mutant.status = "equivalent"
            elif mutant.status == "killed":
                print(f"listed as equivalent but killed: {mutant.id}\n{mutant.diff}")
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: reporting what was measured", file=sys.stderr)
    finally:
        pool.stop()
    minutes = (time.monotonic() - started) / 60
    origin = f"git {args.ref} ({ref})" if ref else "the work tree"
    origin += f"; {len(mutants)} of {generated} mutants sampled ({sampled})"
    write_results(args.workdir, mutants, origin, minutes)
    print("\n".join(table([m for m in mutants if m.status != "pending"])))
    print(f"{minutes:.1f} min; survivors: {args.workdir / 'mutation-survivors.json'}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
