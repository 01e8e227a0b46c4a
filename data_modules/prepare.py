"""Preparing videos for fast training reads: the ``files`` format of ``aurl prepare-data``.

Every video of a catalog is transcoded to H.264 (yuv420p, no audio), its short side scaled to
``short_side`` (a smaller video keeps its size), with a keyframe exactly every
``keyframe_interval`` frames, so that a clip read seeks to a keyframe at most that many frames
before its first frame. The prepared folder has the catalog's layout
(:meth:`~data_modules.datasets.VideoCatalog.layout`): the same relative paths, except that
``.mp4`` replaces an extension whose container cannot carry the result (AVI, WebM, ...; catalogs
find a listed file by its stem). A config then points the catalog's ``root`` at the prepared
folder; nothing else changes.

Frames: every decoded frame of the source is written once, in decode order, at the source's
average frame rate with evenly spaced timestamps. The prepared file thus decodes to the same
number of frames, and for a constant-rate source (nearly all footage) frame ``k`` is the same
picture as in the source under :mod:`data_modules.video_reader`'s indices. A variable-rate
source keeps its sequence of frames but not its irregular timing: frame ``k`` is its ``k``-th
decoded frame (the reader indexes a variable-rate source by time, which may repeat or skip one).

Resuming: an output is only ever created by an atomic rename (:func:`aurl.paths.write_atomically`),
so one that exists is complete and is skipped; a killed run may leave hidden
``.<name>.<random>.tmp`` files, which nothing reads. Unreadable inputs (missing, empty, not a
video, truncated, corrupt) are listed in ``<output>/failed.tsv`` with the reason and retried by
the next run; ``<output>/prepare_manifest.json`` records the settings (written before the first
video: a folder is never filled with two settings), the tool versions and each catalog's counts.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.error
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter
from tqdm.auto import tqdm

from aurl.paths import read_json_object, write_atomically
from data_modules.datasets.base import CatalogLayout, VideoCatalog
from data_modules.video_reader import OpenVideo, VideoDecodeError

logger = logging.getLogger(__name__)

FAILED_NAME = "failed.tsv"
MANIFEST_NAME = "prepare_manifest.json"
FORMAT = "files"
# Output containers by source extension: these store timestamps and keep the file's name. AVI
# stores none (FFmpeg reads H.264 in AVI back one frame late), WebM refuses H.264: those and any
# other extension become .mp4.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
# Frames a container's header count may overstate the decodable ones by (the reader's default
# tail_tolerance); a file that decodes to fewer is truncated, as `aurl check-data` finds it.
_COUNT_TOLERANCE = 2
# Jobs queued per worker process: enough to keep each busy, few enough to stop quickly.
_QUEUED_PER_WORKER = 4


def usable_cores() -> int:
    """The cores this process may run on (a SLURM or container allotment, not the whole node)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class PrepareSettings:
    """How videos are prepared; recorded in the manifest, which refuses other settings.

    Attributes:
        short_side: output short side in pixels (even); a video with a smaller short side keeps
            its size (made even: 4:2:0 chroma needs even sides). 128 leaves room for 112-pixel
            crops at the usual scale augmentation.
        keyframe_interval: a keyframe exactly every N frames (no other keyframes): a clip read
            decodes at most N - 1 frames before its first one. 16 is one 16-frame clip.
        crf: x264 constant rate factor; 23, x264's default, keeps 128-pixel footage visually
            unchanged at a few hundred kB for 10 s (lower: larger files, higher quality).
        preset: x264 speed preset; "veryfast" encodes ~3x faster than "medium" for files ~10%
            larger, and decoding speed barely depends on it.
    """

    short_side: int = 128
    keyframe_interval: int = 16
    crf: int = 23
    preset: str = "veryfast"

    def __post_init__(self) -> None:
        if self.short_side < 2 or self.short_side % 2:
            raise ValueError(f"short_side must be even and >= 2, got {self.short_side}")
        if self.keyframe_interval < 1:
            raise ValueError(f"keyframe_interval must be >= 1, got {self.keyframe_interval}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in [0, 51], got {self.crf}")
        if self.preset not in _X264_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(_X264_PRESETS)}: {self.preset!r}")


