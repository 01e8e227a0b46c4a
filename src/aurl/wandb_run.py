"""What a run sends to W&B besides its metrics: run fields, the resolved config, checkpoints.

``aurl fit --wandb.group g --wandb.tags '[seed0]' --wandb.log_model true`` sets the fields of
every :class:`~lightning.pytorch.loggers.WandbLogger` in ``trainer.logger`` (one option instead
of an override of one item of the logger list), :class:`WandbConfigCallback` sends the complete
resolved config (the ``config.yaml`` of the run) to the W&B run, and
:func:`log_checkpoint_artifacts` logs the best and the last checkpoint after a fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

# The WandbRunOptions fields that are wandb.init keywords, copied into the loggers' init_args.
_INIT_FIELDS = ("group", "tags", "job_type", "notes")


@dataclass
class WandbRunOptions:
    """W&B fields of a run, the ``wandb`` group of the ``aurl`` config (``--wandb.<field>``).

    Attributes:
        group: Groups runs in the W&B UI (the ablation: one group per variant). ``None`` keeps
            what the logger config says.
        tags: Labels to filter runs by (the ablation: the seed). ``None`` keeps the logger's.
        job_type: The kind of run (``fit``, ``ablation``); ``None`` keeps the logger's.
        notes: A free-text description of the run; ``None`` keeps the logger's.
        log_model: After a successful ``fit``, log the best checkpoint (alias ``best``) and the
            last one (alias ``latest``) as versions of the ``model-<run id>`` model artifact.
            Off by default: checkpoints are large and uploaded on sync.
    """

    group: str | None = None
    tags: list[str] | None = None
    job_type: str | None = None
    notes: str | None = None
    log_model: bool = False


def wandb_logger_configs(logger_config: Any) -> list[Any]:
    """The ``class_path``/``init_args`` entries of ``trainer.logger`` that are W&B loggers."""
    configs = logger_config if isinstance(logger_config, list) else [logger_config]
    return [c for c in configs if str(getattr(c, "class_path", "")).endswith("WandbLogger")]


def apply_wandb_options(logger_config: Any, options: Any) -> None:
    """Copies the given (not ``None``) ``group``/``tags``/``job_type``/``notes`` of ``options``
    (a :class:`WandbRunOptions` or its parsed namespace) into each W&B logger's ``init_args``,
    which Lightning passes to ``wandb.init``."""
    for cfg in wandb_logger_configs(logger_config):
        for key in _INIT_FIELDS:
            value = getattr(options, key, None)
            if value is not None:
                cfg.init_args[key] = list(value) if key == "tags" else value


class WandbConfigCallback(SaveConfigCallback):
    """LightningCLI's config saver that also sends the resolved config to each W&B run.

    The W&B run config then holds every key of the saved ``config.yaml`` (``trainer``,
    ``model``, ``data``, ``seed_everything``, ``wandb``...), next to the model and datamodule
    hyperparameters that Lightning logs itself. Runs on rank 0, once per run.
    """

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers:
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in loggers:
            logger.experiment.config.update(config, allow_val_change=True)


def latest_checkpoint(trainer: L.Trainer) -> str:
    """The path of the last checkpoint a fit wrote: a ``save_last`` file, else the file of a
    checkpoint callback without a monitor (the house ``last.ckpt``), else the best one."""
    callbacks = trainer.checkpoint_callbacks
    for callback in callbacks:
        if callback.last_model_path:
            return callback.last_model_path
    for callback in callbacks:
        if callback.monitor is None and callback.best_model_path:
            return callback.best_model_path
    best = trainer.checkpoint_callback
    return best.best_model_path if best is not None else ""


@rank_zero_only
def log_checkpoint_artifacts(trainer: L.Trainer) -> None:
    """Logs the best and the latest checkpoint of a fit to each W&B run of ``trainer``.

    Both are versions of one ``model`` artifact, ``model-<run id>``, holding ``model.ckpt``;
    the best (``trainer.checkpoint_callback``'s) gets the alias ``best``, the latest
    (:func:`latest_checkpoint`) ``latest``, one version both when they are the same file.
    """
    import wandb

    callback = trainer.checkpoint_callback
    best = callback.best_model_path if callback is not None else ""
    latest = latest_checkpoint(trainer)
    versions: dict[str, list[str]] = {}
    for path, alias in ((best, "best"), (latest, "latest")):
        if path and Path(path).is_file():
            versions.setdefault(path, []).append(alias)
    score = callback.best_model_score if callback is not None else None
    for logger in trainer.loggers:
        if not isinstance(logger, WandbLogger):
            continue
        for path, aliases in versions.items():
            metadata = {
                "original_filename": Path(path).name,
                "monitor": callback.monitor if callback is not None else None,
                "best_score": None if score is None else float(score),
            }
            artifact = wandb.Artifact(
                name=f"model-{logger.experiment.id}", type="model", metadata=metadata
            )
            artifact.add_file(path, name="model.ckpt")
            logger.experiment.log_artifact(artifact, aliases=aliases)
