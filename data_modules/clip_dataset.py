"""VideoClipDataset: catalog samples in, decoded and shaped uint8 clips out; and its collate."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from data_modules.transforms import VideoTransform
from data_modules.video_reader import VideoDecodeError, VideoSource, read_sampled_clips

logger = logging.getLogger(__name__)

# Stands in for the path of a skipped item when the batch did not come through __getitems__.
UNKNOWN_PATH = "<unknown>"


class VideoClipDataset(Dataset):
    """Reads clips of listed videos: items ``{"video", "label", "class_name", "path"}``.

    Each item opens its file (inside the DataLoader worker), probes the frame count, asks the
    clip sampler for K clips and the transform for each clip's plan, and decodes them at the
    planned size (:func:`load_item`). ``video`` is uint8 ``(T, H, W, 3)`` for K = 1 and
    ``(K, T, H, W, 3)`` otherwise; :func:`~data_modules.transforms.to_model_input` makes the
    model's float input of a batch on the device. Randomness (clip start, crop, flip) comes
    from a generator seeded by ``(seed, epoch, index)``: a run is reproducible whatever the
    number of workers, items differ between workers and ranks, and ``set_epoch`` changes them
    every epoch (the epoch lives in shared memory, so persistent workers see it too).

    A video that cannot be decoded gives ``None`` after a warning naming the file and the
    reason; :func:`collate_skip` drops it and reports its path in the batch's ``"skipped"``. The
    warning comes once per file and dataset: the "warned" flags live in shared memory, so all
    DataLoader workers (persistent or not) share them; each DDP rank has its own dataset, so a
    file may be reported once per rank.

    Args:
        samples: ``(path, label)`` pairs.
        class_names: names that labels index (``item["class_name"]``).
        clip_sampler: ``(num_frames, rng: random.Random) -> list[ClipInfo]``.
        transform: plans each clip's scale, crop and flip (``transform.plan(height, width,
            rng)``), e.g. ``data_modules.transforms.create_transform(...)``.
        seed: base seed of the per-item generators.
        thread_type: decoder threading for ``read_sampled_clips`` (None: one thread; DataLoader
            workers supply the parallelism).
        flip_labels: enables random left-right flips (probability 0.5): ``flip_labels[y]`` is
            the label of a mirrored video of class ``y`` (``y`` itself for a symmetric class,
            another label where mirroring swaps the class), or -1 where the mirror is not a
            class of this dataset (never flipped). None: no flips.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        class_names: Sequence[str],
        clip_sampler: Callable[[int, random.Random], Sequence[Any]],
        transform: VideoTransform,
        seed: int = 0,
        thread_type: str | None = None,
        flip_labels: Sequence[int] | None = None,
    ) -> None:
        samples = [(str(p), int(y)) for p, y in samples]
        self.class_names = list(class_names)
        _check_labels(samples, len(self.class_names), "VideoClipDataset")
        if flip_labels is not None:
            flip_labels = [int(y) for y in flip_labels]
            if len(flip_labels) != len(self.class_names) or not all(
                -1 <= y < len(self.class_names) for y in flip_labels
            ):
                raise ValueError(
                    f"flip_labels needs one label in [-1, {len(self.class_names)}) per class, "
                    f"got {flip_labels}"
                )
        self.flip_labels = flip_labels
        # numpy arrays, not a list of tuples: reading Python objects in forked workers touches
        # their reference counts and copies the pages, which grows by GBs on Kinetics.
        self._paths = np.array([p.encode() for p, _ in samples], dtype=np.bytes_)
        self._labels = np.array([y for _, y in samples], dtype=np.int64)
        self.clip_sampler = clip_sampler
        self.transform = transform
        self.seed = seed
        self.thread_type = thread_type
        # One byte per item, shared with the workers like the epoch.
        self._warned = torch.zeros(len(samples), dtype=torch.bool).share_memory_()
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        """The epoch that seeds per-item randomness."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch that seeds per-item randomness (called by the training sampler)."""
        self._epoch.fill_(epoch)

    def item_seed(self, index: int) -> int:
        """The 64-bit seed of item ``index`` in the current epoch."""
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)
        return int(state[0])

    def __len__(self) -> int:
        return len(self._labels)

    def path(self, index: int) -> str:
        """The path (or shard sample identifier) of item ``index``."""
        return self._paths[index].decode()

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        return self.load(index, self.path(index))

    def load(self, index: int, source: VideoSource) -> dict[str, Any] | None:
        """Item ``index`` read from ``source``: its file, or its bytes held in memory (e.g. a
        litdata shard item); the clips, transform and randomness are those of ``self[index]``."""
        path, label = self.path(index), int(self._labels[index])
        try:
            video, label = load_item(
                source,
                label,
                random.Random(self.item_seed(index)),
                self.clip_sampler,
                self.transform,
                self.flip_labels,
                self.thread_type,
            )
        except VideoDecodeError as error:
            self._skip(index, path, error.reason)
            return None
        return {
            "video": video,
            "label": label,
            "class_name": self.class_names[label],
            "path": path,
        }

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any] | None]:
        # DataLoader fetches a batch through this method, so the paths of skipped items reach
        # collate_skip (in the same worker) although __getitem__ returns a bare None for them.
        items = ItemsWithSkipped(self[i] for i in indices)
        items.skipped = [
            self.path(i) for i, item in zip(indices, items, strict=True) if item is None
        ]
        return items

    def _skip(self, index: int, path: str, reason: str) -> None:
        # No lock: two workers read one item at once only when a DDP sampler pads an epoch with
        # repeated items, and then the cost is a second warning.
        if not self._warned[index]:
            self._warned[index] = True
            logger.warning("skipping unreadable video %s: %s", path, reason)


