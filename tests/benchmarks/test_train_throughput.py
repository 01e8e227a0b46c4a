"""The training benchmark: its loss comparison and a tiny smoke run that writes results.

The smoke run asserts nothing about speed (the machine is shared and the settings are tiny).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import train_throughput


def test_max_abs_diff_treats_nan() -> None:
    nan = math.nan
    assert train_throughput._max_abs_diff([1.0, nan], [1.5, nan]) == 0.5
    assert train_throughput._max_abs_diff([1.0, 2.0], [1.0, nan]) == math.inf


def test_train_throughput_smoke_run_writes_results(tmp_path: Path) -> None:
    argv = ["--tiny", "--variants-device", "cpu", "--variants", "fp32", "bf16_cl3d",
            "--out-dir", str(tmp_path)]  # fmt: skip
    train_throughput.main(argv)
    record = json.loads((tmp_path / "train_throughput_quick.json").read_text())
    assert (tmp_path / "train_throughput_quick.md").is_file()
    assert {"machine", "params", "trainer_vs_plain", "variants"} <= set(record)
    (comparison,) = record["trainer_vs_plain"].values()
    for side in ("trainer", "plain"):
        assert comparison[side]["steps_per_s"] > 0
        (run,) = comparison[side]["runs"]
        assert len(run["losses"]) == comparison["setup"]["steps"]
        assert run["nonfinite_steps"] == 0
    # Same seed, same batches, same components: the Trainer and the plain loop do the same work.
    assert comparison["loss_max_abs_diff"] < 1e-5
    assert comparison["passed"] == (comparison["ratio"] >= comparison["target"])
    variants = record["variants"]
    assert variants["device"] == "cpu"
    assert set(variants["runs"]) == {"fp32", "bf16_cl3d", "plain_fp32"}
    # Whether a tiny bf16 run stays finite differs across CPUs: only that every step is recorded.
    steps = comparison["setup"]["steps"]
    assert all(len(r["losses"]) == steps for r in variants["runs"].values())
