"""ZeroShotDataModule: train on source classes, validate on held-out source classes, test on
target datasets whose classes were never trained on.

The class bookkeeping, done once in ``setup`` and identical on every rank:

1. Overlap removal: source classes whose name embedding lies within cosine distance
   ``overlap_tau`` of any target class name are dropped (``data_modules.protocol``).
2. Validation classes: a seeded ``val_fraction`` of the remaining source classes is held out
   from training; validation is zero-shot over them and picks checkpoints, so the test classes
   never influence model selection (the original code selected on the test sets).
3. Training classes: the rest. With ``gzsl``, a seeded ``gzsl_video_fraction`` of each training
   class's videos is held out too, as the seen-class test videos of the generalised sets.
4. Test sets: one :class:`~aurl.class_space.EvalSet` per target (plus one generalised set
   per target with ``gzsl``), in ``class_space.test_sets`` order, one test dataloader each.

DDP: training uses :class:`~data_modules.samplers.EpochShuffleSampler` (a different shard per
rank, reshuffled every epoch from ``seed``); evaluation uses
:class:`~data_modules.samplers.DistributedEvalSampler` (every video exactly once, no padding).
Both are ``DistributedSampler`` subclasses, so Lightning keeps them; ``Trainer(
use_distributed_sampler=False)`` is still the recommended setting. A
:class:`~data_modules.datasets.StreamingShards` source trains through litdata instead
(:mod:`data_modules.streaming`: shuffling, rank and worker sharding, mid-epoch resume), and its
held-out items are evaluated by index from the shards.

Resume: the training loader is a torchdata ``StatefulDataLoader`` (or litdata's
``StreamingDataLoader``) whose position the datamodule's ``state_dict`` puts in every
checkpoint, so a fit resumed from a mid-epoch checkpoint continues that epoch with the next
batch, as if it had not stopped.
"""

from __future__ import annotations

import logging
import os
import random
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader
from torchdata.stateful_dataloader import StatefulDataLoader

from aurl.class_space import ClassSpace, EvalSet
from aurl.text_encoders import ClassEmbeddingCache, TextEncoder
from data_modules.clip_dataset import VideoClipDataset, collate_skip
from data_modules.clip_sampling import create_clip_sampler
from data_modules.datasets import StreamingShards, VideoCatalog
from data_modules.protocol import (
    OverlapResult,
    gzsl_class_names,
    half_class_split_indices,
    remove_overlap,
)
from data_modules.samplers import DistributedEvalSampler, EpochShuffleSampler
from data_modules.transforms import create_transform

logger = logging.getLogger(__name__)

Samples = list[tuple[str, int]]


class _StatefulLoader(Protocol):
    """A training loader that saves and restores its position (torchdata's or litdata's)."""

    num_workers: int

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> None: ...


_Loader = TypeVar("_Loader", bound=_StatefulLoader)


