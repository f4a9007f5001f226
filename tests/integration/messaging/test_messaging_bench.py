"""``kith bench messaging`` runs end to end (tiny sizes) and reports what it measured."""

from __future__ import annotations

import json

import pytest

from kith_dev import bench_messaging


def test_the_benchmark_reports_one_json_line(infra, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KITH_PG_DSN", infra.admin_dsn)
    monkeypatch.setenv("KITH_KAFKA_BOOTSTRAP", infra.bootstrap)
    assert bench_messaging.main(["--messages", "24", "--senders", "2", "--conversations", "2",
                                 "--rate", "20", "--seconds", "1", "--partitions", "2"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["throughput"]["messages"] == 24 and report["sends_per_s"] > 0
    latency = report["latency"]
    assert latency["sent"] == latency["seen_on_topic"] == 20
    assert 0 < latency["send_to_topic_ms"]["p50"] <= latency["send_to_topic_ms"]["p99"]
    assert report["infrastructure"] == "external"
