"""Preparing videos for fast reads (data_modules.prepare) on tiny real videos and layouts."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from data_modules.datasets import HMDB51, UCF101, Kinetics700, SyntheticActions, VideoFolder
from data_modules.prepare import (
    FAILED_NAME,
    MANIFEST_NAME,
    PrepareSettings,
    output_size,
    prepare_catalog,
    prepared_path,
    transcode_file,
    transcode_video,
)
from data_modules.video_reader import VideoDecodeError, probe_video, read_clip
from data_modules.video_writer import write_video
from tests.cli_helpers import TINY_SYNTHETIC, build_hmdb51, build_ucf101
from tests.data_modules.ramp import place

NUM_FRAMES = 20
# Frame t of the level videos is a flat grey of level 12 * t: a decoded pixel names its frame.
LEVEL_STEP = 12
# A keyframe every 4 frames: several in 20 frames.
SETTINGS = PrepareSettings(keyframe_interval=4)


def _levels(frames: np.ndarray) -> list[int]:
    """The frame index that each decoded frame's mean level names."""
    return [round(float(frame.mean()) / LEVEL_STEP) for frame in frames]


@pytest.fixture(scope="session")
def level_videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Videos whose frame t is a flat grey of level 12 t: 176x144 H.264 with B-frames and an
    audio track at 29.97 fps (mp4), the same as MPEG-4 in AVI and as VP8 in WebM."""
    folder = tmp_path_factory.mktemp("levels")
    frames = np.zeros((NUM_FRAMES, 144, 176, 3), np.uint8)
    for t in range(NUM_FRAMES):
        frames[t] = LEVEL_STEP * t
    audio = np.zeros((1, 44100), np.float32)
    rate = Fraction(30000, 1001)
    return {
        "mp4": write_video(folder / "v.mp4", frames, fps=rate, tune=None, audio=audio),
        "avi": write_video(folder / "v.avi", frames, fps=rate, codec="mpeg4"),
        "webm": write_video(folder / "v.webm", frames, fps=rate, codec="libvpx"),
    }


def _keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    return [k for k, packet in enumerate(packets) if packet.is_keyframe]


def _stream_types(path: Path) -> list[str]:
    with av.open(str(path)) as container:
        return [stream.type for stream in container.streams]


# --- one video ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (320, 240, (170, 128)),
        (240, 320, (128, 170)),
        (1920, 1080, (228, 128)),
        (128, 128, (128, 128)),
        (100, 60, (100, 60)),  # smaller than 128: kept
        (101, 61, (100, 60)),  # kept, made even
    ],
)
def test_output_size_scales_the_short_side_down_only_and_keeps_sides_even(
    width: int, height: int, expected: tuple[int, int]
) -> None:
    assert output_size(width, height, 128) == expected


@pytest.mark.parametrize(
    ("kind", "output"),
    [
        ("mp4", "out.mp4"),
        ("avi", "out.mp4"),
        ("webm", "out.mp4"),
        ("mp4", "out.mkv"),
        ("mp4", "out.mov"),
    ],
)
def test_prepared_file_keeps_every_frame_and_the_rate(
    level_videos: dict[str, Path], tmp_path: Path, kind: str, output: str
) -> None:
    src = level_videos[kind]
    dst = transcode_file(src, tmp_path / output, SETTINGS)
    before, after = probe_video(src), probe_video(dst)
    assert after.num_frames == before.num_frames == NUM_FRAMES
    assert after.fps == pytest.approx(before.fps, abs=1e-9)
    assert (after.width, after.height) == (156, 128)  # 176x144 -> short side 128, even
    indices = list(range(NUM_FRAMES))
    # The reader's frame k is the same picture in both files.
    assert _levels(read_clip(dst, indices).numpy()) == indices
    assert _levels(read_clip(src, indices).numpy()) == indices
    with av.open(str(dst)) as container:
        assert sum(1 for _ in container.decode(video=0)) == NUM_FRAMES


def test_a_variable_rate_source_keeps_its_frames_evenly_timed(tmp_path: Path) -> None:
    src = tmp_path / "vfr.mkv"
    times_ms = [0, 100, 200, 400, 500, 800, 900, 1000, 1300, 1400]  # 10 frames, gaps
    with av.open(str(src), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for k, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 32, 3), LEVEL_STEP * k, np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    indices = list(range(10))
    # The reader indexes the source by time: the frame on screen at k / 10 s.
    assert _levels(read_clip(src, indices).numpy()) == [0, 1, 2, 2, 3, 4, 4, 4, 5, 6]
    dst = transcode_file(src, tmp_path / "out.mkv", PrepareSettings())
    assert probe_video(dst).num_frames == probe_video(src).num_frames == 10
    assert _levels(read_clip(dst, indices).numpy()) == indices  # frame k: the k-th decoded


def test_prepared_file_has_keyframes_every_interval_and_no_audio(
    level_videos: dict[str, Path],
) -> None:
    src = level_videos["mp4"]
    assert _stream_types(src) == ["video", "audio"]
    data = transcode_video(src, SETTINGS)
    with av.open(io.BytesIO(data)) as container:
        assert [stream.type for stream in container.streams] == ["video"]
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].format.name == "yuv420p"
        packets = [p for p in container.demux(video=0) if p.size]
    assert [k for k, p in enumerate(packets) if p.is_keyframe] == [0, 4, 8, 12, 16]


def test_a_source_smaller_than_the_short_side_keeps_its_size(ramp_videos, tmp_path: Path) -> None:
    dst = transcode_file(ramp_videos["avi"], tmp_path / "ramp.mkv", PrepareSettings())
    info = probe_video(dst)
    assert (info.width, info.height, info.num_frames) == (32, 32, 8)
    assert _keyframes(dst) == [0]  # 8 frames, one keyframe every 16


def test_unreadable_sources_raise_a_decode_error_with_the_reason(
    level_videos: dict[str, Path], tmp_path: Path
) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n" * 100)
    data = level_videos["mp4"].read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    reasons = {}
    for path in (empty, text, truncated, tmp_path / "missing.mp4"):
        with pytest.raises(VideoDecodeError) as error:
            transcode_video(path, SETTINGS)
        reasons[path.name] = error.value.reason
    assert reasons["empty.mp4"] == "empty file (0 bytes)"
    assert reasons["missing.mp4"] == "file not found"
    assert reasons["text.mp4"].startswith("cannot open")
    assert reasons["truncated.mp4"]  # the sample tables are lost: FFmpeg's words vary


def test_an_output_without_an_h264_container_is_refused(ramp_videos, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"out\.avi: the output must be one of \.mp4"):
        transcode_file(ramp_videos["avi"], tmp_path / "out.avi", SETTINGS)
    assert prepared_path("a/b.avi") == Path("a/b.mp4")
    assert prepared_path("a/b.webm") == Path("a/b.mp4")
    assert prepared_path("a/b.MKV") == Path("a/b.MKV")


def test_settings_are_checked() -> None:
    for bad in ({"short_side": 127}, {"keyframe_interval": 0}, {"crf": 52}, {"preset": "x"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PrepareSettings(**bad)


# --- catalogs -----------------------------------------------------------------------------
def _relative(samples: list[tuple[str, int]], root: Path) -> list[tuple[str, int]]:
    return [(str(Path(path).relative_to(root)), label) for path, label in samples]


def _folder_layout(root: Path, videos: dict[str, Path]) -> dict[str, Path]:
    """A VideoFolder of every kind of file, an empty class and a corrupt video."""
    paths = {
        "a": Path(place(videos["mp4"], root / "cello" / "a.mp4")),
        "b": Path(place(videos["avi"], root / "cello" / "b.avi")),
        "c": Path(place(videos["webm"], root / "violin" / "c.webm")),
        "corrupt": root / "violin" / "corrupt.mp4",
    }
    paths["corrupt"].write_bytes(videos["mp4"].read_bytes()[:500])
    (root / "flute").mkdir()  # a class without videos is still a class
    return paths


def test_video_folder_loads_its_prepared_root_with_the_same_samples(
    level_videos: dict[str, Path], tmp_path: Path
) -> None:
    root, out = tmp_path / "raw", tmp_path / "prepared"
    paths = _folder_layout(root, level_videos)
    source = VideoFolder(root, name="instruments")
    result = prepare_catalog(source, out, SETTINGS, workers=1, progress=False)
    assert (result.videos, result.prepared, result.skipped) == (4, 3, 0)
    assert [src for src, _ in result.failed] == [str(paths["corrupt"])]
    prepared = VideoFolder(out, name="instruments")
    assert prepared.raw_class_names == source.raw_class_names == ["cello", "flute", "violin"]
    expected = [(str(prepared_path(p)), label) for p, label in _relative(source.samples, root)]
    assert _relative(prepared.samples, out) == [e for e in expected if "corrupt" not in e[0]]
    assert probe_video(out / "violin" / "c.mp4").num_frames == NUM_FRAMES
    with (out / FAILED_NAME).open() as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert rows[0] == ["source", "reason"]
    assert [row[0] for row in rows[1:]] == [str(paths["corrupt"])] and rows[1][1]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["settings"] == {
        "short_side": 128,
        "keyframe_interval": 4,
        "crf": 23,
        "preset": "veryfast",
    }
    assert manifest["versions"]["av"] == av.__version__
    counts = manifest["catalogs"]["instruments"]
    assert (counts["videos"], counts["prepared"], counts["skipped"], counts["failed"]) == (
        4,
        3,
        0,
        1,
    )


def test_a_rerun_skips_prepared_videos_and_retries_failed_ones(
    level_videos: dict[str, Path], tmp_path: Path
) -> None:
    root, out = tmp_path / "raw", tmp_path / "prepared"
    paths = _folder_layout(root, level_videos)
    source = VideoFolder(root)
    prepare_catalog(source, out, SETTINGS, workers=1, progress=False)
    done = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    place(level_videos["mp4"], paths["corrupt"])  # repaired
    # An interrupted write leaves a hidden temp file; it is not a prepared video.
    leftover = out / "cello" / ".b.mp4.0123456789ab.tmp"
    (out / "cello" / "b.mp4").rename(leftover)
    del done[out / "cello" / "b.mp4"]
    result = prepare_catalog(VideoFolder(root), out, SETTINGS, workers=2, progress=False)
    assert (result.prepared, result.skipped, result.failed) == (2, 2, [])
    assert {p: p.stat().st_mtime_ns for p in done} == done
    assert probe_video(out / "cello" / "b.mp4").num_frames == NUM_FRAMES
    assert probe_video(out / "violin" / "corrupt.mp4").num_frames == NUM_FRAMES
    assert (out / FAILED_NAME).read_text() == "source\treason\n"
    assert len(VideoFolder(out).samples) == 4
    counts = json.loads((out / MANIFEST_NAME).read_text())["catalogs"]["raw"]
    assert (counts["prepared"], counts["skipped"], counts["failed"]) == (2, 2, 0)


def test_other_settings_in_a_prepared_folder_are_refused(ramp_videos, tmp_path: Path) -> None:
    root, out = tmp_path / "raw", tmp_path / "prepared"
    place(ramp_videos["mp4"], root / "cello" / "a.mp4")
    prepare_catalog(VideoFolder(root), out, SETTINGS, workers=1, progress=False)
    other = PrepareSettings(short_side=160, keyframe_interval=4)
    with pytest.raises(ValueError) as error:
        prepare_catalog(VideoFolder(root), out, other, workers=1, progress=False)
    message = str(error.value)
    assert str(out / MANIFEST_NAME) in message
    assert "'short_side': 128" in message and "'short_side': 160" in message


def test_two_sources_with_one_prepared_name_fail_one(ramp_videos, tmp_path: Path) -> None:
    root, out = tmp_path / "raw", tmp_path / "prepared"
    place(ramp_videos["mp4"], root / "cello" / "a.mp4")
    avi = place(ramp_videos["avi"], root / "cello" / "a.avi")
    result = prepare_catalog(VideoFolder(root), out, SETTINGS, workers=1, progress=False)
    assert result.failed == [(avi, "its prepared name a.mp4 is that of a.mp4")]
    assert result.prepared == 1


def test_ucf101_split_lists_find_the_prepared_mp4_files(ramp_videos, tmp_path: Path) -> None:
    root, split_dir = build_ucf101(tmp_path / "ucf", tmp_path / "splits", ramp_videos["avi"])
    source = UCF101(root, split_dir, subset="all")
    out = tmp_path / "prepared"
    result = prepare_catalog(source, out, SETTINGS, workers=1, progress=False)
    assert (result.prepared, result.failed) == (len(source), [])
    prepared = UCF101(out, split_dir, subset="all")
    assert prepared.missing == [] and prepared.class_names == source.class_names
    expected = [(str(prepared_path(p)), label) for p, label in _relative(source.samples, root)]
    assert _relative(prepared.samples, out) == expected
    assert all(path.endswith(".mp4") for path, _ in prepared.samples)
    train = UCF101(out, split_dir, subset="train")
    assert len(train) == 3 and train.missing == []


def test_a_listed_file_present_under_its_own_name_wins(ramp_videos, tmp_path: Path) -> None:
    root, split_dir = build_ucf101(tmp_path / "ucf", tmp_path / "splits", ramp_videos["avi"])
    avi = next(root.rglob("*.avi"))
    place(ramp_videos["mp4"], avi.with_suffix(".mp4"))
    listed = [path for path, _ in UCF101(root, split_dir).samples]
    assert str(avi) in listed and str(avi.with_suffix(".mp4")) not in listed


def test_hmdb51_split_files_find_the_prepared_mp4_files(ramp_videos, tmp_path: Path) -> None:
    root, split_dir = build_hmdb51(tmp_path / "hmdb", tmp_path / "splits", ramp_videos["avi"])
    source = HMDB51(root, split_dir, subset="all")
    out = tmp_path / "prepared"
    prepare_catalog(source, out, SETTINGS, workers=1, progress=False)
    prepared = HMDB51(out, split_dir, subset="all")
    assert prepared.missing == [] and prepared.class_names == source.class_names
    expected = [(str(prepared_path(p)), label) for p, label in _relative(source.samples, root)]
    assert _relative(prepared.samples, out) == expected


def test_kinetics700_loads_its_prepared_root(
    level_videos: dict[str, Path], ramp_videos, tmp_path: Path
) -> None:
    root, out = tmp_path / "k700", tmp_path / "prepared"
    place(ramp_videos["mp4"], root / "train" / "abseiling" / "a_000000_000010.mp4")
    # A download kept as WebM is found by its stem, and prepared as .mp4.
    place(level_videos["webm"], root / "train" / "playing cello" / "b_000005_000015.webm")
    annotations = tmp_path / "train.csv"
    annotations.write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,a,0,10,train\nplaying cello,b,5,15,train\n"
    )
    source = Kinetics700(root, annotations)
    assert len(source) == 2 and source.missing == []
    result = prepare_catalog(source, out, SETTINGS, workers=1, progress=False)
    assert (result.prepared, result.failed) == (2, [])
    prepared = Kinetics700(out, annotations)
    expected = [(str(prepared_path(p)), label) for p, label in _relative(source.samples, root)]
    assert _relative(prepared.samples, out) == expected and prepared.missing == []
    assert expected[1][0] == "train/playing cello/b_000005_000015.mp4"


def test_synthetic_actions_load_their_prepared_root_without_rendering(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "prepared"
    source = SyntheticActions(cache, part="seen", **TINY_SYNTHETIC)
    result = prepare_catalog(source, out, SETTINGS, workers=1, progress=False)
    assert result.prepared == result.videos == 24 and result.failed == []
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    for part in ("seen", "unseen"):
        raw = SyntheticActions(cache, part=part, **TINY_SYNTHETIC)
        prepared = SyntheticActions(out, part=part, **TINY_SYNTHETIC)
        assert prepared.class_names == raw.class_names
        assert _relative(prepared.samples, out) == _relative(raw.samples, cache)
    assert {p: p.stat().st_mtime_ns for p in written} == written  # nothing re-rendered
    sample = Path(SyntheticActions(out, **TINY_SYNTHETIC).samples[0][0])
    assert _keyframes(sample) == [0, 4]  # prepared, not a copy (the generator keys every 8)