def load_item(
    source: VideoSource,
    label: int,
    rng: random.Random,
    clip_sampler: Callable[[int, random.Random], Sequence[Any]],
    transform: VideoTransform,
    flip_labels: Sequence[int] | None = None,
    thread_type: str | None = None,
) -> tuple[Tensor, int]:
    """Reads one item's clips: sampled, planned and decoded at the planned size, maybe mirrored.

    ``rng`` draws, in this order: the clip starts (``clip_sampler``), each clip's crop and flip
    (``transform.plan``), then the item's mirror (with ``flip_labels``); this is the order of
    the float pipeline this replaces, so a seed gives the same frames, boxes and flips.

    Args:
        source: the video file, or its bytes (:class:`~data_modules.video_reader.EncodedVideo`).
        label: the item's label.
        rng: the item's random generator.
        clip_sampler: ``(num_frames, rng) -> list[ClipInfo]`` (K clips).
        transform: plans each clip (``transform.plan(height, width, rng)``).
        flip_labels: mirror labels as in :class:`VideoClipDataset`; None: never mirrored.
        thread_type: decoder threading (None: one thread).

    Returns:
        uint8 ``(T, size, size, 3)`` for K = 1, else ``(K, T, size, size, 3)``, and the label
        (the mirrored class's when the item was mirrored).

    Raises:
        VideoDecodeError: the video cannot be read.
    """
    frames = read_sampled_clips(
        source,
        lambda info: [c.frame_indices for c in clip_sampler(info.num_frames, rng)],
        thread_type,
        plan_clip=lambda info: transform.plan(info.height, info.width, rng),
    )
    video = frames[0] if len(frames) == 1 else torch.stack(frames)  # (K, T, H, W, 3)
    if flip_labels is not None and rng.random() < 0.5 and flip_labels[label] >= 0:
        video, label = video.flip(-2), flip_labels[label]  # mirrored W axis
    return video, label


class ItemsWithSkipped(list):
    """A fetched batch that also carries the paths of its skipped items (``skipped``), for
    :func:`collate_skip`."""

    skipped: list[str]


def collate_skip(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Collates dataset items, dropping the ``None`` of unreadable videos.

    Returns:
        The default-collated dict (``video`` uint8 (B, T, H, W, 3) or (B, K, T, H, W, 3),
        ``label`` (B,) long, ``class_name`` and ``path`` lists) plus ``skipped``: the paths of
        the dropped items (``"<unknown>"`` for items that did not come through
        ``VideoClipDataset.__getitems__``). When every item was dropped, ``video`` is an empty
        uint8 tensor of shape ``(0,)`` and ``label`` an empty long tensor.
    """
    skipped = list(getattr(batch, "skipped", []))
    num_none = sum(item is None for item in batch)
    skipped += [UNKNOWN_PATH] * (num_none - len(skipped))
    items = [item for item in batch if item is not None]
    if not items:
        return {
            "video": torch.empty(0, dtype=torch.uint8),
            "label": torch.empty(0, dtype=torch.long),
            "class_name": [],
            "path": [],
            "skipped": skipped,
        }
    collated = default_collate(items)
    collated["skipped"] = skipped
    return collated


def _check_labels(samples: Sequence[tuple[str, int]], num_classes: int, where: str) -> None:
    bad = next(((p, y) for p, y in samples if not 0 <= y < num_classes), None)
    if bad is not None:
        raise ValueError(f"{where}: label {bad[1]} of {bad[0]} outside [0, {num_classes})")
