"""Clips from litdata shards: the training stream and random access for evaluation.

Training goes through litdata: :class:`StreamingClipDataset` is a ``StreamingDataset`` whose
items are decoded in memory by :meth:`VideoClipDataset.load
<data_modules.clip_dataset.VideoClipDataset.load>`, so clip sampling, transform, flips and the
per-item generator seeded by ``(seed, epoch, training index)`` are those of the file reader.
litdata shuffles chunks and items from ``seed`` and its epoch, gives each DDP rank (from
``torch.distributed`` or ``WORLD_SIZE``/``GLOBAL_RANK``) and each worker its own chunks, and
:class:`litdata.StreamingDataLoader` has ``state_dict``/``load_state_dict``, which Lightning's
fit loop saves in every checkpoint and restores, so a run resumes mid-epoch exactly where it
stopped (with the same world size, workers and batch size; litdata restripes otherwise).

Only the datamodule's training items are trained on: items of validation classes, of classes
removed for overlap and held-out GZSL videos give a dropped marker that
:func:`collate_shard_items` removes, without their bytes being read or decoded. litdata's unit
of download is the chunk, so a remote chunk is still fetched when it holds any item; and a
batch holds ``batch_size`` shard items minus the dropped ones, so batches are smaller by the
dropped share (every item still counts once for litdata, which keeps resume exact).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from data_modules.clip_dataset import VideoClipDataset, _Items, collate_skip
from data_modules.datasets.streaming_shards import StreamingShards
from data_modules.shards import allow_plain_http
from data_modules.video_reader import EncodedVideo

logger = logging.getLogger(__name__)


class DroppedItem(NamedTuple):
    """A shard item that gives no clip.

    Attributes:
        sample_id: the item's identifier (``StreamingShards.sample_id``).
        unreadable: True for a video that cannot be decoded (counted as skipped), False for an
            item that is not a training item (dropped silently).
    """

    sample_id: str
    unreadable: bool


class StreamingClipDataset(StreamingDataset):
    """Training clips streamed from a :class:`StreamingShards` folder (see the module docstring).

    Args:
        shards: the shard catalog.
        clips: the training dataset over the training samples (shard identifiers and training
            labels), whose :meth:`~VideoClipDataset.load` makes an item.
        item_to_clip: for each shard item, its index in ``clips``, or -1 (not trained on).
        shuffle: shuffle chunks and items, differently every epoch.
        seed: litdata's shuffling seed.
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
        )
        item_to_clip = np.asarray(item_to_clip, dtype=np.int64)
        if len(item_to_clip) != len(shards.index.labels):
            raise ValueError(
                f"{shards.input_dir}: item_to_clip has {len(item_to_clip)} entries for "
                f"{len(shards.index.labels)} shard items"
            )
        self.shards = shards
        self.clips = clips
        self.item_to_clip = item_to_clip

    def __iter__(self) -> StreamingClipDataset:
        allow_plain_http(self.shards.storage_options)  # again in spawned workers
        iterator = super().__iter__()
        # litdata counts epochs from 1 (its loader's first __iter__); items are seeded like the
        # file reader's, which counts them from 0 like Lightning.
        self.clips.set_epoch(self.current_epoch - 1)
        return iterator

    def __getitem__(self, index: ChunkedIndex | int) -> dict[str, Any] | DroppedItem | None:
        item_index = index.index if isinstance(index, ChunkedIndex) else int(index)
        clip_index = int(self.item_to_clip[item_index])
        if clip_index < 0:
            return DroppedItem(self.shards.sample_id(item_index), unreadable=False)
        source = read_shard_item(self.shards, item_index, super().__getitem__(index))
        item = self.clips.load(clip_index, source)
        if item is None:
            return DroppedItem(self.shards.sample_id(item_index), unreadable=True)
        return item


class ShardClipDataset(VideoClipDataset):
    """A :class:`VideoClipDataset` whose samples may be shard items, read by index.

    Samples whose path is a sample identifier of ``shards`` are read from the shards (litdata's
    random access: the item's chunk is downloaded to the cache), all others from their files,
    so one evaluation set can mix held-out source items with a target's files.

    Args:
        shards: the shard catalog.
        *args: the arguments of :class:`VideoClipDataset`.
        **kwargs: the keyword arguments of :class:`VideoClipDataset`.
    """

    def __init__(self, shards: StreamingShards, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shards = shards
        self._stream: StreamingDataset | None = None

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        item_index = self.shards.item_index(self._path(index))
        if item_index is None:
            return super().__getitem__(index)
        if self._stream is None:
            # Made on first use, inside the worker that reads.
            allow_plain_http(self.shards.storage_options)
            self._stream = StreamingDataset(
                self.shards.input_dir,
                cache_dir=self.shards.cache_dir,
                storage_options=self.shards.storage_options,
                max_cache_size=self.shards.max_cache_size,
            )
        return self.load(index, read_shard_item(self.shards, item_index, self._stream[item_index]))


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


def collate_shard_items(batch: Sequence[dict[str, Any] | DroppedItem]) -> dict[str, Any]:
    """Collates streamed items: drops the non-training ones, reports the unreadable ones.

    Returns:
        :func:`~data_modules.clip_dataset.collate_skip`'s batch; ``skipped`` lists the
        identifiers of the unreadable items. A batch of dropped items only is empty
        (``video.shape[0] == 0``).
    """
    items = _Items(item for item in batch if not isinstance(item, DroppedItem))
    items.skipped = [d.sample_id for d in batch if isinstance(d, DroppedItem) and d.unreadable]
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
        batch_size: shard items per batch (fewer clips where items are dropped).
        num_workers: DataLoader workers (each streams its own chunks).
        seed: litdata's shuffling seed.
        pin_memory: pin batches.
        worker_init_fn: called in each worker, as by ``DataLoader``.

    Returns:
        The :class:`litdata.StreamingDataLoader` (Lightning checkpoints its ``state_dict``).

    Raises:
        ValueError: a training sample that is not an item of ``shards``.
    """
    item_to_clip = np.full(len(shards.index.labels), -1, dtype=np.int64)
    for clip_index in range(len(clips)):
        item_index = shards.item_index(clips._path(clip_index))
        if item_index is None:
            raise ValueError(f"{clips._path(clip_index)} is not an item of {shards.input_dir}")
        item_to_clip[item_index] = clip_index
    dataset = StreamingClipDataset(shards, clips, item_to_clip, shuffle=True, seed=seed)
    return StreamingDataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_shard_items,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn,
    )
