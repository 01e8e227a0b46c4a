"""W&B run fields from the ``wandb`` options, and which checkpoint is the latest."""

from __future__ import annotations

from types import SimpleNamespace

from jsonargparse import Namespace

from aurl.wandb_run import WandbRunOptions, apply_wandb_options, latest_checkpoint


def _loggers() -> list[Namespace]:
    return [
        Namespace(class_path="lightning.pytorch.loggers.CSVLogger", init_args=Namespace()),
        Namespace(
            class_path="lightning.pytorch.loggers.WandbLogger",
            init_args=Namespace(project="aurl", group="from_yaml", notes="kept"),
        ),
    ]


def test_given_options_reach_only_the_wandb_loggers() -> None:
    loggers = _loggers()
    apply_wandb_options(loggers, WandbRunOptions(group="variant", tags=["seed0"], job_type="fit"))
    assert loggers[0].init_args == Namespace()
    assert loggers[1].init_args == Namespace(
        project="aurl", group="variant", notes="kept", tags=["seed0"], job_type="fit"
    )


def test_unset_options_keep_the_logger_config() -> None:
    loggers = _loggers()
    apply_wandb_options(loggers[1], WandbRunOptions())
    assert loggers[1].init_args == Namespace(project="aurl", group="from_yaml", notes="kept")


def _checkpoint(monitor: str | None, best: str, last: str = "") -> SimpleNamespace:
    return SimpleNamespace(monitor=monitor, best_model_path=best, last_model_path=last)


def _trainer(*callbacks: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(checkpoint_callbacks=list(callbacks), checkpoint_callback=callbacks[0])


def test_latest_checkpoint_is_the_save_last_file_else_the_unmonitored_one() -> None:
    best = _checkpoint("val/top1", "best.ckpt")
    assert latest_checkpoint(_trainer(best)) == "best.ckpt"
    house = _trainer(best, _checkpoint(None, "last.ckpt"))
    assert latest_checkpoint(house) == "last.ckpt"
    save_last = _trainer(_checkpoint("val/top1", "best.ckpt", last="final.ckpt"))
    assert latest_checkpoint(save_last) == "final.ckpt"