class ZeroShotDataModule(LightningDataModule):
    """Streams clips for zero-shot training (source) and evaluation (targets).

    After ``setup`` its :class:`~aurl.class_space.ClassSpace` (``class_space``) names the
    training, validation and test classes, which the labels of the train, val and each test
    dataloader index; :class:`~aurl.module.AURLModule` receives it at its own ``setup``.

    Args:
        source: training catalog (e.g. ``Kinetics700`` or ``SyntheticActions(part="seen")``).
        targets: test catalogs, one evaluation set (and test dataloader) each.
        protocol: ``"full"`` (all target classes), ``"half"`` (the 10 seeded 50% class splits)
            or ``"both"`` (one set carrying the splits; full and half are scored from the same
            embeddings).
        val_fraction: fraction of the (overlap-free) source classes held out for validation.
        max_val_videos_per_class: cap on validation videos per class (seeded choice), to keep
            validation cheap on Kinetics; None uses every video.
        gzsl: also build a generalised zero-shot set per target: candidates are the training
            classes plus the target's, videos are held-out training videos plus the target's.
        gzsl_video_fraction: fraction of each training class's videos held out for ``gzsl``
            (at least one video when the class has two or more).
        gzsl_calibration_fraction: with ``gzsl`` and validation classes, a further fraction of
            each training class's videos (at least one, when three or more are left) held out
            to calibrate GZSL: with the validation videos as unseen they make the
            ``<source>_calibration`` set, on which the module chooses the calibrated-stacking
            offset gamma; 0 disables calibration.
        overlap_tau: cosine-distance threshold of overlap removal; 0 disables it.
        text_encoder: encoder of the class names for overlap removal (needed when tau > 0).
        overlap_report: TSV file listing every source class, kept/removed, its nearest target
            class and distance (written by rank 0).
        embedding_cache_dir: cache of the class-name embeddings of overlap removal (None:
            ``$AURL_CACHE_DIR`` or ``~/.cache/aurl/class_embeddings``, as ``AURLModule``'s).
        clip_len: frames per clip.
        frame_stride: step between the frames of a clip.
        train_clips: clips per training video.
        val_clips: clips per validation video.
        test_clips: clips per test video (1 or 25 in the paper).
        transform: ``"aurl"`` (plain resize), ``"aurl_crop"`` (plain resize, random resized
            crop in training) or ``"e2e"`` (short side + crop + flip).
        hflip: random left-right flips of training clips where the source catalog says what
            a mirrored video is (``VideoCatalog.mirror_class_name``): a class whose mirror is
            another training class takes that label, one whose mirror is not a training class
            is never flipped.
        size: output frame side.
        batch_size: training batch size per rank.
        eval_batch_size: validation/test batch size per rank (default ``batch_size``).
        num_workers: DataLoader worker processes per dataloader.
        seed: seeds the class split, the held-out videos, shuffling and per-item randomness;
            None follows ``seed_everything`` (its ``PL_GLOBAL_SEED``, else 0), so one seed
            varies the data with the model (``aurl`` fills it in from ``seed_everything``).
        pin_memory: pin batches for faster host-to-GPU copies.
        num_half_splits: number of 50% splits for protocols ``"half"``/``"both"``.
    """

    def __init__(
        self,
        source: VideoCatalog,
        targets: list[VideoCatalog],
        protocol: Literal["full", "half", "both"] = "full",
        val_fraction: float = 0.1,
        max_val_videos_per_class: int | None = None,
        gzsl: bool = False,
        gzsl_video_fraction: float = 0.2,
        gzsl_calibration_fraction: float = 0.1,
        overlap_tau: float = 0.05,
        text_encoder: TextEncoder | None = None,
        overlap_report: str | Path | None = None,
        embedding_cache_dir: str | None = None,
        clip_len: int = 16,
        frame_stride: int = 1,
        train_clips: int = 1,
        val_clips: int = 1,
        test_clips: int = 1,
        transform: Literal["aurl", "aurl_crop", "e2e"] = "aurl",
        hflip: bool = False,
        size: int = 112,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int | None = None,
        pin_memory: bool = False,
        num_half_splits: int = 10,
    ) -> None:
        super().__init__()
        # Clip settings travel in checkpoints (``aurl predict`` reads them); catalogs and the
        # encoder are objects outside LightningCLI and stay out, and the cache folder is the
        # module's hyperparameter (loggers refuse one name with two values).
        self.save_hyperparameters(
            ignore=["source", "targets", "text_encoder", "embedding_cache_dir"]
        )
        if protocol not in ("full", "half", "both"):
            raise ValueError(f"protocol must be 'full', 'half' or 'both', got {protocol!r}")
        if not targets:
            raise ValueError("ZeroShotDataModule needs at least one target catalog")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if gzsl and not 0.0 < gzsl_video_fraction < 1.0:
            raise ValueError(f"gzsl_video_fraction must be in (0, 1), got {gzsl_video_fraction}")
        if not 0.0 <= gzsl_calibration_fraction < 1.0:
            raise ValueError(
                f"gzsl_calibration_fraction must be in [0, 1), got {gzsl_calibration_fraction}"
            )
        if overlap_tau > 0 and text_encoder is None:
            raise ValueError("overlap_tau > 0 needs a text_encoder (or set overlap_tau=0)")
        self.source = source
        self.targets = list(targets)
        self.protocol = protocol
        self.val_fraction = val_fraction
        self.max_val_videos_per_class = max_val_videos_per_class
        self.gzsl = gzsl
        self.gzsl_video_fraction = gzsl_video_fraction
        self.gzsl_calibration_fraction = gzsl_calibration_fraction
        self.overlap_tau = overlap_tau
        self.text_encoder = text_encoder
        self.overlap_report = overlap_report
        self.embedding_cache = ClassEmbeddingCache(embedding_cache_dir)
        self.clip_len = clip_len
        self.frame_stride = frame_stride
        self.train_clips = train_clips
        self.val_clips = val_clips
        self.test_clips = test_clips
        self.transform = transform
        self.hflip = hflip
        self.size = size
        # Batches leave the loaders uint8; this transform's mean and std normalise them on the
        # device (on_after_batch_transfer). Building it here also checks the name early.
        self._eval_transform = create_transform(transform, train=False, size=size)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = global_seed() if seed is None else seed
        self.pin_memory = pin_memory
        self.num_half_splits = num_half_splits

        self.class_space: ClassSpace | None = None
        self.overlap: OverlapResult | None = None
        self.train_samples: Samples = []
        self.val_samples: Samples = []
        self.test_samples: list[Samples] = []
        self._is_set_up = False
        self._train_loader: _StatefulLoader | None = None
        self._train_loader_state: dict[str, Any] | None = None

    @property
    def _space(self) -> ClassSpace:
        if self.class_space is None:
            raise RuntimeError("ZeroShotDataModule.setup() has not run: no class space yet")
        return self.class_space

    def prepare_data(self) -> None:
        # Lightning runs this on one process per node before setup: generation happens once.
        for catalog in (self.source, *self.targets):
            catalog.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self._is_set_up:
            return
        _, rank = _world()
        source_names = self.source.class_names
        target_names = [name for t in self.targets for name in t.class_names]
        self.overlap = remove_overlap(
            source_names,
            target_names,
            self.text_encoder,
            self.overlap_tau,
            self.overlap_report if rank == 0 else None,
            self.embedding_cache,
        )
        kept = set(self.overlap.kept)
        candidates = [i for i, name in enumerate(source_names) if name in kept]
        val_classes, train_classes = self._split_classes(candidates)
        train_names = [source_names[i] for i in train_classes]
        val_names = [source_names[i] for i in val_classes]

        by_class: dict[int, list[str]] = defaultdict(list)
        for path, label in self.source.samples:
            by_class[label].append(path)
        self.val_samples = self._val_samples(val_classes, by_class)
        self.train_samples, gzsl_seen, calibration_seen = self._train_samples(
            train_classes, by_class
        )
        if not self.train_samples:
            raise ValueError(f"source {self.source.name}: no training videos left")

        test_sets: list[EvalSet] = []
        self.test_samples = []
        for target in self.targets:
            half = None
            if self.protocol != "full":
                if len(target.class_names) < 2:
                    raise ValueError(f"target {target.name}: the 50% protocol needs >= 2 classes")
                # The original splits sort the raw folder/label names, not the cleaned ones.
                half = half_class_split_indices(target.raw_class_names, self.num_half_splits)
            names = list(target.class_names)
            test_sets.append(
                EvalSet(
                    target.name,
                    names,
                    half,
                    None,
                    self.protocol != "half",
                    attributes=target.class_attributes(names),
                )
            )
            self.test_samples.append(list(target.samples))
        if self.gzsl:
            for target in self.targets:
                names, seen_mask = gzsl_class_names(train_names, target.class_names)
                offset = len(train_names)
                attributes = _joint_attributes(
                    self.source.class_attributes(train_names),
                    target.class_attributes(list(target.class_names)),
                )
                test_sets.append(
                    EvalSet(f"{target.name}_gzsl", names, None, seen_mask, attributes=attributes)
                )
                self.test_samples.append(gzsl_seen + [(p, y + offset) for p, y in target.samples])
        if calibration_seen:
            names = train_names + val_names
            offset = len(train_names)
            seen_mask = [True] * offset + [False] * len(val_names)
            test_sets.append(
                EvalSet(f"{self.source.name}_calibration", names, None, seen_mask, True, True)
            )
            self.test_samples.append(
                calibration_seen + [(p, y + offset) for p, y in self.val_samples]
            )
        set_names = [s.name for s in test_sets]
        if len(set(set_names)) != len(set_names):
            raise ValueError(f"target catalogs need distinct names, got {set_names}")
        self.class_space = ClassSpace(train_names, val_names, test_sets)
        self._is_set_up = True
        if rank == 0:
            self._log_summary()

    def _split_classes(self, candidates: list[int]) -> tuple[list[int], list[int]]:
        """Seeded held-out validation classes and the remaining training classes (source order)."""
        n = len(candidates)
        num_val = round(self.val_fraction * n)
        if self.val_fraction > 0:
            num_val = max(num_val, 1)
        if n - num_val < 1:
            raise ValueError(
                f"source {self.source.name}: {n} classes left after overlap removal, too few "
                f"to hold out val_fraction={self.val_fraction}"
            )
        chosen = set(np.random.RandomState(self.seed).permutation(n)[:num_val].tolist())
        val = [c for k, c in enumerate(candidates) if k in chosen]
        train = [c for k, c in enumerate(candidates) if k not in chosen]
        return val, train

    def _val_samples(self, val_classes: list[int], by_class: dict[int, list[str]]) -> Samples:
        rng = np.random.default_rng([self.seed, 1])
        samples = []
        for new_label, c in enumerate(val_classes):
            paths = by_class[c]
            cap = self.max_val_videos_per_class
            if cap is not None and len(paths) > cap:
                paths = [paths[i] for i in sorted(rng.choice(len(paths), cap, replace=False))]
            samples.extend((p, new_label) for p in paths)
        return samples

    def _train_samples(
        self, train_classes: list[int], by_class: dict[int, list[str]]
    ) -> tuple[Samples, Samples, Samples]:
        """Training samples and, with ``gzsl``, the held-out seen-class test samples and the
        held-out calibration samples (with validation classes only)."""
        rng = np.random.default_rng([self.seed, 2])
        calibration_rng = np.random.default_rng([self.seed, 3])
        calibrate = self.gzsl and self.gzsl_calibration_fraction > 0 and bool(self.val_samples)
        train, held_out, calibration = [], [], []
        for new_label, c in enumerate(train_classes):
            paths = by_class[c]
            num_held = 0
            if self.gzsl and len(paths) >= 2:
                num_held = min(
                    max(1, round(self.gzsl_video_fraction * len(paths))), len(paths) - 1
                )
            order = rng.permutation(len(paths))
            held = set(order[:num_held].tolist())
            rest = order[num_held:]
            calibration_held: set[int] = set()
            if calibrate and len(rest) >= 3:
                num_cal = max(1, round(self.gzsl_calibration_fraction * len(paths)))
                chosen = calibration_rng.permutation(len(rest))[: min(num_cal, len(rest) - 1)]
                calibration_held = set(rest[chosen].tolist())
            for k, path in enumerate(paths):
                if k in held:
                    held_out.append((path, new_label))
                elif k in calibration_held:
                    calibration.append((path, new_label))
                else:
                    train.append((path, new_label))
        return train, held_out, calibration

    def _log_summary(self) -> None:
        assert self.overlap is not None
        logger.info(
            "source %s: %d classes, %d removed by overlap (tau %g), %d validation classes "
            "(%d videos), %d training classes (%d videos)",
            self.source.name,
            len(self.source.class_names),
            len(self.overlap.removed),
            self.overlap_tau,
            len(self._space.val_classes),
            len(self.val_samples),
            len(self._space.train_classes),
            len(self.train_samples),
        )
        for eval_set, samples in zip(self._space.test_sets, self.test_samples, strict=True):
            logger.info(
                "test set %s: %d classes, %d videos, protocol %s%s",
                eval_set.name,
                len(eval_set.class_names),
                len(samples),
                "gzsl" if eval_set.seen_mask is not None else self.protocol,
                f" ({sum(eval_set.seen_mask)} seen)" if eval_set.seen_mask is not None else "",
            )

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turns a moved batch's uint8 clips ``(B, [K,] T, H, W, 3)`` into the model's float
        input ``(B, [K,] C, T, H, W)``, normalised on the device: a quarter of float32's bytes
        cross to it. Lightning calls this hook of the datamodule in every stage."""
        if isinstance(batch, dict) and "video" in batch:
            batch["video"] = self._eval_transform.to_model_input(batch["video"])
        return batch

    # --- dataloaders -------------------------------------------------------------------------
    def train_dataloader(self) -> DataLoader:
        world, rank = _world()
        dataset = VideoClipDataset(
            self.train_samples,
            self._space.train_classes,
            create_clip_sampler("random", self.clip_len, self.train_clips, self.frame_stride),
            create_transform(self.transform, train=True, size=self.size),
            seed=self.seed,
            flip_labels=self.train_flip_labels() if self.hflip else None,
        )
        if isinstance(self.source, StreamingShards):
            return self._streaming_train_loader(dataset, world, rank)
        sampler = EpochShuffleSampler(dataset, world, rank, seed=self.seed)
        if len(sampler) < self.batch_size:
            raise ValueError(
                f"{len(sampler)} training videos per rank, fewer than batch_size="
                f"{self.batch_size}: every batch would be dropped"
            )
        return self._loader(
            dataset, sampler, self.batch_size, rank, drop_last=True, persist=True, lazy=True
        )

    def _streaming_train_loader(
        self, clips: VideoClipDataset, world: int, rank: int
    ) -> DataLoader:
        # litdata (an optional dependency) shuffles, shards and checkpoints this loader; the
        # clips' dataset decodes each streamed item as it would decode the item's file.
        from data_modules.streaming import streaming_train_loader

        assert isinstance(self.source, StreamingShards)
        if len(self.train_samples) // world < self.batch_size:
            raise ValueError(
                f"{len(self.train_samples)} training videos over {world} rank(s), fewer than "
                f"batch_size={self.batch_size} per rank"
            )
        loader = streaming_train_loader(
            self.source,
            clips,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            seed=self.seed,
            pin_memory=self.pin_memory,
            worker_init_fn=partial(seed_worker, seed=self.seed, rank=rank),
        )
        return self._track_train_loader(loader)

    def train_flip_labels(self) -> list[int]:
        """For each training label, the label of its mirrored videos (-1: never flipped)."""
        index = {name: label for label, name in enumerate(self._space.train_classes)}
        mirrors = [self.source.mirror_class_name(name) for name in self._space.train_classes]
        return [-1 if m is None else index.get(m, -1) for m in mirrors]

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if not self.val_samples:
            return []
        return self._eval_loader(self.val_samples, self._space.val_classes, self.val_clips, True)

    def test_dataloader(self) -> list[DataLoader]:
        return [
            self._eval_loader(samples, eval_set.class_names, self.test_clips, False)
            for eval_set, samples in zip(self._space.test_sets, self.test_samples, strict=True)
        ]

    def _eval_loader(
        self, samples: Samples, class_names: list[str], num_clips: int, persist: bool
    ) -> DataLoader:
        world, rank = _world()
        args = (
            samples,
            class_names,
            create_clip_sampler("uniform", self.clip_len, num_clips, self.frame_stride),
            create_transform(self.transform, train=False, size=self.size),
        )
        shards = [c for c in (self.source, *self.targets) if isinstance(c, StreamingShards)]
        if shards:
            # Items of shard catalogs (held-out source items, shard targets) are read by index.
            from data_modules.streaming import ShardClipDataset

            dataset = ShardClipDataset(shards, *args, seed=self.seed)
        else:
            dataset = VideoClipDataset(*args, seed=self.seed)
        sampler = DistributedEvalSampler(len(dataset), world, rank)
        return self._loader(dataset, sampler, self.eval_batch_size, rank, False, persist)

    def _loader(
        self,
        dataset: VideoClipDataset,
        sampler: torch.utils.data.Sampler,
        batch_size: int,
        rank: int,
        drop_last: bool,
        persist: bool,
        lazy: bool = False,
    ) -> DataLoader:
        options: dict[str, Any] = {}
        if lazy:  # the training loader, resumable mid-epoch
            # A snapshot at every batch: a restored loader never re-reads batches to get back
            # to its position (the sampler skips their indices instead).
            options["snapshot_every_n_steps"] = 1
        loader = (LazyIterDataLoader if lazy else DataLoader)(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_skip,
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            worker_init_fn=partial(seed_worker, seed=self.seed, rank=rank),
            # DataLoader draws its workers' base seed at every new iterator (seed_worker then
            # reseeds them); from the global generator, that draw would shift dropout whenever
            # iterators are made at other times, as when a run resumes with persistent workers.
            generator=torch.Generator().manual_seed(self.seed),
            # Persistent workers are started once, not at every epoch.
            persistent_workers=persist and self.num_workers > 0,
            **options,
        )
        return self._track_train_loader(loader) if lazy else loader

    def _track_train_loader(self, loader: _Loader) -> _Loader:
        """Keeps the training loader for :meth:`state_dict`, restoring a checkpoint's position."""
        self._train_loader = loader
        if self._train_loader_state is not None:
            self._restore_position(loader, self._train_loader_state)
            self._train_loader_state = None
        return loader

    def _restore_position(self, loader: _StatefulLoader, state: dict[str, Any]) -> None:
        # torchdata and litdata restore a position only with the number of workers it was
        # taken with.
        if state.get("num_workers") != self.num_workers:
            logger.warning(
                "the checkpoint's training loader ran %d workers, this run %d: if it was taken "
                "in the middle of an epoch, that epoch restarts its order (keep "
                "data.num_workers to resume it exactly)",
                state.get("num_workers"),
                self.num_workers,
            )
            return
        loader.load_state_dict(state["loader"])

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position, which Lightning keeps in every checkpoint.

        Lightning saves a stateful training loader's state itself, but does not restore it
        when ``configure_optimizers`` has asked for ``estimated_stepping_batches`` before
        (Lightning-AI/pytorch-lightning#20550), as :func:`aurl.optim.planned_steps` does. The
        datamodule's state is restored before the loader is built, so this one always is.
        """
        if self._train_loader is None:
            return {}
        loader = self._train_loader
        return {"train_loader": {"loader": loader.state_dict(), "num_workers": loader.num_workers}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keeps the training loader's position for the next ``train_dataloader``."""
        self._train_loader_state = state_dict.get("train_loader")


class LazyIterDataLoader(StatefulDataLoader):
    """The training loader: resumable mid-epoch, and its iterator starts at the first batch.

    A torchdata ``StatefulDataLoader``: its ``state_dict`` (which holds the
    :class:`~data_modules.samplers.EpochShuffleSampler`'s, paired with the batches handed out)
    goes into checkpoints, and a run resumed from one continues the epoch with the next batch;
    the batches before it are skipped as indices, never read.

    A DataLoader with workers draws its sampler's indices as soon as ``iter()`` is called.
    Lightning calls it before it sets the epoch of the first epoch of a resumed fit (in
    ``FitLoop.setup_data``, also reached through ``Trainer.estimated_stepping_batches``), so that
    epoch would replay epoch 0's order and clips (Lightning >= 2.5.3,
    Lightning-AI/pytorch-lightning#21938). Started at the first ``next()``, the iterator sees
    the epoch that ``set_epoch`` gave the sampler by then, and a restored position applies to
    that epoch.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            # torchdata 0.11 calls torch.set_vital, which torch deprecates: not ours to act on.
            warnings.filterwarnings("ignore", "'set_vital' is deprecated", UserWarning)
            super().__init__(*args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        return _LazyIterator(super().__iter__)

    def state_dict(self) -> dict[str, Any]:
        # Before the first batch there is no position to keep, and StatefulDataLoader would
        # start an iterator (workers, indices) for its initial state before the epoch is set.
        if self._iterator is None:
            return {}
        return super().state_dict()


class _LazyIterator:
    def __init__(self, start: Callable[[], Iterator[Any]]) -> None:
        self._start = start
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> _LazyIterator:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._start()
        return next(self._iterator)


def _joint_attributes(
    seen: dict[str, list[str]] | None, unseen: dict[str, list[str]] | None
) -> dict[str, list[str]] | None:
    """Attributes of the seen classes followed by the unseen ones', when both catalogs describe
    the same attributes (each catalog describes only its own classes)."""
    if seen is None or unseen is None or set(seen) != set(unseen):
        return None
    return {name: seen[name] + unseen[name] for name in seen}


def global_seed() -> int:
    """The seed of the last ``lightning.seed_everything`` (``PL_GLOBAL_SEED``), else 0."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value else 0


def seed_worker(worker_id: int, seed: int, rank: int) -> None:
    """Seeds ``random``, ``numpy`` and ``torch`` in a DataLoader worker from (seed, rank, id).

    Items draw their own randomness from (seed, epoch, index) (``VideoClipDataset``); this
    covers any other code that uses the global generators inside the worker.
    """
    state = np.random.SeedSequence([seed, rank, worker_id]).generate_state(2, np.uint32)
    random.seed(int(state[0]))
    np.random.seed(int(state[1]))
    torch.manual_seed(int(state[0]) << 32 | int(state[1]))


def _world() -> tuple[int, int]:
    """(world size, rank) of the initialised process group, else (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0
