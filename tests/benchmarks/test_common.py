"""The benchmarks' shared harness: timing statistics, interleaving, memory and result files."""

from __future__ import annotations

import json
import logging
import os
import statistics
from pathlib import Path

import pytest

from benchmarks import common


def test_summarize_and_speedup_against_hand_computed_values() -> None:
    assert common.summarize([3.0, 1.0, 2.0, 10.0]) == {
        "best": 1.0,
        "median": 2.5,
        "worst": 10.0,
        "repeats": 4,
    }
    ours, theirs = [1.0, 2.0, 4.0], [3.0, 3.0, 6.0]
    out = common.speedup(ours, theirs)
    assert out["best"] == pytest.approx(3.0 / 1.0)
    assert out["paired_median"] == pytest.approx(statistics.median([3.0, 1.5, 1.5]))
    with pytest.raises(ValueError, match="paired"):
        common.speedup([1.0], [1.0, 2.0])


def test_interleave_rotates_who_goes_first(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def run(name: str):
        def fn() -> float:
            calls.append(name)
            return float(len(calls))

        return fn

    with caplog.at_level(logging.INFO, logger="benchmarks.common"):
        times = common.interleave({n: run(n) for n in "abc"}, repeats=3, start=1, label="demo")
    assert calls == list("bcacababc")
    assert times == {"a": [3.0, 5.0, 7.0], "b": [1.0, 6.0, 8.0], "c": [2.0, 4.0, 9.0]}
    assert caplog.messages[:2] == ["demo: b, repeat 1 of 3", "demo: c, repeat 1 of 3"]


def test_markdown_table_formats_cells_and_checks_row_length() -> None:
    table = common.markdown_table(["a", "b", "c", "d"], [[1.23456, 123.456, True, None]])
    assert table.splitlines() == [
        "| a | b | c | d |",
        "|---|---|---|---|",
        "| 1.23 | 123.46 | yes |  |",
    ]
    with pytest.raises(ValueError, match="2 cells, expected 4"):
        common.markdown_table(["a", "b", "c", "d"], [[1, 2]])


def test_write_results_writes_json_and_markdown(tmp_path: Path) -> None:
    machine = common.machine_info()
    assert machine["cpu_count"] == os.cpu_count()
    assert set(machine) >= {"cpu", "usable_cores", "torch_threads", "load_average", "gpu"}
    json_path, md_path = common.write_results(
        "demo",
        "python -m benchmarks.demo --x",
        {"machine": machine, "value": 1.5},
        [("Table", common.markdown_table(["k"], [["v"]]))],
        tmp_path,
    )
    record = json.loads(json_path.read_text())
    assert record["name"] == "demo" and record["value"] == 1.5
    assert record["command"] == "python -m benchmarks.demo --x"
    text = md_path.read_text()
    assert text.startswith("# demo\n") and "## Table" in text and "| v |" in text
    assert machine["cpu"] in text


def test_memory_helpers_are_consistent() -> None:
    current, peak = common.current_rss_mib(), common.peak_rss_mib()
    assert peak > 0
    if current is not None:  # Linux
        assert 0 < current <= peak * 1.01
