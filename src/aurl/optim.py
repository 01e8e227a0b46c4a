"""Optimisers and learning-rate schedules used by the AURL recipe."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import LambdaLR

if TYPE_CHECKING:
    import lightning as L


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up from ``1 / warmup_steps`` to 1 over ``warmup_steps`` steps, then cosine decay
    to 0 at ``total_steps`` (the original recipe: 1 epoch of warm-up, then cosine).
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def create_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    name: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
) -> torch.optim.Optimizer:
    """SGD with momentum (the paper's recipe) or AdamW.

    ``params`` are parameters or parameter groups (dicts); a group without ``"lr"`` uses ``lr``.
    """
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'sgd' or 'adamw'")


def create_warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> LambdaLR:
    """A per-step scheduler applying :func:`warmup_cosine_factor`."""
    return LambdaLR(optimizer, lambda step: warmup_cosine_factor(step, warmup_steps, total_steps))


def planned_steps(trainer: L.Trainer) -> tuple[int, int]:
    """``(total optimiser steps of the fit, optimiser steps per epoch)`` of ``trainer``.

    An epoch is a pass over the training loader, whether ``max_epochs`` or ``max_steps`` ends
    the run; a loader without a length makes the whole run one "epoch". Call it from
    ``configure_optimizers``.
    """
    total_steps = int(trainer.estimated_stepping_batches)
    if trainer.train_dataloader is None:  # not loaded by the estimate when max_epochs=-1
        trainer.fit_loop.setup_data()
    batches = trainer.num_training_batches
    if math.isinf(batches):
        return total_steps, total_steps
    return total_steps, max(1, math.ceil(batches / trainer.accumulate_grad_batches))
