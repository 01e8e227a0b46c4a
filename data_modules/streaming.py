"""Clips from litdata shards: the training stream and random access for evaluation.

Training goes through litdata: :class:`StreamingClipDataset` is a ``StreamingDataset`` whose
items are decoded in memory by :meth:`VideoClipDataset.load
<data_modules.clip_dataset.VideoClipDataset.load>`, so clip sampling, transform, flips and the
per-item generator seeded by ``(seed, epoch, training index)`` are those of the file reader.
litdata shuffles chunks and items from ``seed`` and its epoch, gives each DDP rank (from
``torch.distributed`` or ``WORLD_SIZE``/``GLOBAL_RANK``) and each worker its own chunks, and
:class:`litdata.StreamingDataLoader` has ``state_dict``/``load_state_dict``, which
``ZeroShotDataModule`` keeps in every checkpoint and restores (Lightning saves it too but does
not restore it after ``estimated_stepping_batches``), so a run resumes mid-epoch exactly where
it stopped (with the same world size, workers and batch size; litdata restripes otherwise).

Only the datamodule's training items are streamed: items of validation classes, of classes
removed for overlap and held-out GZSL videos are neither read nor decoded, and chunks that hold
no training item are never downloaded (litdata's unit of download is the chunk, so a chunk with
one training item is fetched whole). litdata's epoch, shuffling, sharding, length and resume
position count training items only, so batches are full.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from data_modules.clip_dataset import ItemsWithSkipped, VideoClipDataset, collate_skip
from data_modules.datasets.streaming_shards import StreamingShards
from data_modules.shards import allow_plain_http
from data_modules.video_reader import EncodedVideo

logger = logging.getLogger(__name__)


class UnreadableItem(NamedTuple):
    """A streamed training item whose video cannot be decoded (a warning names it).

    Attributes:
        sample_id: the item's identifier (``StreamingShards.sample_id``).
    """

    sample_id: str


class StreamingClipDataset(StreamingDataset):
    """Training clips streamed from a :class:`StreamingShards` folder (see the module docstring).

    litdata sees only the training items: chunks without one are left out (never downloaded)
    and each remaining chunk's region holds as many positions as it has training items, so
    shuffling, sharding, lengths and resume count training items only; :meth:`__getitem__`
    maps a position to the chunk's training item before reading it.

    Args:
        shards: the shard catalog.
        clips: the training dataset over the training samples (shard identifiers and training
            labels), whose :meth:`~VideoClipDataset.load` makes an item.
        item_to_clip: for each shard item, its index in ``clips``, or -1 (not trained on).
        shuffle: shuffle chunks and items, differently every epoch.
        seed: litdata's shuffling seed.

    Raises:
        ValueError: ``item_to_clip`` does not match the shards, or selects no item.
    """

    def __init__(
        self,
        shards: StreamingShards,
        clips: VideoClipDataset,
        item_to_clip: Sequence[int] | np.ndarray,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        allow_plain_http(shards.storage_options)
        super().__init__(
            shards.input_dir,
            cache_dir=shards.cache_dir,
            storage_options=shards.storage_options,
            max_cache_size=shards.max_cache_size,
            shuffle=shuffle,
            seed=seed,
            # Deserialise the requested item only: litdata's default for plain bytes copies a
            # ~16 MB window of neighbours, most of them not read here.
            batch_decode=0,
        )
        item_to_clip = np.asarray(item_to_clip, dtype=np.int64)
        sizes = [end - begin for begin, end in self.region_of_interest]
        if len(item_to_clip) != len(shards.index.labels) or sum(sizes) != len(item_to_clip):
            raise ValueError(
                f"{shards.input_dir}: item_to_clip has {len(item_to_clip)} entries, the sidecar "
                f"{len(shards.index.labels)} items and the chunks {sum(sizes)}"
            )
        # Per kept chunk: its first item and the in-chunk offsets of its training items.
        files, offsets, first_items, first = [], [], [], 0
        for name, size in zip(self.subsampled_files, sizes, strict=True):
            trained = np.flatnonzero(item_to_clip[first : first + size] >= 0)
            if len(trained):
                files.append(name)
                offsets.append(trained)
                first_items.append(first)
            first += size
        if not files:
            raise ValueError(f"{shards.input_dir}: no training item among the shards")
        self.subsampled_files = files
        # litdata reads positions [0, n) of a chunk's region; __getitem__ maps them to items.
        self.region_of_interest = [(0, len(o)) for o in offsets]
        self.shards = shards
        self.clips = clips
        self.item_to_clip = item_to_clip
        self._chunk_offsets = offsets
        self._chunk_first_item = first_items

    def __iter__(self) -> StreamingClipDataset:
        allow_plain_http(self.shards.storage_options)  # again in spawned workers
        iterator = super().__iter__()
        # litdata counts epochs from 1 (its loader's first __iter__); items are seeded like the
        # file reader's, which counts them from 0 like Lightning.
        self.clips.set_epoch(self.current_epoch - 1)
        return iterator

    def __getitem__(self, index: ChunkedIndex) -> dict[str, Any] | UnreadableItem:
        if not isinstance(index, ChunkedIndex):
            raise TypeError("StreamingClipDataset is iterated, not indexed (use ShardClipDataset)")
        assert self.cache is not None
        begin = self.cache.get_chunk_intervals()[index.chunk_index][0]
        offset = int(self._chunk_offsets[index.chunk_index][index.index - begin])
        item_index = self._chunk_first_item[index.chunk_index] + offset
        raw = super().__getitem__(dataclasses.replace(index, index=begin + offset))
        source = read_shard_item(self.shards, item_index, raw)
        item = self.clips.load(int(self.item_to_clip[item_index]), source)
        return UnreadableItem(self.shards.sample_id(item_index)) if item is None else item


class ShardClipDataset(VideoClipDataset):
    """A :class:`VideoClipDataset` whose samples may be shard items, read by index.

    Samples whose path is a sample identifier of one of ``shards`` are read from those shards by
    litdata's random access (from a remote store, only the item's bytes are fetched), all others
    from their files, so one evaluation set can mix held-out source items with a target's
    files, or with a target's own shard items.

    Args:
        shards: the shard catalogs whose items the samples may name (source and targets).
        *args: the arguments of :class:`VideoClipDataset`.
        **kwargs: the keyword arguments of :class:`VideoClipDataset`.
    """

    def __init__(self, shards: Sequence[StreamingShards], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shards = list(shards)
        # One random-access stream per catalog, made on first use inside the worker that reads.
        self._streams: dict[str, StreamingDataset] = {}

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path = self.path(index)
        for shards in self.shards:
            item_index = shards.item_index(path)
            if item_index is not None:
                item = self._stream(shards)[item_index]
                return self.load(index, read_shard_item(shards, item_index, item))
        return super().__getitem__(index)

    def _stream(self, shards: StreamingShards) -> StreamingDataset:
        if shards.input_dir not in self._streams:
            allow_plain_http(shards.storage_options)
            self._streams[shards.input_dir] = StreamingDataset(
                shards.input_dir,
                cache_dir=shards.cache_dir,
                storage_options=shards.storage_options,
                max_cache_size=shards.max_cache_size,
                batch_decode=0,
            )
        return self._streams[shards.input_dir]


def read_shard_item(
    shards: StreamingShards, item_index: int, item: dict[str, Any]
) -> EncodedVideo:
    """The video of a shard item as read by litdata, after checking it is the sidecar's.

    Raises:
        RuntimeError: the item's path differs from the sidecar's (shards and sidecar disagree).
    """
    expected = shards.item_path(item_index)
    if item["path"] != expected:
        raise RuntimeError(
            f"{shards.input_dir}: item {item_index} is {item['path']!r} but the sidecar says "
            f"{expected!r}; the shards and aurl_shards.json do not match"
        )
    return EncodedVideo(bytes(item["video"]), f"{shards.sample_id(item_index)} ({expected})")


def collate_shard_items(batch: Sequence[dict[str, Any] | UnreadableItem]) -> dict[str, Any]:
    """Collates streamed items, reporting the unreadable ones.

    Returns:
        :func:`~data_modules.clip_dataset.collate_skip`'s batch, whose ``skipped`` lists the
        identifiers of the unreadable items.
    """
    items = ItemsWithSkipped(item for item in batch if not isinstance(item, UnreadableItem))
    items.skipped = [item.sample_id for item in batch if isinstance(item, UnreadableItem)]
    return collate_skip(items)


def streaming_train_loader(
    shards: StreamingShards,
    clips: VideoClipDataset,
    *,
    batch_size: int,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
    worker_init_fn: Any = None,
) -> StreamingDataLoader:
    """A stateful, shuffled training loader over the training items of ``shards``.

    Args:
        shards: the shard catalog.
        clips: the training dataset; its samples must be sample identifiers of ``shards``.
        batch_size: clips per batch (an epoch's incomplete last batch is dropped).
        num_workers: DataLoader workers (each streams its own chunks).
        seed: litdata's shuffling seed.
        pin_memory: pin batches.
        worker_init_fn: called in each worker, as by ``DataLoader``.

    Returns:
        The :class:`litdata.StreamingDataLoader` (its ``state_dict`` is kept in checkpoints).

    Raises:
        ValueError: a training sample that is not an item of ``shards``.
    """
    item_to_clip = np.full(len(shards.index.labels), -1, dtype=np.int64)
    for clip_index in range(len(clips)):
        item_index = shards.item_index(clips.path(clip_index))
        if item_index is None:
            raise ValueError(f"{clips.path(clip_index)} is not an item of {shards.input_dir}")
        item_to_clip[item_index] = clip_index
    dataset = StreamingClipDataset(shards, clips, item_to_clip, shuffle=True, seed=seed)
    return StreamingDataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_shard_items,
        # Full batches only, as the file loader (BatchNorm needs >= 2 clips): litdata drops the
        # epoch's incomplete last batch (and equalises ranks under DDP).
        drop_last=True,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn,
    )
