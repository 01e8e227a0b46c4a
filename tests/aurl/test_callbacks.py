"""The reliability callbacks' own rules (their effect on training: tests/test_reliability.py)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn

from aurl.callbacks import RandomStateCheckpoint


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
