"""Generating SyntheticActions into a cache folder: videos, manifest and resuming.

Videos are written as H.264 mp4 files into a cache folder laid out as a ``VideoFolder``::

    <cache_dir>/synthetic-<hash>/<class name>/<index:04d>.mp4
    <cache_dir>/synthetic-<hash>/manifest.json

The hash keys the folder by every parameter that changes a video (generator version,
vocabulary, counts, frames, size, fps, crf, seed), so different parameters never share a folder.
The manifest is written last and atomically: a folder without one is an interrupted generation,
resumed by rendering only the files that are missing. The unseen split is recorded in the
manifest but does not key the folder: a different split only rewrites the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tqdm.auto import tqdm

from aurl.paths import read_json_object
from data_modules.synthetic.render import render_synthetic_video, video_seed
from data_modules.synthetic.spec import SyntheticSpec, split_unseen, synthetic_class_names
from data_modules.video_writer import write_video

logger = logging.getLogger(__name__)

# Bump whenever rendering or encoding changes what a given seed produces: it keys the cache.
GENERATOR_VERSION = 1
# The benchmark's version: the renderer plus the defaults of SyntheticSpec. Results of
# different versions are never comparable; the version keys the cache folder, the manifest
# records it and README names it with every number.
#   v1: 16-frame videos, 24 a class (2,880 files).
#   v2: 16-frame videos, 48 a class (5,760 files): more videos of the same classes.
BENCHMARK_VERSION = 2
MANIFEST_NAME = "manifest.json"

_GOP_SIZE = 8


class SyntheticVideo(NamedTuple):
    """One generated video: ``path`` is relative to the dataset root."""

    path: str
    class_name: str
    index: int
    seed: int


@dataclass(frozen=True)
class SyntheticManifest:
    """What ``manifest.json`` records about a generated SyntheticActions folder.

    Attributes:
        root: the dataset folder (``<cache_dir>/synthetic-<hash>``).
        version: ``GENERATOR_VERSION`` that rendered the videos.
        params: the parameters that key the folder (see ``generate_synthetic_actions``).
        class_names: all classes, in label order.
        seen: seen (training) classes, in label order.
        unseen: held-out classes, in label order.
        num_unseen: size of the unseen split.
        split_seed: seed of the unseen split.
        videos: every video of the folder, class by class.
    """

    root: Path
    version: int
    params: dict[str, Any]
    class_names: list[str]
    seen: list[str]
    unseen: list[str]
    num_unseen: int
    split_seed: int
    videos: list[SyntheticVideo]

    @property
    def counts(self) -> dict[str, int]:
        """Number of videos per class name."""
        counts = dict.fromkeys(self.class_names, 0)
        for video in self.videos:
            counts[video.class_name] += 1
        return counts

    def video_paths(self, class_names: Iterable[str] | None = None) -> list[tuple[Path, str]]:
        """Absolute paths with their class names, optionally restricted to ``class_names``."""
        wanted = None if class_names is None else set(class_names)
        return [
            (self.root / video.path, video.class_name)
            for video in self.videos
            if wanted is None or video.class_name in wanted
        ]


def generate_synthetic_actions(
    cache_dir: str | Path | None = None,
    spec: SyntheticSpec | None = None,
    *,
    num_workers: int = 2,
    progress: bool = True,
) -> SyntheticManifest:
    """Generates (or finds cached) SyntheticActions videos and returns their manifest.

    Safe to interrupt: rerunning resumes, rendering only the missing videos. Run it in one
    process (e.g. a LightningDataModule's ``prepare_data``), not concurrently in several.

    Args:
        cache_dir: parent of the ``synthetic-<hash>`` folder; ``None`` -> ``default_cache_dir()``.
        spec: what to generate (None: ``SyntheticSpec()``, the benchmark); every field but the
            split keys the folder.
        num_workers: render/encode processes; ``<= 1`` works in this process.
        progress: show a tqdm progress bar.

    Returns:
        The manifest of the complete folder.
    """
    spec = spec or SyntheticSpec()
    if spec.size % 2 or spec.size < 16:
        raise ValueError(f"size must be even and >= 16 (H.264 4:2:0), got {spec.size}")
    if spec.videos_per_class < 1 or spec.num_frames < 2 or spec.fps <= 0:
        raise ValueError(
            f"need videos_per_class >= 1, num_frames >= 2, fps > 0; got {spec.videos_per_class}, "
            f"{spec.num_frames}, {spec.fps}"
        )
    class_names = synthetic_class_names(spec.colours, spec.shapes, spec.motions)
    seen, unseen = split_unseen(class_names, spec.num_unseen, spec.split_seed)
    params = {
        "version": GENERATOR_VERSION,
        "benchmark_version": BENCHMARK_VERSION,
        "colours": list(spec.colours),
        "shapes": list(spec.shapes),
        "motions": list(spec.motions),
        "videos_per_class": spec.videos_per_class,
        "num_frames": spec.num_frames,
        "size": spec.size,
        "fps": spec.fps,
        "crf": spec.crf,
        "gop_size": _GOP_SIZE,
        "seed": spec.seed,
    }
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = root / f"synthetic-{_params_hash(params)}"
    manifest = SyntheticManifest(
        root=root,
        version=GENERATOR_VERSION,
        params=params,
        class_names=class_names,
        seen=seen,
        unseen=unseen,
        num_unseen=spec.num_unseen,
        split_seed=spec.split_seed,
        videos=[
            SyntheticVideo(
                f"{name}/{index:04d}.mp4", name, index, video_seed(spec.seed, name, index)
            )
            for name in class_names
            for index in range(spec.videos_per_class)
        ],
    )
    manifest_path = root / MANIFEST_NAME
    previous = read_json_object(manifest_path) if manifest_path.is_file() else None
    if previous is not None and previous.get("params") != params:
        raise ValueError(
            f"{manifest_path}: parameters {previous.get('params')} differ from {params} in a "
            "folder keyed by their hash; delete the folder"
        )
    missing = [v for v in manifest.videos if not _is_complete(root / v.path)]
    if missing:
        _remove_partial_files(root, class_names)
        _render_all(root, spec, len(manifest.videos), missing, num_workers, progress)
    if missing or previous != _manifest_json(manifest):
        _write_json_atomic(manifest_path, _manifest_json(manifest))
    return manifest


def default_cache_dir() -> Path:
    """``$AURL_CACHE_DIR/synthetic`` if set, else ``~/.cache/aurl/synthetic``."""
    base = os.environ.get("AURL_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "aurl") / "synthetic"


def _params_hash(params: dict[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters (keys the cache folder)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _is_complete(path: Path) -> bool:
    # write_video renames its temp file only after the last packet, so any non-empty file is whole.
    return path.is_file() and path.stat().st_size > 0


def _remove_partial_files(root: Path, class_names: Sequence[str]) -> None:
    for name in class_names:
        folder = root / name
        if folder.is_dir():
            for partial in folder.glob(".*.tmp.*"):
                partial.unlink()


def _render_one(job: tuple[str, SyntheticSpec, SyntheticVideo]) -> str:
    root, spec, video = job
    frames = render_synthetic_video(spec, video.class_name, video.index)
    write_video(Path(root) / video.path, frames, fps=spec.fps, gop_size=_GOP_SIZE, crf=spec.crf)
    return video.path


def _render_all(
    root: Path,
    spec: SyntheticSpec,
    total: int,
    videos: list[SyntheticVideo],
    num_workers: int,
    progress: bool,
) -> None:
    jobs = [(str(root), spec, v) for v in videos]
    logger.info(
        "Generating %d of %d SyntheticActions videos into %s (%d workers)",
        len(jobs),
        total,
        root,
        num_workers,
    )
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="SyntheticActions", unit="video", disable=not progress)
    with bar:
        if num_workers <= 1:
            for job in jobs:
                _render_one(job)
                bar.update()
        else:
            with ProcessPoolExecutor(num_workers) as pool:
                chunk = max(1, min(64, len(jobs) // (4 * num_workers)))
                for _ in pool.map(_render_one, jobs, chunksize=chunk):
                    bar.update()
    logger.info("Generated %d videos in %.1f s", len(jobs), time.perf_counter() - start)


def _manifest_json(manifest: SyntheticManifest) -> dict[str, Any]:
    return {
        "generator": "SyntheticActions",
        "version": manifest.version,
        "params": manifest.params,
        "class_names": manifest.class_names,
        "seen": manifest.seen,
        "unseen": manifest.unseen,
        "num_unseen": manifest.num_unseen,
        "split_seed": manifest.split_seed,
        "counts": manifest.counts,
        "videos": [v._asdict() for v in manifest.videos],
    }


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
