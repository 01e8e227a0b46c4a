"""The ablation benchmark's bookkeeping: metrics from CSV logs, resumable runs, seed statistics.

A real ablation trains 18 models (``make bench``); these tests cover what decides its numbers
without training: which values are read, reused and averaged, and how they are reported.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
from pathlib import Path

import pytest

from benchmarks import ablation, common


def _write_metrics(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")


def test_read_test_metrics_takes_the_newest_log_and_last_value(tmp_path: Path) -> None:
    header = ["epoch", "val/top1", "test/u/top1", "test/u/top5"]
    _write_metrics(tmp_path / "csv/version_2/metrics.csv", header, [["0", "0.5", "0.1", "0.2"]])
    _write_metrics(  # version 10 is newer than version 2 (a string sort gets this wrong)
        tmp_path / "csv/version_10/metrics.csv",
        header,
        [["0", "0.4", "", ""], ["1", "", "0.25", "0.75"], ["1", "", "", ""]],
    )
    assert ablation.read_test_metrics(tmp_path) == {"test/u/top1": 0.25, "test/u/top5": 0.75}


def test_read_test_metrics_names_the_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "csv"))):
        ablation.read_test_metrics(tmp_path)


def test_aggregate_has_mean_sample_std_and_per_seed_values() -> None:
    runs = [
        {"test/u/top1": 0.1, "test/u_gzsl/gzsl_h": 0.2, "wall_s": 10.0},
        {"test/u/top1": 0.3, "wall_s": 30.0},
        {"test/u/top1": 0.5, "wall_s": 20.0},
    ]
    summary = ablation.aggregate(runs, "u")
    top1 = summary["top1"]
    assert top1["n"] == 3 and top1["values"] == [0.1, 0.3, 0.5]
    assert math.isclose(top1["mean"], 0.3)
    assert math.isclose(top1["std"], 0.2)  # sqrt((0.04 + 0 + 0.04) / (3 - 1))
    assert summary["gzsl_h"] == {"mean": 0.2, "std": 0.0, "n": 1, "values": [0.2]}
    assert summary["wall_s"]["mean"] == 20.0
    assert summary["closeness"] is None and summary["gzsl_seen"] is None


def test_paired_differences_pair_runs_seed_by_seed() -> None:
    reference = [{"test/u/top1": 0.2}, {"test/u/top1": 0.4}, {"test/u/top1": 0.3}]
    runs = [{"test/u/top1": 0.3}, {"test/u/top1": 0.5}, {"test/u/top1": 0.45}]
    paired = ablation.paired_differences(runs, reference, "u")
    top1 = paired["top1"]
    assert top1["values"] == pytest.approx([0.1, 0.1, 0.15])
    assert top1["mean"] == pytest.approx(0.35 / 3)
    assert top1["std"] == pytest.approx(statistics.stdev([0.1, 0.1, 0.15]))
    assert top1["exceeds_noise"]  # 0.117 > 2 * 0.029 / sqrt(3)
    assert paired["closeness"] is None
    noisy = [{"test/u/top1": 0.5}, {"test/u/top1": 0.1}, {"test/u/top1": 0.35}]
    assert not ablation.paired_differences(noisy, reference, "u")["top1"]["exceeds_noise"]
    single = ablation.paired_differences(runs[:1], reference[:1], "u")["top1"]
    assert single["std"] == 0.0 and not single["exceeds_noise"]


def test_write_report_lists_seeds_and_marks_missing_metrics(tmp_path: Path) -> None:
    runs = [{"test/u/top1": 0.1, "wall_s": 10.0}, {"test/u/top1": 0.3, "wall_s": 30.0}]
    results = {"L_S": {"runs": runs, "summary": ablation.aggregate(runs, "u")}}
    args = argparse.Namespace(quick=False, target="u", base="base.yaml", out_dir=str(tmp_path))
    machine = {**common.machine_info(), "load_average": [0.25, 0.5, 0.75]}
    table = ablation.write_report(
        results, ablation.VARIANTS, args, ["--seeds", "0", "1"], [0, 1], [], machine
    )
    lines = table.splitlines()
    assert len(lines) == 3  # header, rule, the one variant with results
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:4] == ["L_S", "20.0 +- 14.1", "10.0 / 30.0", "n/a"]
    assert cells[-2:] == ["20", "contrastive loss over seen class embeddings"]
    report = (tmp_path / "ablation.md").read_text()
    assert "`python -m benchmarks.ablation --seeds 0 1`" in report and "2 seed(s)" in report
    assert "load average at start 0.25, 0.5, 0.75" in report  # the machine as given


def test_run_variant_reuses_a_run_done_with_the_same_arguments(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    base, fragment = Path("base.yaml"), Path("frag.yaml")
    overrides = ["--model.init_args.lr", "0.1", "--trainer.logger", "a b"]  # a space survives
    _write_metrics(run_dir / "csv/version_0/metrics.csv", ["test/u/top1"], [["0.4"]])
    (run_dir / "wall_s").write_text("12.5\n")
    arguments = ablation.fit_arguments(base, fragment, 3, run_dir, overrides)
    assert arguments[:7] == [
        "fit",
        "--config",
        "base.yaml",
        "--config",
        "frag.yaml",
        "--seed_everything",
        "3",
    ]
    (run_dir / "done").write_text("\n".join(arguments) + "\n")
    assert ablation.run_variant(base, fragment, 3, run_dir, overrides) == {
        "wall_s": 12.5,
        "test/u/top1": 0.4,
    }


def test_fit_arguments_group_wandb_runs_by_variant_and_tag_the_seed(tmp_path: Path) -> None:
    base, fragment = Path("experiments/smoke.yaml"), Path("ablations/ls_only.yaml")
    arguments = ablation.fit_arguments(base, fragment, 2, tmp_path, ["--wandb.tags", "[x]"])
    at = arguments.index("--wandb.group")
    assert arguments[at : at + 6] == [
        *("--wandb.group", "smoke/ls_only", "--wandb.tags", "[seed2]"),
        *("--wandb.job_type", "ablation"),
    ]
    assert arguments[-2:] == ["--wandb.tags", "[x]"]  # the given overrides come last and win


@pytest.mark.slow  # spawns an `aurl fit` process
def test_run_variant_reruns_other_arguments_and_reports_a_failed_fit(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    stale = run_dir / "csv/version_0/metrics.csv"
    _write_metrics(stale, ["test/u/top1"], [["0.4"]])
    (run_dir / "wall_s").write_text("12.5\n")
    old = ablation.fit_arguments(Path("base.yaml"), Path("frag.yaml"), 0, run_dir, [])
    (run_dir / "done").write_text("\n".join(old) + "\n")
    missing = tmp_path / "missing.yaml"  # seed 1 differs, and this config cannot be read
    with pytest.raises(RuntimeError, match=r"seed 1 failed; see .*stdout\.log"):
        ablation.run_variant(missing, missing, 1, run_dir, [])
    assert not stale.exists() and not (run_dir / "done").exists()
    assert "missing.yaml" in (run_dir / "stdout.log").read_text()


def test_unknown_variant_names_are_refused_with_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ablation.main(["--variants", "L_S", "L_X"])
    assert exit_info.value.code == 2
    assert (
        "unknown variant(s) ['L_X']; choose from ['align_only', 'L_S'," in capsys.readouterr().err
    )
