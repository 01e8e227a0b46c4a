"""The inference benchmark: its class list and a small run that writes results.

Nothing about speed is asserted (the machine is shared).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import inference


def test_class_names_are_distinct_and_real_first() -> None:
    names = inference.class_names(1000)
    assert len(names) == len(set(names)) == 1000
    assert names[0] == "abseiling"  # Kinetics-700, cleaned


def test_small_run_writes_results(tmp_path: Path) -> None:
    argv = ["--videos", "50", "--classes", "20", "--clips", "8", "--workers", "0",
            "--repeats", "1", "--out-dir", str(tmp_path)]  # fmt: skip
    inference.main(argv)
    record = json.loads((tmp_path / "inference.json").read_text())
    assert (tmp_path / "inference.md").is_file()
    index, reading = record["index"], record["classifier"]
    assert (index["videos"], index["classes"], index["embed_dim"]) == (50, 20, 256)
    assert set(index["seconds"]) == {"warm", "cold", "rank"}
    assert set(reading["clips_per_s_best"]) == {"classifier", "evaluation loader"}
    assert reading["videos"] == 8 and reading["ratio_best"] > 0
