"""Samplers for DDP: per-epoch shuffled training shards and exact, unpadded evaluation shards.

Both samplers subclass :class:`~torch.utils.data.distributed.DistributedSampler` so that Lightning
keeps them as they are whatever ``Trainer(use_distributed_sampler=...)`` says (it only injects
its own sampler into dataloaders whose sampler is not a ``DistributedSampler``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler


class EpochShuffleSampler(DistributedSampler):
    """Training sampler: a different shard per rank, reshuffled every epoch from ``seed``.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a run (or a resumed run) is
    reproducible. ``set_epoch`` is forwarded to the dataset when it has one, so per-item
    randomness (clip start, crop, flip) changes with the epoch too; Lightning calls
    ``set_epoch`` on the sampler at the start of every training epoch.

    Resumable mid-epoch: ``state_dict`` records the epoch and how many indices the current
    pass has yielded, and after ``load_state_dict`` the next pass of that same epoch skips
    them (indices only: nothing is read). A pass of another epoch starts from its beginning,
    so the state of a finished epoch never shortens the next one. ``StatefulDataLoader``
    snapshots this state as it hands out indices and pairs it with the batches it yields.

    Args:
        dataset: the training dataset (only its length is used, plus ``set_epoch`` if present).
        num_replicas: number of ranks (1 without DDP).
        rank: this rank, in ``[0, num_replicas)``.
        seed: shuffling seed, shared by all ranks.
        drop_last: drop the tail so shards are even instead of padding with repeated indices
            (padding repeats a few training videos per epoch, which is harmless for training).
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=True,
            seed=seed,
            drop_last=drop_last,
        )
        self._yielded = 0
        self._resume: tuple[int, int] | None = None  # (epoch, indices to skip)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        set_dataset_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_dataset_epoch):
            set_dataset_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1]
        self._resume = None
        self._yielded = skip
        for index in indices[skip:]:
            self._yielded += 1
            yield index

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "yielded"}``: the epoch and the indices its current pass has yielded."""
        return {"epoch": self.epoch, "yielded": self._yielded}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Makes the next pass skip the indices ``state_dict`` says were yielded, if it is a
        pass of the same epoch.

        Raises:
            ValueError: the state lacks ``epoch`` or ``yielded``, or they are out of range.
        """
        epoch, yielded = state_dict.get("epoch"), state_dict.get("yielded")
        if not isinstance(epoch, int) or not isinstance(yielded, int):
            raise ValueError(
                f"EpochShuffleSampler state needs integer 'epoch' and 'yielded', got {state_dict}"
            )
        if not 0 <= yielded <= self.num_samples:
            raise ValueError(
                f"EpochShuffleSampler state: yielded={yielded} outside [0, {self.num_samples}] "
                "(a checkpoint of another dataset or number of ranks?)"
            )
        self._resume = (epoch, yielded)


class DistributedEvalSampler(DistributedSampler):
    """Evaluation sampler: every index exactly once across ranks, no padding, uneven shards.

    ``DistributedSampler`` pads the last shard with repeated indices so that all ranks get the
    same number of samples, which counts some test videos twice. Here the shards partition
    ``range(dataset_len)``: ranks may differ by one sample (strided) or more (contiguous), so
    evaluation code must not run a collective per batch; gather results once at epoch end.

    Args:
        dataset_len: number of samples to shard.
        num_replicas: number of ranks.
        rank: this rank, in ``[0, num_replicas)``.
        contiguous: give rank ``r`` one contiguous block (keeps file order, good for caching)
            instead of the strided ``r, r + R, r + 2R, ...`` (balanced to within one sample).
    """

    def __init__(
        self, dataset_len: int, num_replicas: int = 1, rank: int = 0, contiguous: bool = False
    ) -> None:
        if dataset_len < 0:
            raise ValueError(f"dataset_len must be >= 0, got {dataset_len}")
        # DistributedSampler only needs a Sized dataset; it validates num_replicas and rank.
        super().__init__(_Length(dataset_len), num_replicas=num_replicas, rank=rank, shuffle=False)
        self.contiguous = contiguous
        self.total_size = dataset_len
        self.indices = self._shard(dataset_len)
        self.num_samples = len(self.indices)

    def _shard(self, n: int) -> list[int]:
        if not self.contiguous:
            return list(range(self.rank, n, self.num_replicas))
        # The first n % R ranks get one extra sample, like numpy.array_split.
        base, extra = divmod(n, self.num_replicas)
        start = self.rank * base + min(self.rank, extra)
        return list(range(start, start + base + (self.rank < extra)))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples


class _Length(Sized):
    """A stand-in dataset of a given length for the ``DistributedSampler`` constructor."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n
