"""Skip optimiser steps whose loss is not finite, on every DDP rank together."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from torch import Tensor

log = logging.getLogger(__name__)


class NonFiniteGuard(L.Callback):
    """Turns a step with a non-finite loss, or with no data on any rank, into a no-op.

    A step (with gradient accumulation: the whole accumulated step) whose loss is NaN or
    infinite on any rank is skipped on every rank: the gradients are dropped before the
    optimiser step, so no parameter, weight decay, momentum or Adam moment changes, and the
    BatchNorm statistics are restored to their values before the step. A step whose batches
    were empty on every rank (every video unreadable) is skipped the same way, uncounted. The
    ranks agree through one sum all-reduce per optimiser step.

    Counting and the limit are per optimiser step: with gradient accumulation one bad
    micro-batch skips (and counts) its whole accumulated step, and the BatchNorm statistics of
    all its micro-batches are restored. The non-finite loss does run backward (its NaN
    gradients are dropped), so ``detect_anomaly=True`` raises there and a ``16-mixed``
    GradScaler lowers its scale, as it does for any overflow. The step's logged
    ``train/loss`` is the non-finite value.

    A checkpoint whose weights hold a NaN or an infinity is refused (on every rank, before
    anything is written), so the last good checkpoint stays the resume point.

    ``train/nonfinite_steps`` is logged per epoch. Batches are dicts with a ``"video"`` tensor
    (the format of :mod:`data_modules`); the module returns a zero loss for an empty one.

    Args:
        max_nonfinite_steps: consecutive non-finite steps tolerated (each is skipped and
            counted) before training stops with an error.

    Attributes:
        nonfinite_steps: non-finite steps skipped since this callback was created.
    """

    def __init__(self, max_nonfinite_steps: int = 5) -> None:
        if max_nonfinite_steps < 0:
            raise ValueError(f"max_nonfinite_steps must be >= 0, got {max_nonfinite_steps}")
        self.max_nonfinite_steps = max_nonfinite_steps
        self.nonfinite_steps = 0
        self._in_row = 0
        self._epoch_nonfinite = 0
        # This rank, since the last optimiser step: a non-finite loss, any data, buffers saved.
        self._nonfinite: Tensor | None = None
        self._has_data = False
        self._buffers: list[Tensor] = []
        self._backed_up = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_nonfinite = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self._backed_up:  # the first batch of an (accumulated) optimiser step
            self._backup_buffers(pl_module)
            self._backed_up = True
        self._has_data = self._has_data or batch["video"].shape[0] > 0

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        bad = ~torch.isfinite(loss.detach())  # () bool, read once per optimiser step
        self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        zero = torch.zeros((), device=pl_module.device)
        nonfinite = zero if self._nonfinite is None else self._nonfinite.float()
        local = torch.stack([nonfinite, zero + self._has_data])  # (2,): non-finite, has data
        # Numbers of ranks with a non-finite loss and with data (unchanged without DDP).
        nonfinite_ranks, ranks_with_data = trainer.strategy.reduce(local, reduce_op="sum").tolist()
        self._nonfinite, self._has_data, self._backed_up = None, False, False
        if nonfinite_ranks == 0 and ranks_with_data > 0:
            self._in_row = 0
            return
        # Optimizers skip parameters without a gradient: no update, no weight decay, and
        # momentum and Adam moments stay as they are.
        optimizer.zero_grad(set_to_none=True)
        self._restore_buffers(pl_module)
        if nonfinite_ranks > 0:
            self._count(trainer, int(nonfinite_ranks))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every rank counted the same (agreed) skipped steps.
        pl_module.log(
            "train/nonfinite_steps", float(self._epoch_nonfinite), reduce_fx="max", sync_dist=True
        )

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        bad = [
            name
            for name, value in checkpoint["state_dict"].items()
            if isinstance(value, Tensor)
            and value.is_floating_point()
            and not value.isfinite().all()
        ]
        if bad:
            raise FloatingPointError(f"refusing to save a checkpoint with non-finite {bad}")

    def _count(self, trainer: L.Trainer, num_ranks: int) -> None:
        self.nonfinite_steps += 1
        self._epoch_nonfinite += 1
        self._in_row += 1
        log.warning(
            "non-finite loss on %d rank(s) at step %d: step skipped on every rank "
            "(%d in a row, %d in total)",
            num_ranks,
            trainer.global_step,
            self._in_row,
            self.nonfinite_steps,
        )
        if self._in_row > self.max_nonfinite_steps:
            raise FloatingPointError(
                f"{self._in_row} consecutive non-finite losses (limit "
                f"max_nonfinite_steps={self.max_nonfinite_steps}); lower the learning rate or "
                "check the data"
            )

    def _backup_buffers(self, pl_module: L.LightningModule) -> None:
        """Copies the buffers (BatchNorm statistics) that forward passes update in place."""
        buffers = list(pl_module.buffers())
        if len(self._buffers) != len(buffers):
            self._buffers = [b.detach().clone() for b in buffers]
            return
        for backup, buffer in zip(self._buffers, buffers, strict=True):
            backup.copy_(buffer)

    def _restore_buffers(self, pl_module: L.LightningModule) -> None:
        with torch.no_grad():
            for backup, buffer in zip(self._buffers, pl_module.buffers(), strict=True):
                buffer.copy_(backup)
