"""The lock files pin, with hashes, every dependency pyproject.toml declares, and agree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)",
                 re.M)


def _pins(name: str) -> dict[str, str]:
    text = (REPO / "requirements" / name).read_text()
    pins = {_norm(m[1]): m[2] for m in PIN.finditer(text)}
    assert len(pins) == text.count("=="), f"{name}: a pin without hashes"
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    return {_norm(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def test_every_declared_dependency_is_locked_and_the_dev_lock_keeps_the_runtime_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dev_tools = tomllib.loads((REPO / "tools" / "pyproject.toml").read_text())["project"]
    runtime, dev = _pins("runtime.txt"), _pins("dev.txt")
    assert _names(project["dependencies"]) <= runtime.keys()
    assert (_names(project["optional-dependencies"]["dev"])
            | (_names(dev_tools["dependencies"]) - {"kith"})) <= dev.keys()
    assert {n: v for n, v in dev.items() if n in runtime} == runtime
