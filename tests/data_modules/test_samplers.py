"""DDP samplers: exact evaluation shards and per-epoch training shuffles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from data_modules.clip_dataset import VideoClipDataset, collate_skip
from data_modules.clip_sampling import create_clip_sampler
from data_modules.samplers import DistributedEvalSampler, EpochShuffleSampler
from data_modules.transforms import create_transform
from data_modules.video_writer import write_video


class _Numbers(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n
        self.epochs: list[int] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        return index

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("n", [0, 1, 2, 5, 7, 10, 101])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
def test_eval_shards_cover_every_index_once(n: int, replicas: int, contiguous: bool) -> None:
    shards = [
        list(DistributedEvalSampler(n, replicas, rank, contiguous)) for rank in range(replicas)
    ]
    assert sorted(i for shard in shards for i in shard) == list(range(n))
    sizes = [len(s) for s in shards]
    assert sizes == [
        len(DistributedEvalSampler(n, replicas, r, contiguous)) for r in range(replicas)
    ]
    assert max(sizes) - min(sizes) <= 1
    if contiguous:
        assert [i for shard in shards for i in shard] == list(range(n))
    else:
        assert shards == [list(range(r, n, replicas)) for r in range(replicas)]


def test_eval_shards_are_uneven_without_padding() -> None:
    assert list(DistributedEvalSampler(7, 2, 0)) == [0, 2, 4, 6]
    assert list(DistributedEvalSampler(7, 2, 1)) == [1, 3, 5]
    assert list(DistributedEvalSampler(7, 2, 0, contiguous=True)) == [0, 1, 2, 3]
    assert list(DistributedEvalSampler(7, 2, 1, contiguous=True)) == [4, 5, 6]
    # The stock sampler pads rank 1 with a repeat of index 0: a test video counted twice.
    assert list(DistributedSampler(range(7), 2, 1, shuffle=False)) == [1, 3, 5, 0]


def test_samplers_are_distributed_samplers_so_lightning_keeps_them() -> None:
    assert isinstance(DistributedEvalSampler(3, 2, 0), DistributedSampler)
    assert isinstance(EpochShuffleSampler(_Numbers(3), 2, 0), DistributedSampler)


def test_eval_sampler_rejects_bad_ranks() -> None:
    with pytest.raises(ValueError):
        DistributedEvalSampler(5, 2, 2)
    with pytest.raises(ValueError):
        DistributedEvalSampler(-1, 1, 0)


def test_training_shards_reshuffle_per_epoch_and_reach_the_dataset() -> None:
    dataset = _Numbers(20)
    samplers = [EpochShuffleSampler(dataset, 2, rank, seed=7) for rank in range(2)]
    orders = []
    for epoch in range(3):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        shards = [list(s) for s in samplers]
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(20))
        orders.append(shards)
    assert orders[0] != orders[1] != orders[2]
    assert dataset.epochs == [0, 0, 1, 1, 2, 2]
    # The order of an epoch depends on (seed, epoch) only: a fresh sampler repeats it.
    again = EpochShuffleSampler(_Numbers(20), 2, 1, seed=7)
    again.set_epoch(1)
    assert list(again) == orders[1][1]
    # Independent reference: the permutation that torch draws from seed + epoch.
    generator = torch.Generator().manual_seed(7 + 1)
    assert orders[1][0] == torch.randperm(20, generator=generator).tolist()[0::2]


def test_training_sampler_resumes_its_epoch_where_the_state_was_taken() -> None:
    sampler = EpochShuffleSampler(_Numbers(10), 2, 1, seed=3)
    sampler.set_epoch(4)
    order = list(sampler)
    assert sampler.state_dict() == {"epoch": 4, "yielded": 5}
    passing = iter(sampler)
    assert [next(passing) for _ in range(2)] == order[:2]
    state = sampler.state_dict()
    assert state == {"epoch": 4, "yielded": 2}

    resumed = EpochShuffleSampler(_Numbers(10), 2, 1, seed=3)
    resumed.load_state_dict(state)
    resumed.set_epoch(4)
    assert list(resumed) == order[2:]
    assert resumed.state_dict() == {"epoch": 4, "yielded": 5}
    assert list(resumed) == order  # the skip applies to one pass only
    # The state of a finished epoch does not shorten the next one.
    later = EpochShuffleSampler(_Numbers(10), 2, 1, seed=3)
    later.load_state_dict({"epoch": 4, "yielded": 5})
    later.set_epoch(5)
    fresh = EpochShuffleSampler(_Numbers(10), 2, 1, seed=3)
    fresh.set_epoch(5)
    assert list(later) == list(fresh) and len(list(fresh)) == 5


@pytest.mark.parametrize("state", [{}, {"epoch": 0}, {"epoch": 0, "yielded": 6}])
def test_training_sampler_rejects_a_state_it_cannot_resume(state: dict) -> None:
    sampler = EpochShuffleSampler(_Numbers(10), 2, 0)
    with pytest.raises(ValueError, match="EpochShuffleSampler state"):
        sampler.load_state_dict(state)


def test_two_ranks_read_every_video_once(tmp_path: Path) -> None:
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    source = write_video(tmp_path / "src.mp4", frames, fps=8)
    samples = []
    for i in range(7):
        path = tmp_path / f"{i}.mp4"
        path.write_bytes(source.read_bytes())
        samples.append((str(path), i % 3))
    paths = []
    for rank in range(2):
        dataset = VideoClipDataset(
            samples,
            ["a", "b", "c"],
            create_clip_sampler("uniform", clip_len=4),
            create_transform("aurl", train=False, size=32),
        )
        sampler = DistributedEvalSampler(len(dataset), num_replicas=2, rank=rank)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, collate_fn=collate_skip)
        rank_paths = [p for batch in loader for p in batch["path"]]
        assert len(rank_paths) == (4 if rank == 0 else 3)
        paths += rank_paths
    assert sorted(paths) == sorted(p for p, _ in samples)
