"""What runs inside a worker's copy of the sources for ``benchmarks.mutation``; never
part of the normal test run.

``python -m benchmarks.mutation_worker`` is a fork server: it imports pytest and the
third-party libraries once (never chatbridge, the suite or the acme example), then for
each request on stdin (JSON: pytest arguments and a timeout) forks a child that runs
those conformance checks, and answers on stdout with the exit code, or null when the
child was killed at the timeout. A fork starts a check run in about 0.4 s instead of
1.3 s, and the child imports the mutated sources afresh from the copy.

``-p benchmarks.mutation_worker`` is the pytest plugin of every run (with the server or
not):

- it fails the run when chatbridge, the conformance suite or the acme example were
  imported from anywhere but the worker's copy (``CHATBRIDGE_MUTATION_ROOT``): a
  mutant must be the code the checks run;
- it makes Hypothesis deterministic and stateless (derandomized, no example database),
  so every mutant meets the same generated bodies and no run's failures leak into the
  next;
- with ``CHATBRIDGE_MUTATION_DURATIONS`` set, it writes each check's duration there
  (JSON, node id -> seconds);
- under ``coverage run``, it labels what each check runs (its setup, call and teardown)
  with the check's node id, as pytest-cov's ``--cov-context=test`` does.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("chatbridge-mutation", derandomize=True, database=None)
settings.load_profile("chatbridge-mutation")

_PACKAGES = ("chatbridge", "chatbridge_conformance", "acme_chat")
#: Imported once by the fork server: what a conformance run imports besides chatbridge.
_PRELOAD = (
    "_hypothesis_pytestplugin",
    "_pytest.python",
    "_pytest.terminal",
    "aiosmtplib",
    "annotated_types",
    "anyio.pytest_plugin",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.ciphers",
    "httpx",
    "hypothesis.strategies",
    "jwt",
    "lxml.etree",
    "multipart",
    "phonenumbers",
    "pydantic.fields",
    "pydantic.main",
    "pydantic.types",
    "respx",
)
_durations: defaultdict[str, float] = defaultdict(float)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Runs once the kits are loaded: everything they import is imported by now."""
    root = os.environ.get("CHATBRIDGE_MUTATION_ROOT")
    if root is None:
        raise pytest.UsageError("CHATBRIDGE_MUTATION_ROOT is not set")
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.split(".")[0] in _PACKAGES and file and not Path(file).is_relative_to(root):
            raise pytest.UsageError(f"{name} was imported from {file}, not from {root}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> object:
    measuring = sys.modules.get("coverage")
    current = measuring.Coverage.current() if measuring else None
    if current is not None:
        current.switch_context(item.nodeid)
    try:
        return (yield)
    finally:
        if current is not None:
            current.switch_context("")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("CHATBRIDGE_MUTATION_DURATIONS")
    if path:
        Path(path).write_text(json.dumps(_durations, indent=1))


def serve() -> None:
    for name in _PRELOAD:
        importlib.import_module(name)
    imported = [name for name in sys.modules if name.split(".")[0] in _PACKAGES]
    assert not imported, f"the fork server must not import {imported}"
    for line in sys.stdin:
        request = json.loads(line)
        child = os.fork()
        if child == 0:
            _run(request["args"])
        pidfd = os.pidfd_open(child)
        finished, _, _ = select.select([pidfd], [], [], request["timeout"])
        if not finished:
            os.kill(child, signal.SIGKILL)
        _, status = os.waitpid(child, 0)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(status) if finished else None
        print(json.dumps(code), flush=True)


def _run(args: list[str]) -> None:
    """In the forked child: one pytest run, quiet, then exit with its code."""
    code = 3
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        sys.dont_write_bytecode = True  # nothing compiled from a mutant is cached
        code = int(pytest.main(args))
    finally:
        os._exit(code)


if __name__ == "__main__":
    serve()
