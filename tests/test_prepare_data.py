"""``aurl prepare-data``: a config's catalogs prepared, checked, and the config keys printed."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from litdata import StreamingDataset

from aurl.cli import main as aurl_main
from data_modules.datasets import UCF101, StreamingShards, SyntheticActions, VideoFolder
from data_modules.prepare import MANIFEST_NAME, PrepareSettings
from data_modules.shards import read_shard_index
from data_modules.video_reader import EncodedVideo, probe_video
from tests.cli_helpers import TINY_SYNTHETIC, aurl_subprocess, build_ucf101, subprocess_env
from tests.data_modules.ramp import place, write_ramp_videos


def _write_config(path: Path, source: dict[str, Any], targets: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"data": {"source": source, "targets": targets, "size": 32}}))
    return path


@pytest.fixture(scope="module")
def ramp_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny mp4 and avi videos (``tests.data_modules.ramp``)."""
    return write_ramp_videos(tmp_path_factory.mktemp("ramp"))


@pytest.fixture
def config(tmp_path: Path, ramp_videos) -> Path:
    """An experiment config: a VideoFolder source (mp4 and avi) and a UCF101 target."""
    folder = tmp_path / "clips"
    place(ramp_videos["mp4"], folder / "cello" / "a.mp4")
    place(ramp_videos["avi"], folder / "violin" / "b.avi")
    ucf, splits = build_ucf101(tmp_path / "ucf", tmp_path / "splits", ramp_videos["avi"])
    return _write_config(
        tmp_path / "experiment.yaml",
        {"class_path": "data_modules.datasets.VideoFolder", "init_args": {"root": str(folder)}},
        [
            {
                "class_path": "data_modules.datasets.UCF101",
                "init_args": {"root": str(ucf), "split_dir": str(splits)},
            }
        ],
    )


def test_prepare_data_prepares_each_catalog_and_names_the_key_to_change(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "prepared"
    assert aurl_main(["prepare-data", str(config), "--output", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"set data.source.init_args.root: {out / 'clips'}\n" in printed
    assert f"set data.targets[0].init_args.root: {out / 'ucf101'}\n" in printed
    assert "WARNING" not in printed
    assert "clips: 2 videos" in printed and "ucf101: 6 videos" in printed
    prepared = [Path(path).name for path, _ in VideoFolder(out / "clips").samples]
    assert prepared == ["a.mp4", "b.mp4"]
    assert len(UCF101(out / "ucf101", tmp_path / "splits")) == 6
    assert probe_video(out / "clips" / "violin" / "b.mp4").num_frames == 8
    manifest = json.loads((out / "ucf101" / MANIFEST_NAME).read_text())
    assert manifest["format"] == "files" and manifest["settings"]["short_side"] == 128

    args = ["prepare-data", str(config), "--output", str(out), "--catalog", "ucf101"]
    assert aurl_main(args) == 0
    printed = capsys.readouterr().out
    assert "ucf101: 6 videos" in printed and "0 prepared, 6 already done" in printed
    assert "clips:" not in printed
    with pytest.raises(ValueError, match="--catalog 'nope': the config's catalogs are clips"):
        aurl_main([*args[:-1], "nope"])


def test_prepare_data_refuses_other_settings_and_formats(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "prepared"
    args = ["prepare-data", str(config), "--output", str(out), "--catalog", "clips"]
    assert aurl_main([*args, "--workers", "1"]) == 0
    with pytest.raises(ValueError, match=r"prepare_manifest\.json: this folder holds videos"):
        aurl_main([*args, "--short_side", "64"])
    with pytest.raises(SystemExit):
        aurl_main([*args, "--format", "tar"])
    assert "invalid choice: 'tar'" in capsys.readouterr().err


@pytest.mark.slow
def test_prepare_data_litdata_writes_shards_that_streaming_shards_reads(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "shards"
    args = ["prepare-data", str(config), "--output", str(out), "--format", "litdata"]
    assert aurl_main([*args, "--catalog", "clips", "--workers", "1", "--short_side", "16"]) == 0
    printed = capsys.readouterr().out
    assert f"clips: 2 videos in shards at {out / 'clips'} (0 unreadable" in printed
    assert "StreamingShards, init_args.input_dir: " + str(out / "clips") in printed
    shards = StreamingShards(out / "clips")
    source = VideoFolder(tmp_path / "clips")
    assert shards.class_names == source.class_names
    assert [label for _, label in shards.samples] == [label for _, label in source.samples]
    index = read_shard_index(out / "clips")
    assert index.paths == ["cello/a.mp4", "violin/b.avi"]
    assert index.encode == {"format": "litdata", **asdict(PrepareSettings(short_side=16))}
    # The stored items are the transcoded files: the ramp's 8 frames, short side 16.
    dataset = StreamingDataset(str(out / "clips"))
    info = probe_video(EncodedVideo(dataset[1]["video"], "b"))
    assert (info.num_frames, min(info.height, info.width)) == (8, 16)


def test_prepare_data_warns_when_the_catalog_would_not_list_the_prepared_files(
    tmp_path: Path, ramp_videos, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "clips"
    place(ramp_videos["avi"], folder / "cello" / "a.avi")
    spec = {
        "class_path": "data_modules.datasets.VideoFolder",
        "init_args": {"root": str(folder), "extensions": ["avi"]},
    }
    config = _write_config(tmp_path / "experiment.yaml", spec, [])
    out = tmp_path / "prepared"
    assert aurl_main(["prepare-data", str(config), "--output", str(out), "--workers", "1"]) == 1
    printed = capsys.readouterr().out
    assert "WARNING: with root" in printed and "listing it fails" in printed


@pytest.mark.slow
def test_prepare_data_subprocess_prepares_the_synthetic_benchmark(tmp_path: Path) -> None:
    synthetic = {"class_path": "data_modules.datasets.SyntheticActions"}
    config = _write_config(
        tmp_path / "experiment.yaml",
        {**synthetic, "init_args": {**TINY_SYNTHETIC, "part": "seen"}},
        [{**synthetic, "init_args": {**TINY_SYNTHETIC, "part": "unseen"}}],
    )
    out, cache = tmp_path / "prepared", tmp_path / "cache"
    env = subprocess_env(AURL_CACHE_DIR=str(cache))
    args = ["prepare-data", str(config), "--output", str(out), "--workers", "2"]
    run = aurl_subprocess(args, env, tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    # Seen and unseen share the generated folder, so they share its prepared copy.
    folder = out / "synthetic_seen"
    assert f"set data.source.init_args.root: {folder}\n" in run.stdout
    assert f"set data.targets[0].init_args.root: {folder}\n" in run.stdout
    assert "videos/s" in run.stdout and "WARNING" not in run.stdout
    for part in ("seen", "unseen"):
        raw = SyntheticActions(cache / "synthetic", part=part, **TINY_SYNTHETIC)
        prepared = SyntheticActions(folder, part=part, **TINY_SYNTHETIC)
        assert [label for _, label in prepared.samples] == [label for _, label in raw.samples]
        assert prepared.class_names == raw.class_names
