"""The benchmark's prepared data: ``aurl prepare-data``'s transcode of the source videos, and
litdata shards of the result, with the preparation's throughput and a frame-count check.

Preparation runs in this process with one codec thread (``transcode_file(threads=1)``), so its
videos/s is per core, the unit of ``aurl prepare-data --workers N`` (one process of one thread
per core). Every prepared file is decoded to its end and must give as many frames as its source.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import av

from data_modules.prepare import PrepareSettings, prepared_path, transcode_file
from data_modules.shards import write_shards

# Chunks per DataLoader worker at least: litdata hands out whole chunks, so a stream of fewer
# chunks than workers leaves workers idle (Kinetics holds thousands of 64 MB chunks).
CHUNKS_PER_WORKER = 4


def decoded_frames(path: str | Path) -> int:
    """The frames a full decode of ``path``'s first video stream gives."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def prepare_sources(
    paths: Sequence[Path], out_dir: Path, settings: PrepareSettings
) -> tuple[dict[Path, Path], dict[str, Any]]:
    """Transcodes each of ``paths`` into ``out_dir`` as ``aurl prepare-data`` does.

    Args:
        paths: source videos (distinct file names).
        out_dir: the folder of the prepared copies.
        settings: the preparation settings.

    Returns:
        Source -> prepared path, and the record: ``settings``, ``videos``, ``seconds``,
        ``videos_per_s_per_core``, source and prepared sizes in bytes, and per video
        ``frames`` (source, prepared) decoded to the end and ``same_frames`` for all.

    Raises:
        ValueError: two sources share a file name.
    """
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"sources need distinct file names: {names}")
    prepared: dict[Path, Path] = {}
    seconds = 0.0
    for path in paths:
        target = out_dir / prepared_path(Path(path.name))
        start = time.perf_counter()
        transcode_file(path, target, settings, threads=1)
        seconds += time.perf_counter() - start
        prepared[path] = target
    frames = {path.name: [decoded_frames(path), decoded_frames(prepared[path])] for path in paths}
    record = {
        "settings": asdict(settings),
        "videos": len(paths),
        "seconds": seconds,
        "videos_per_s_per_core": len(paths) / seconds,
        "source_bytes": sum(p.stat().st_size for p in paths),
        "prepared_bytes": sum(p.stat().st_size for p in prepared.values()),
        "frames": frames,
        "same_frames": all(a == b for a, b in frames.values()),
    }
    return prepared, record


def write_item_shards(
    item_paths: Sequence[str], out_dir: Path, max_workers: int
) -> tuple[Path, dict[str, Any]]:
    """litdata shards holding the files ``item_paths`` (one item each, in order, unchanged).

    The chunk size gives every DataLoader worker at least :data:`CHUNKS_PER_WORKER` chunks.

    Returns:
        The shard folder and its record: ``items``, ``chunk_bytes``, ``chunks``, ``seconds``.
    """
    total = sum(Path(p).stat().st_size for p in item_paths)
    chunk_bytes = max(1, total // (CHUNKS_PER_WORKER * max(1, max_workers)))
    start = time.perf_counter()
    write_shards(
        [(p, 0) for p in item_paths],
        ["video"],
        out_dir,
        catalog_name="benchmark",
        chunk_bytes=chunk_bytes,
        num_workers=1,
    )
    seconds = time.perf_counter() - start
    chunks = len(list(out_dir.glob("chunk-*.bin")))
    return out_dir, {
        "items": len(item_paths),
        "chunk_bytes": chunk_bytes,
        "chunks": chunks,
        "seconds": seconds,
    }
