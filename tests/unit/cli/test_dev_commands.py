"""``kith dev|bench|demo`` come from the development package, found by entry point."""

from __future__ import annotations

import pytest

from kith import cli
from kith_dev import bench


def test_the_dev_commands_are_the_installed_kith_dev_packages_and_not_the_runtimes() -> None:
    assert not set(cli.DEV_COMMANDS) & set(cli.TOOLS)
    assert {name: cli.tools()[name] for name in cli.DEV_COMMANDS} == {
        "dev": "kith_dev.devstack", "bench": "kith_dev.bench", "demo": "kith_dev.demo"}


def test_kith_bench_reaches_the_benchmarks_through_the_entry_point(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench"]) == 2
    assert "usage: kith bench {backbone," in capsys.readouterr().err


def test_without_the_development_package_a_dev_command_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "tools", lambda: dict(cli.TOOLS))
    assert cli.main(["dev", "up"]) == 2
    assert "install the development package" in capsys.readouterr().err


@pytest.mark.parametrize("name", bench.BENCHMARKS)
def test_every_benchmark_the_usage_names_is_one_kith_bench_can_run(name: str) -> None:
    assert callable(bench.benchmark(name).main)
