"""The GPU benchmark: its report and links, the CPU smoke run of gpu.sh end to end, and its
refusal to run without CUDA unless --tiny. Nothing about speed is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import gpu, train_throughput
from tests.cli_helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu.sh"


def _run(clips_per_s: float, first_step: float = 1.0) -> dict[str, Any]:
    return {"clips_per_s": clips_per_s, "first_step_seconds": first_step}


MODEL = {"setup": {}, "device": "card", "runs": {"fp32": _run(100.0), "bf16_cl3d": _run(250.0)}}
LOADER = {"data_wait": 0.25, "clips_per_s": 240.0, "workers": 12}


def test_model_variants_are_the_training_benchmarks() -> None:
    assert tuple(train_throughput.VARIANTS) == gpu.MODEL_VARIANTS


def test_report_ratios_to_fp32_and_targets() -> None:
    compiled = {"runs": {"bf16_cl3d_compile": _run(300.0, first_step=95.0)}}
    report = gpu.build_report(MODEL, compiled, "ok", 240.0, LOADER)
    assert report["ratios_vs_fp32"] == {"fp32": 1.0, "bf16_cl3d": 2.5, "bf16_cl3d_compile": 3.0}
    assert report["compile"] == {
        "status": "ok",
        "limit_seconds": 240.0,
        "first_step_seconds": 95.0,
    }
    assert report["targets"]["bf16_cl3d_vs_fp32"]["passed"] is True
    assert report["targets"]["data_wait"] == {"value": 0.25, "below": 0.1, "passed": False}


def test_report_of_a_compile_that_timed_out_has_no_compile_run() -> None:
    report = gpu.build_report(MODEL, None, "timeout", 240.0, LOADER)
    assert set(report["model"]["runs"]) == {"fp32", "bf16_cl3d"}
    assert report["compile"]["status"] == "timeout"
    assert report["compile"]["first_step_seconds"] is None
    with pytest.raises(ValueError, match="no compile part"):
        gpu.build_report(MODEL, None, "ok", 240.0, LOADER)


def test_report_needs_fp32() -> None:
    with pytest.raises(ValueError, match="no fp32 run"):
        gpu.build_report({**MODEL, "runs": {"bf16": _run(1.0)}}, None, "skipped", None, LOADER)


def test_link_epoch_lists_videos_round_robin_in_their_classes(tmp_path: Path) -> None:
    files = []
    for name in ("a/x.mp4", "a/y.mp4", "b/z.mp4"):
        path = tmp_path / "videos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        files.append(path)
    assert gpu.list_videos(tmp_path / "videos") == files
    gpu.link_epoch(files, tmp_path / "epoch", 5)
    links = sorted((tmp_path / "epoch").glob("*/*"))
    assert [str(p.relative_to(tmp_path / "epoch")) for p in links] == [
        "a/000000_x.mp4",
        "a/000001_y.mp4",
        "a/000003_x.mp4",
        "a/000004_y.mp4",
        "b/000002_z.mp4",
    ]
    assert links[2].resolve() == files[0].resolve()
    with pytest.raises(FileNotFoundError, match="no videos"):
        gpu.list_videos(tmp_path / "epoch" / "a")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the error without CUDA")
def test_cuda_without_a_device_is_an_error() -> None:
    with pytest.raises(SystemExit, match=r"CUDA is not available.*--tiny"):
        gpu.resolve_device(None, tiny=False)
    assert gpu.resolve_device(None, tiny=True) == torch.device("cpu")


def _gpu_sh(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_gpu_sh_tiny_runs_every_stage_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = _gpu_sh(["--tiny", "--out-dir", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "gpu_quick.json").read_text())
    assert (out / "gpu_quick.md").is_file()
    assert record["command"] == f"bash benchmarks/gpu.sh --tiny --out-dir {out}"
    assert {"machine", "params", "model", "ratios_vs_fp32", "compile", "loader", "targets"} <= set(
        record
    )
    runs = record["model"]["runs"]
    assert set(runs) == {"fp32", "bf16", "bf16_cl3d"}
    assert all(run["clips_per_s"] > 0 for run in runs.values())
    assert record["ratios_vs_fp32"]["fp32"] == 1.0
    assert record["compile"]["status"] == "skipped"
    loader = record["loader"]
    assert loader["workers"] == 2 and loader["videos"] == 4
    assert min(loader["video_size"]) == 128  # the loader read `aurl prepare-data`'s output
    assert 0 <= loader["data_wait"] <= 1 and loader["clips_per_s"] > 0
    assert set(record["targets"]) == {"data_wait", "bf16_cl3d_vs_fp32"}
    # The work folder (sources, prepared videos, parts) is removed.
    assert [p.name for p in tmp_path.iterdir()] == ["results"]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the error without CUDA")
def test_gpu_sh_without_cuda_fails_clearly(tmp_path: Path) -> None:
    result = _gpu_sh(["--out-dir", str(tmp_path / "results")], tmp_path)
    assert result.returncode != 0
    assert "CUDA is not available" in result.stderr
    assert not (tmp_path / "results").exists()
