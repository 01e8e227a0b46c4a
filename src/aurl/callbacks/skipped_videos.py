"""Count the unreadable videos that each epoch skipped."""

from __future__ import annotations

from typing import Any

import lightning as L


class SkippedVideoCounter(L.Callback):
    """Logs ``{train,val,test}/skipped_videos`` per epoch, summed over ranks.

    The collate function of :mod:`data_modules` drops the videos it could not decode and
    lists them under the batch key ``"skipped"``; this callback counts them.
    """

    def __init__(self) -> None:
        self.counts = {"train": 0, "val": 0, "test": 0}

    def _start(self, stage: str) -> None:
        self.counts[stage] = 0

    def _add(self, stage: str, batch: Any) -> None:
        self.counts[stage] += len(batch.get("skipped") or [])

    def _log(self, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.log(
            f"{stage}/skipped_videos", float(self.counts[stage]), reduce_fx="sum", sync_dist=True
        )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("train")

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._add("train", batch)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, "train")

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("val")

    def on_validation_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._add("val", batch)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, "val")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("test")

    def on_test_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._add("test", batch)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(pl_module, "test")
