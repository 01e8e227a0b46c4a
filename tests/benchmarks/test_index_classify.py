"""The index-classification benchmark: its class list and a small run that writes results.

Nothing about speed is asserted (the machine is shared).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import index_classify


def test_class_names_are_distinct_and_real_first() -> None:
    names = index_classify.class_names(1000)
    assert len(names) == len(set(names)) == 1000
    assert names[0] == "abseiling"  # Kinetics-700, cleaned


def test_small_run_writes_results(tmp_path: Path) -> None:
    argv = ["--videos", "50", "--classes", "20", "--repeats", "1", "--out-dir", str(tmp_path)]
    index_classify.main(argv)
    record = json.loads((tmp_path / "index_classify.json").read_text())
    assert (tmp_path / "index_classify.md").is_file()
    assert (record["videos"], record["classes"], record["embed_dim"]) == (50, 20, 256)
    assert set(record["seconds"]) == {"warm", "cold", "rank"}
    assert all(s["best"] > 0 for s in record["seconds"].values())
