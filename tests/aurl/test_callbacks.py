"""The reliability callbacks' own rules (their effect on training: tests/test_reliability.py)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from aurl.callbacks import RandomStateCheckpoint
from aurl.callbacks.plots import EMBEDDING_TABLE_COLUMNS, embedding_table_rows
from aurl.functional import EvalResult


def _draws() -> tuple[float, float, float]:
    return torch.rand(()).item(), float(np.random.rand()), random.random()


@pytest.mark.parametrize("stage", [TrainerFn.FITTING, TrainerFn.TESTING, TrainerFn.VALIDATING])
def test_random_states_are_restored_only_when_fitting(stage: TrainerFn) -> None:
    callback = RandomStateCheckpoint()
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    checkpoint = {"callbacks": {callback.state_key: callback.state_dict()}}
    saved_draws = _draws()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    other_draws = _draws()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    trainer = SimpleNamespace(state=SimpleNamespace(fn=stage))
    callback.on_load_checkpoint(trainer, None, checkpoint)
    expected = saved_draws if stage == TrainerFn.FITTING else other_draws
    assert _draws() == expected


def test_a_checkpoint_without_random_states_changes_nothing() -> None:
    torch.manual_seed(3)
    expected = torch.get_rng_state()
    trainer = SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING))
    RandomStateCheckpoint().on_load_checkpoint(trainer, None, {"callbacks": {}})
    assert torch.equal(torch.get_rng_state(), expected)


def _eval_result(num_videos: int) -> EvalResult:
    generator = torch.Generator().manual_seed(0)
    return EvalResult(
        name="set",
        class_names=["run", "jump", "swim"],
        video_embeddings=torch.randn(num_videos, 4, generator=generator),  # (N, 4)
        class_embeddings=torch.randn(3, 4, generator=generator),  # (3, 4)
        labels=torch.arange(num_videos) % 3,  # (N,)
        metrics={"top1": 0.5},
    )


def test_embedding_table_rows_hold_every_class_and_the_videos() -> None:
    result = _eval_result(5)
    rows = embedding_table_rows(result, max_videos=10)
    assert all(len(row) == len(EMBEDDING_TABLE_COLUMNS) for row in rows)
    assert [row[:4] for row in rows[:3]] == [
        ["set", "class name", 0, "run"],
        ["set", "class name", 1, "jump"],
        ["set", "class name", 2, "swim"],
    ]
    assert [row[2:4] for row in rows[3:]] == [
        [i, ["run", "jump", "swim"][i % 3]] for i in range(5)
    ]
    assert rows[4][4] == result.video_embeddings[1].tolist()


def test_embedding_table_caps_the_videos_with_a_fixed_subset() -> None:
    result = _eval_result(50)
    rows = embedding_table_rows(result, max_videos=7)
    videos = [row[2] for row in rows if row[1] == "video"]
    assert len(videos) == 7 and videos == sorted(set(videos))
    assert videos == [row[2] for row in embedding_table_rows(result, 7) if row[1] == "video"]
    assert sum(row[1] == "class name" for row in rows) == 3
