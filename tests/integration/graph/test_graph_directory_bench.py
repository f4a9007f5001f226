"""``kith bench directory`` runs end to end (tiny sizes) and reports what it measured."""

from __future__ import annotations

import json

import pytest

from kith_dev import bench_directory


def test_the_directory_benchmark_reports_one_json_line(infra, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    monkeypatch.setenv("KITH_PG_DSN", infra.admin_dsn)
    monkeypatch.setenv("KITH_KAFKA_BOOTSTRAP", infra.bootstrap)
    assert bench_directory.main(["--people", "30", "--niches", "5", "--queries", "40",
                                 "--threads", "2"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["queries"] == 40 and report["mean_items"] > 0
    assert 0 < report["query_ms"]["p50"] <= report["query_ms"]["p99"]
