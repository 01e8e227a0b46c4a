"""Re-plan the learning-rate schedule when training resumes."""

from __future__ import annotations

import lightning as L
import torch


class ResumeSchedule(L.Callback):
    """Applies the current schedule's learning rate from the first resumed step.

    A resumed optimiser holds the learning rates of the schedule it was saved with; when the
    run was re-planned (e.g. a larger ``max_epochs``, hence a longer cosine) the first step
    after resuming must already use the new schedule. For an unchanged schedule this rewrites
    the same values. Applies to ``LambdaLR`` schedulers (:func:`aurl.optim.create_warmup_cosine`).
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for config in trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                continue
            for group, base_lr, lr_lambda in zip(
                scheduler.optimizer.param_groups,
                scheduler.base_lrs,
                scheduler.lr_lambdas,
                strict=True,
            ):
                group["lr"] = base_lr * lr_lambda(scheduler.last_epoch)
