"""The ``aurl`` command: LightningCLI for fit/validate/test, plus the commands of
:mod:`aurl.commands` (predict, embed, classify, export, check-data, prepare-data).

``aurl fit --config experiments/smoke.yaml`` trains, then (unless ``--test_after_fit false``)
tests the best checkpoint on the target datasets and prints a summary. ``aurl predict`` ranks
free-form class names for video files with a trained checkpoint; ``aurl embed`` stores video
embeddings in an index that ``aurl classify`` ranks against any class list without decoding;
``aurl export`` writes a weights-only file; ``aurl check-data`` lists the unreadable videos of a
dataset; ``aurl prepare-data`` transcodes a dataset's videos for fast training reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from aurl.backbones import list_backbones
from aurl.module import AURLModule
from aurl.wandb_run import (
    WandbConfigCallback,
    WandbRunOptions,
    apply_wandb_options,
    log_checkpoint_artifacts,
)

log = logging.getLogger(__name__)

_CUSTOM_COMMANDS = ("predict", "embed", "classify", "export", "check-data", "prepare-data")


def configure_wandb_mode() -> None:
    """Logs to W&B offline unless the user has credentials (sync later with ``wandb sync``)."""
    if "WANDB_MODE" in os.environ:
        return
    has_key = bool(os.environ.get("WANDB_API_KEY"))
    netrc = Path.home() / ".netrc"
    if not has_key and netrc.is_file():
        has_key = "api.wandb.ai" in netrc.read_text(errors="ignore")
    if not has_key:
        os.environ["WANDB_MODE"] = "offline"


class AURLCLI(LightningCLI):
    """LightningCLI with the links and after-fit evaluation that AURL experiments need."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        commands = LightningCLI.subcommands()
        commands.pop("predict")  # `aurl predict` is the open-vocabulary command below
        return commands

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        kwargs.setdefault(
            "epilog",
            "backbones (model.visual_tower.init_args.backbone): " + ", ".join(list_backbones()),
        )
        return super().init_parser(**kwargs)

    def _prepare_subcommand_parser(
        self, klass: type, subcommand: str, **kwargs: Any
    ) -> LightningArgumentParser:
        # Where LightningCLI adds the subcommand's own arguments (Trainer.test's `verbose`).
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "test":
            # RunSummary prints the scores once; Lightning would print its table once per test
            # set, each repeating every set's values (they are logged at epoch end).
            parser.set_defaults(verbose=False)
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # One text encoder and one embedding cache serve the model (class embeddings) and the
        # datamodule (overlap removal between source and target class names).
        parser.link_arguments("model.text_encoder", "data.text_encoder", apply_on="instantiate")
        parser.link_arguments("model.embedding_cache_dir", "data.embedding_cache_dir")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="After `fit`, test the best checkpoint and print a summary.",
        )
        # W&B run fields for every WandbLogger of trainer.logger (aurl.wandb_run).
        parser.add_class_arguments(WandbRunOptions, "wandb")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand]
        resolve_run_folder(config.trainer)
        link_data_seed(config)
        report = config.data.get("overlap_report")
        if isinstance(report, str):
            root = str(config.trainer.get("default_root_dir") or ".")
            config.data.overlap_report = report.replace("{root}", root)
        apply_wandb_options(config.trainer.logger, config.wandb)
        if self.subcommand == "fit":
            pin_wandb_run_id(config.trainer.logger, resuming=config.get("ckpt_path") is not None)

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        config = self.config[self.subcommand]
        if config.wandb.log_model:
            log_checkpoint_artifacts(self.trainer)
        if not config.get("test_after_fit", True):
            return
        ckpt = "best" if self.trainer.checkpoint_callback is not None else None
        if ckpt == "best" and not self.trainer.checkpoint_callback.best_model_path:
            ckpt = None
        # RunSummary prints the scores; Lightning's per-dataloader tables would repeat them.
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt, verbose=False)


