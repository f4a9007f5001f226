"""Each module has one name: ``kith.common`` is never also importable as ``services.common``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _import(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO,
                          capture_output=True, text=True, check=False)


def test_the_services_folder_cannot_be_imported_under_its_folder_name() -> None:
    refused = _import("services.common")
    assert refused.returncode != 0
    assert "import kith.<name>, not services.<name>" in refused.stderr
    assert _import("kith.common").returncode == 0