@dataclass
class PrepareResult:
    """What :func:`prepare_catalog` did.

    Attributes:
        catalog: the catalog's name.
        output: the prepared root.
        videos: videos of the catalog's layout.
        prepared: videos transcoded by this run.
        skipped: videos already prepared (their output existed).
        failed: ``(source path, reason)`` of the videos that could not be prepared.
        seconds: wall time of the transcoding.
        workers: worker processes.
    """

    catalog: str
    output: Path
    videos: int
    prepared: int
    skipped: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1

    @property
    def videos_per_second(self) -> float:
        """Videos transcoded (or found unreadable) per second by this run."""
        return (self.prepared + len(self.failed)) / self.seconds if self.seconds > 0 else 0.0

    @property
    def videos_per_second_per_worker(self) -> float:
        """:attr:`videos_per_second` per worker process (per core with one worker a core)."""
        return self.videos_per_second / self.workers

    def summary(self) -> str:
        """One line for people: counts, failures and throughput."""
        failed = f", {len(self.failed)} failed (see {self.output / FAILED_NAME})"
        return (
            f"{self.catalog}: {self.videos} videos -> {self.output} ({self.prepared} prepared, "
            f"{self.skipped} already done{failed if self.failed else ''}); "
            f"{self.videos_per_second:.1f} videos/s, {self.videos_per_second_per_worker:.2f} "
            f"per worker ({self.workers} workers, {self.seconds:.1f} s)"
        )


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The prepared frame size ``(width, height)``: the short side scaled to ``short_side``
    (never up), the aspect ratio kept, both sides even."""
    short, long = min(width, height), max(width, height)
    if short <= short_side:
        new_short, new_long = short - short % 2, long - long % 2
    else:
        new_short, new_long = short_side, 2 * round(long * short_side / short / 2)
    new_short, new_long = max(2, new_short), max(2, new_long)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def prepared_path(path: str | Path) -> Path:
    """``path`` as prepared: the same name, with ``.mp4`` for an extension not in
    :data:`CONTAINERS`."""
    path = Path(path)
    return path if path.suffix.lower() in CONTAINERS else path.with_suffix(".mp4")


def transcode_video(
    src: str | Path, settings: PrepareSettings, container: str = "mp4", threads: int = 1
) -> bytes:
    """Transcodes one video as :mod:`data_modules.prepare` describes, in memory.

    Args:
        src: the source video.
        settings: the preparation settings.
        container: FFmpeg muxer of the result (``"mp4"``, ``"mov"``, ``"matroska"``).
        threads: decoder and encoder threads (0: FFmpeg's choice); one per worker process
            when a process runs on every core.

    Returns:
        The encoded file.

    Raises:
        VideoDecodeError: the source is missing, empty, not a video, truncated or corrupt.
    """
    buffer = io.BytesIO()
    _transcode(Path(src), buffer, container, settings, threads)
    return buffer.getvalue()


def transcode_file(
    src: str | Path, dst: str | Path, settings: PrepareSettings, threads: int = 1
) -> Path:
    """Transcodes ``src`` into ``dst`` atomically (``dst`` exists only once complete).

    Args:
        src: the source video.
        dst: the output; its extension picks the container (:data:`CONTAINERS`).
        settings: the preparation settings.
        threads: decoder and encoder threads, as in :func:`transcode_video`.

    Returns:
        ``dst``.

    Raises:
        ValueError: ``dst`` has an extension without an H.264 container.
        VideoDecodeError: the source cannot be read.
    """
    dst = Path(dst)
    container = CONTAINERS.get(dst.suffix.lower())
    if container is None:
        raise ValueError(f"{dst}: the output must be one of {', '.join(CONTAINERS)}")
    data = transcode_video(src, settings, container, threads)
    return write_atomically(dst, lambda handle: handle.write(data))


def _transcode(
    src: Path, out: BinaryIO, container: str, settings: PrepareSettings, threads: int
) -> None:
    with OpenVideo(src, thread_type=None) as video:
        stream = video.stream
        stream.codec_context.thread_count = threads
        listed = stream.frames
        if not stream.width or not stream.height:
            raise VideoDecodeError(src, "video stream has no frame size")
        width, height = output_size(stream.width, stream.height, settings.short_side)
        frames = _decoded(video.container, stream, src)
        first = next(frames, None)
        if first is None:
            raise VideoDecodeError(src, "no frame decoded")
        time_base = 1 / video.fps
        count = 0
        with av.open(out, "w", format=container) as output:
            encoder = output.add_stream("libx264", rate=video.fps)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.codec_context.gop_size = settings.keyframe_interval
            encoder.codec_context.thread_count = threads
            encoder.options = {
                "crf": str(settings.crf),
                "preset": settings.preset,
                # Keyframes exactly every keyframe_interval frames: no scene-cut ones.
                "keyint_min": str(settings.keyframe_interval),
                "sc_threshold": "0",
            }
            # One scaler context for the whole video (frame.reformat builds one per call).
            scaler = VideoReformatter()
            for frame in itertools.chain([first], frames):
                scaled = scaler.reformat(frame, width, height, "yuv420p", interpolation="AREA")
                scaled.pts, scaled.time_base = count, time_base
                # x264 would make a keyframe of every frame the source coded as one.
                scaled.pict_type = PictureType.NONE
                output.mux(encoder.encode(scaled))
                count += 1
            output.mux(encoder.encode())
    if listed and count < listed - _COUNT_TOLERANCE:
        raise VideoDecodeError(
            src, f"truncated: decoded {count} of the {listed} frames its header lists"
        )


def _decoded(source: Any, stream: Any, src: Path) -> Iterator[av.VideoFrame]:
    """The stream's frames in decode order, with decoding errors as VideoDecodeError."""
    count = 0
    try:
        for frame in source.decode(stream):
            yield frame
            count += 1
    except av.error.FFmpegError as error:
        raise VideoDecodeError(src, f"decoding failed after {count} frames: {error}") from error


def prepare_catalog(
    catalog: VideoCatalog,
    output: str | Path,
    settings: PrepareSettings | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> PrepareResult:
    """Prepares every video of ``catalog`` into ``output`` with the catalog's layout.

    Resumable (existing outputs are skipped); unreadable inputs go to ``output/failed.tsv``;
    ``output/prepare_manifest.json`` records the settings and counts. See the module docstring.

    Args:
        catalog: the catalog (a generated one is generated first, by ``catalog.prepare()``).
        output: the prepared root: the value for the catalog's ``root``.
        settings: the preparation settings (None: the defaults).
        workers: transcoding processes (None: :func:`usable_cores`); ``<= 1`` works in this
            process.
        progress: show a progress bar with the ETA.

    Returns:
        The :class:`PrepareResult`.

    Raises:
        ValueError: ``output`` holds videos prepared with other settings (named with both), or
            a video of the layout is outside its root.
    """
    settings = settings or PrepareSettings()
    workers = max(1, workers or usable_cores())
    output = Path(output)
    catalog.prepare()
    layout = catalog.layout()
    output.mkdir(parents=True, exist_ok=True)
    _claim(output / MANIFEST_NAME, settings)
    jobs, failed = _plan(layout, output)
    for folder in layout.folders:
        (output / _relative(folder, layout.root)).mkdir(parents=True, exist_ok=True)
    listed = _FolderListing()
    todo = [(src, dst) for src, dst in jobs if not listed.exists(dst)]
    skipped = len(jobs) - len(todo)
    logger.info(
        "%s: %d videos, %d already prepared in %s, %d to prepare with %d workers",
        catalog.name,
        len(layout.videos),
        skipped,
        output,
        len(todo),
        workers,
    )
    start = time.perf_counter()
    run_failed = prepare_videos(todo, settings, workers, progress, desc=catalog.name)
    seconds = time.perf_counter() - start
    for path in layout.files:
        data = path.read_bytes()
        write_atomically(output / _relative(path, layout.root), lambda h, d=data: h.write(d))
    result = PrepareResult(
        catalog.name,
        output,
        len(layout.videos),
        len(todo) - len(run_failed),
        skipped,
        failed + run_failed,
        seconds,
        workers,
    )
    _write_failed(output / FAILED_NAME, {str(src) for src in layout.videos}, result.failed)
    _record(output / MANIFEST_NAME, catalog, layout, result)
    return result


def prepare_videos(
    jobs: Sequence[tuple[Path, Path]],
    settings: PrepareSettings,
    workers: int = 1,
    progress: bool = True,
    desc: str = "preparing",
) -> list[tuple[str, str]]:
    """Transcodes each ``(source, output)`` of ``jobs`` with :func:`transcode_file`.

    Args:
        jobs: source and output paths (outputs that exist are overwritten: skip them first).
        settings: the preparation settings.
        workers: processes of one codec thread each; ``<= 1`` works in this process, with
            FFmpeg's threads.
        progress: show a progress bar with the ETA.
        desc: the progress bar's label.

    Returns:
        ``(source path, reason)`` of each video that could not be prepared, in job order.

    Raises:
        RuntimeError: a worker process died (killed, out of memory); rerunning resumes.
    """
    reasons: dict[int, str] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress)
    with bar:
        if workers <= 1:
            for k, (src, dst) in enumerate(jobs):
                reason = _prepare_one((str(src), str(dst), settings, 0))
                if reason is not None:
                    reasons[k] = reason
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                pending: dict[Future, int] = {}
                queue = iter(enumerate(jobs))
                while True:
                    for k, (src, dst) in itertools.islice(
                        queue, workers * _QUEUED_PER_WORKER - len(pending)
                    ):
                        job = (str(src), str(dst), settings, 1)
                        pending[pool.submit(_prepare_one, job)] = k
                    if not pending:
                        break
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        k = pending.pop(future)
                        try:
                            reason = future.result()
                        except BrokenProcessPool as error:
                            busy = [str(jobs[j][0]) for j in sorted([k, *pending.values()])]
                            raise RuntimeError(
                                f"a worker process died (killed, out of memory?) while "
                                f"preparing one of {busy}; rerun to resume"
                            ) from error
                        if reason is not None:
                            reasons[k] = reason
                        bar.update()
                    bar.set_postfix(failed=len(reasons), refresh=False)
    return [(str(jobs[k][0]), reasons[k]) for k in sorted(reasons)]


def _prepare_one(job: tuple[str, str, PrepareSettings, int]) -> str | None:
    """Prepares one video (source, output, settings, threads); returns why it could not be,
    or None."""
    src, dst, settings, threads = job
    try:
        transcode_file(src, dst, settings, threads)
    except VideoDecodeError as error:
        return error.reason
    except Exception as error:  # one bad input never stops the run
        return f"{type(error).__name__}: {error}"
    return None


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        raise ValueError(f"{path} is not under the catalog root {root}") from None


def _plan(
    layout: CatalogLayout, output: Path
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Each video's output; a video whose output name another one keeps fails.

    ``a.avi`` and ``a.mp4`` of one folder would both become ``a.mp4``: the one already named so
    keeps it.
    """
    by_output: dict[Path, list[Path]] = {}
    for src in layout.videos:
        by_output.setdefault(output / prepared_path(_relative(src, layout.root)), []).append(src)
    jobs, failed = [], []
    for dst, sources in by_output.items():
        keeper = next((s for s in sources if s.name == dst.name), sources[0])
        jobs.append((keeper, dst))
        failed += [
            (str(s), f"its prepared name {dst.name} is that of {keeper.name}")
            for s in sources
            if s != keeper
        ]
    return jobs, failed


class _FolderListing:
    """Answers "does this file exist?" with one listing per folder (fast on network drives)."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}

    def exists(self, path: Path) -> bool:
        names = self._names.get(path.parent)
        if names is None:
            names = frozenset(os.listdir(path.parent)) if path.parent.is_dir() else frozenset()
            self._names[path.parent] = names
        return path.name in names


def _versions() -> dict[str, str]:
    return {
        "av": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
    }


def _claim(path: Path, settings: PrepareSettings) -> None:
    """Records ``settings`` in a new manifest, or checks an existing one holds the same."""
    wanted = {"format": FORMAT, "settings": asdict(settings)}
    if path.is_file():
        manifest = read_json_object(path)
        found = {"format": manifest.get("format"), "settings": manifest.get("settings")}
        if found != wanted:
            raise ValueError(
                f"{path}: this folder holds videos prepared with {found}, not {wanted}; "
                "prepare into another folder, or with the same settings (a mix would train on "
                "both without notice)"
            )
        return
    manifest = {**wanted, "versions": _versions(), "catalogs": {}}
    write_atomically(path, lambda h: h.write(json.dumps(manifest, indent=1).encode()))


def _record(
    path: Path, catalog: VideoCatalog, layout: CatalogLayout, result: PrepareResult
) -> None:
    """Adds the catalog's counts of this run to the manifest."""
    manifest = read_json_object(path)
    manifest.setdefault("catalogs", {})[catalog.name] = {
        "class": f"{type(catalog).__module__}.{type(catalog).__qualname__}",
        "source_root": str(layout.root),
        "videos": result.videos,
        "prepared": result.prepared,
        "skipped": result.skipped,
        "failed": len(result.failed),
        "seconds": round(result.seconds, 3),
        "workers": result.workers,
        "videos_per_second": round(result.videos_per_second, 3),
        "versions": _versions(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_atomically(path, lambda h: h.write(json.dumps(manifest, indent=1).encode()))


def _write_failed(path: Path, retried: set[str], failed: list[tuple[str, str]]) -> None:
    """Rewrites the failure list: earlier entries of other videos, then this run's."""
    rows: list[tuple[str, str]] = []
    if path.is_file():
        with path.open(newline="") as f:
            rows = [
                (row[0], row[1])
                for row in itertools.islice(csv.reader(f, delimiter="\t"), 1, None)
                if len(row) == 2 and row[0] not in retried
            ]
    rows += [(src, " ".join(reason.split())) for src, reason in failed]
    if not rows and not path.exists():
        return
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerows([("source", "reason"), *rows])
    write_atomically(path, lambda h: h.write(text.getvalue().encode()))