def link_data_seed(config: Any) -> None:
    """Sets ``data.seed`` to ``seed_everything`` unless the config gives it explicitly.

    One seed then varies the data (validation classes, held-out videos, order, clips) with the
    model, and the saved config records the value used.
    """
    data = config.get("data")
    seed = config.get("seed_everything")
    explicit = data is None or data.get("seed") is not None
    if not explicit and isinstance(seed, int) and not isinstance(seed, bool):
        data.seed = seed


def resolve_run_folder(trainer_config: Any) -> None:
    """Replaces ``{root}`` in logger and callback paths by ``trainer.default_root_dir``.

    ``{run}`` in a logger's ``name`` becomes the folder's name (the W&B run name). The house
    loggers and callbacks (``experiments/defaults/``) write ``save_dir: "{root}"`` and
    ``dirpath: "{root}/checkpoints"``, so ``--trainer.default_root_dir runs/x`` (or an ablation
    fragment) moves the whole run folder: logs, W&B files, checkpoints and plots.
    """
    root = str(trainer_config.get("default_root_dir") or ".")
    run = Path(root).resolve().name
    groups = [trainer_config.get("logger"), trainer_config.get("callbacks")]
    for group in groups:
        for cfg in group if isinstance(group, list) else [group]:
            init_args = getattr(cfg, "init_args", None)
            if init_args is None:
                continue
            for key in ("save_dir", "dirpath", "dir", "name"):
                value = init_args.get(key)
                if isinstance(value, str):
                    init_args[key] = value.replace("{root}", root).replace("{run}", run)


def pin_wandb_run_id(logger_config: Any, resuming: bool) -> None:
    """Gives each W&B logger of a run folder a run id, reused when training resumes.

    The id lives in ``<save_dir>/wandb_run_id``: a resumed job (``--ckpt_path``) continues the
    same W&B run, a fresh job in the same folder starts a new one. Only rank 0 writes it; W&B
    runs on rank 0 alone, so a DDP job makes exactly one run.
    """
    from lightning.pytorch.utilities import rank_zero_only

    configs = logger_config if isinstance(logger_config, list) else [logger_config]
    for cfg in configs:
        if not str(getattr(cfg, "class_path", "")).endswith("WandbLogger"):
            continue
        init_args = cfg.init_args
        # jsonargparse passes every wandb.init keyword: keep Lightning's "allow", which makes a
        # reused id continue its run online.
        init_args["resume"] = init_args.get("resume") or "allow"
        if init_args.get("id") or init_args.get("version"):
            continue
        id_file = Path(init_args.get("save_dir") or ".") / "wandb_run_id"
        if resuming and id_file.is_file():
            init_args["id"] = id_file.read_text().strip()
        else:
            init_args["id"] = uuid.uuid4().hex[:12]
            if rank_zero_only.rank == 0:
                id_file.parent.mkdir(parents=True, exist_ok=True)
                id_file.write_text(init_args["id"] + "\n")


def run_lightning_cli(args: list[str] | None = None) -> AURLCLI:
    """Runs ``aurl fit|validate|test`` with ``args`` (default: ``sys.argv[1:]``)."""
    from data_modules.datamodule import ZeroShotDataModule

    configure_wandb_mode()
    # transformers prints "[INFO] Running in WANDB offline mode" on import; keep stdout for
    # the CLI's own output (`--print_config` must be pure YAML).
    with contextlib.redirect_stdout(sys.stderr):
        import transformers.integrations.integration_utils  # noqa: F401
    return AURLCLI(
        AURLModule,
        ZeroShotDataModule,
        trainer_defaults={"use_distributed_sampler": False},
        save_config_callback=WandbConfigCallback,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aurl`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args and args[0] in _CUSTOM_COMMANDS:
        from aurl import commands

        return commands.main(args)
    # LightningCLI reads sys.argv itself; passing it again triggers its mixed-input warning.
    run_lightning_cli(argv)
    return 0


if __name__ == "__main__":  # `torchrun ... -m aurl.cli fit --config ...`
    sys.exit(main())
