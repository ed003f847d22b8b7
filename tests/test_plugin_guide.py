"""docs/plugins.md, executed: its module blocks are the example package's module
(examples/acme-chat), every other block runs, and the package passes the conformance
suite and is served by the sandbox."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from chatbridge_conformance import ConformanceSuite

from chatbridge.registry import load_channel, load_kit

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "acme-chat"
FENCE = re.compile(r'^```(\w+)(?: title="([^"]+)")?\n(.*?)^```$', re.M | re.S)
BLOCKS = [(lang, title or "", code) for lang, title, code in FENCE.findall(GUIDE.read_text())]


def _blocks(lang: str, title: str | None = None) -> list[str]:
    return [
        code for kind, name, code in BLOCKS if kind == lang and (title is None or name == title)
    ]


def _paragraphs(text: str) -> str:
    return re.sub(r"\n{2,}", "\n\n", text.strip())


def test_every_block_is_checked_below() -> None:
    assert {lang for lang, _, _ in BLOCKS} == {"python", "toml", "sh"}


def test_the_module_blocks_are_the_example_package() -> None:
    module = "\n\n".join(_blocks("python", "acme_chat.py"))
    assert _paragraphs(module) == _paragraphs((EXAMPLE / "acme_chat.py").read_text())


def test_the_registration_block_is_the_example_package_s() -> None:
    (block,) = _blocks("toml", "pyproject.toml")
    package = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert tomllib.loads(block)["project"] == {"entry-points": package["project"]["entry-points"]}


def test_the_example_package_is_installed_and_registered() -> None:
    import acme_chat

    assert load_channel("acme") is acme_chat.AcmeChannel
    assert load_kit("acme") is acme_chat.kit


@pytest.mark.parametrize("index", range(len(_blocks("python", ""))))
def test_python_blocks_run(index: int) -> None:
    exec(compile(_blocks("python", "")[index], f"{GUIDE}:block{index}", "exec"), {})  # noqa: S102


@pytest.mark.parametrize("command", [line for b in _blocks("sh") for line in b.splitlines()])
def test_shell_blocks_run(command: str, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(  # noqa: S602 (the guide's own commands)
        command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_conformance_check_is_listed() -> None:
    checks = [
        name.removeprefix("test_") for name in dir(ConformanceSuite) if name.startswith("test_")
    ]
    missing = [check for check in checks if f"`{check}`" not in GUIDE.read_text()]
    assert not missing, f"docs/plugins.md does not list: {missing}"
