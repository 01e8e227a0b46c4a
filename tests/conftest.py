"""Shared pytest fixtures: offline, single-threaded, deterministic."""

from __future__ import annotations

import os

# Set before torch/transformers are imported by any test module: tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import pytest
import torch

# The CI machine has 2 cores; one intra-op thread keeps parallel test processes from thrashing.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
