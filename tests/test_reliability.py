"""Reliability: broken videos, non-finite losses, and a training job killed and resumed.

Issue 6, items 1 (corruption corpus), 4 (numerical faults) and 5 (kill and resume).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from aurl.callbacks import NonFiniteGuard, PreemptionCheckpoint
from aurl.checkpoint_io import AtomicCheckpointIO, load_checkpoint
from aurl.module import AURLModule
from data_modules.datamodule import ZeroShotDataModule
from data_modules.datasets import SyntheticActions
from tests import cli_helpers
from tests.cli_helpers import subprocess_env
from tests.metrics_csv import per_epoch, read_metric_rows
from tests.reliability_helpers import (
    BAD_KINDS,
    CLIP_LEN,
    DAMAGED,
    BatchRecorder,
    Corpus,
    Faults,
    build_kinetics_corpus,
    finite_report,
    log_to_file,
    warned_paths,
)
from tests.tiny import ColourData, find_callback, tiny_module, tiny_trainer

REPO = Path(__file__).resolve().parents[1]
SOURCE_CLASSES = ["abseiling", "archery", "juggling balls"]
TARGET_CLASSES = ["bowling", "yodelling"]
# Every kind of broken file that the test user can create: as root, permissions do not apply.
KINDS_FOR_ANYONE = [kind for kind in BAD_KINDS if kind != "unreadable"] + [DAMAGED]
EPOCHS = 2


def _trainer(tmp_path: Path, callbacks: Sequence[L.Callback] = (), **kwargs: Any) -> L.Trainer:
    """The tiny trainer, logging every step to CSV (the tests read the logged counts)."""
    return tiny_trainer(
        tmp_path,
        callbacks,
        logger=CSVLogger(tmp_path, name="csv"),
        log_every_n_steps=1,
        **{"max_epochs": EPOCHS, **kwargs},
    )


# --- 1. corruption corpus ------------------------------------------------------------------
def _train_and_test_on_corpus(
    tmp_path: Path, kinds: list[str], num_workers: int
) -> tuple[Corpus, Corpus, ZeroShotDataModule, BatchRecorder, list[dict[str, float]], Path]:
    """Fits 2 epochs and tests on Kinetics layouts mixing ``kinds`` of bad files with good ones."""
    root = tmp_path / "k700"
    source = build_kinetics_corpus(root, "train", SOURCE_CLASSES, kinds, seed=0)
    target = build_kinetics_corpus(root, "validate", TARGET_CLASSES, kinds, seed=1)
    per_class = 3 + 1 + len(kinds)  # good, short, bad
    # 1 of the 3 source classes is held out for validation; one training batch per class keeps
    # every training video in an epoch (the sampler drops no tail).
    data = ZeroShotDataModule(
        source.catalog,
        [target.catalog],
        val_fraction=0.34,
        overlap_tau=0.0,
        clip_len=CLIP_LEN,
        size=32,
        batch_size=per_class,
        eval_batch_size=8,
        num_workers=num_workers,
    )
    module = tiny_module(tmp_path / "cache")
    recorder = BatchRecorder()
    trainer = _trainer(tmp_path, callbacks=[recorder])
    log_file = tmp_path / "warnings.log"
    # Catalogs warn about missing files, the clip dataset about unreadable ones.
    with (
        log_to_file("data_modules.datasets", log_file),
        log_to_file("data_modules.clip_dataset", log_file),
    ):
        trainer.fit(module, datamodule=data)
        trainer.test(module, datamodule=data, verbose=False)
    rows = read_metric_rows(Path(trainer.logger.log_dir) / "metrics.csv")
    return source, target, data, recorder, rows, log_file


def _check_corpus_run(
    source: Corpus,
    target: Corpus,
    data: ZeroShotDataModule,
    recorder: BatchRecorder,
    rows: list[dict[str, float]],
    log_file: Path,
) -> None:
    good = source.good | target.good
    bad = {**source.bad, **target.bad}
    damaged = source.damaged | target.damaged
    stages = {
        "train": ({p for p, _ in data.train_samples}, range(EPOCHS)),
        "val": ({p for p, _ in data.val_samples}, range(EPOCHS)),
        "test": ({p for s in data.test_samples for p, _ in s}, [0]),
    }
    damaged_listed = damaged & set().union(*(listed for listed, _ in stages.values()))
    damaged_used: set[str] = set()
    damaged_skipped: set[str] = set()
    for stage, (listed, epochs) in stages.items():
        # The set-up puts good, short and bad files into every stage.
        assert (listed & source.short) | (listed & target.short), stage
        assert set(bad) & listed, stage
        expected_good, expected_bad = good & listed, set(bad) & listed
        logged = per_epoch(rows, f"{stage}/skipped_videos")
        for epoch in epochs:
            used, skipped = recorder.used[(stage, epoch)], recorder.skipped[(stage, epoch)]
            where = f"{stage} epoch {epoch}"
            # Every good video (those shorter than a clip too) once, every bad one skipped once.
            assert len(used) == len(set(used)) and len(skipped) == len(set(skipped)), where
            assert set(used) - damaged == expected_good, where
            assert set(skipped) - damaged == expected_bad, where
            assert not set(used) & set(skipped), where
            damaged_used |= set(used) & damaged
            damaged_skipped |= set(skipped) & damaged
            # The logged count is this epoch's (this test run's) number of skipped videos.
            logged_epoch = epoch if stage != "test" else EPOCHS
            assert logged[logged_epoch] == len(skipped), where
    # H.264 may conceal overwritten bytes or fail on them: used or skipped, never both.
    assert not damaged_used & damaged_skipped
    assert damaged_used | damaged_skipped == damaged_listed

    # Each unreadable file is reported once (over both epochs, all stages and all workers),
    # with its path and why.
    warned = warned_paths(log_file, sorted(good | set(bad) | damaged))
    for path, kind in bad.items():
        assert len(warned[path]) == 1, (path, warned[path])
        assert re.search(BAD_KINDS[kind], warned[path][0]), (kind, warned[path][0])
    for path in good:
        assert warned[path] == [], path
    for path in damaged:
        assert len(warned[path]) == (path in damaged_skipped), (path, warned[path])
    # Files listed in the annotations but missing are dropped when the catalog is listed, in one
    # warning per catalog that names them.
    text = log_file.read_text()
    for corpus in (source, target):
        assert corpus.catalog.missing and set(corpus.catalog.missing) == corpus.missing
        (line,) = [
            ln for ln in text.splitlines() if "missing on disk" in ln and corpus.catalog.name in ln
        ]
        assert all(path in line for path in corpus.missing), line
        assert all(text.count(path) == 1 for path in corpus.missing)


@pytest.mark.parametrize("num_workers", [0, 2], ids=["main-process", "2-workers"])
def test_training_and_evaluation_survive_a_corrupt_corpus(
    tmp_path: Path, num_workers: int
) -> None:
    _check_corpus_run(*_train_and_test_on_corpus(tmp_path, KINDS_FOR_ANYONE, num_workers))


@pytest.mark.usefixtures("unreadable_means_unreadable")
def test_unreadable_files_are_skipped_and_reported(tmp_path: Path) -> None:
    _check_corpus_run(*_train_and_test_on_corpus(tmp_path, ["unreadable"], num_workers=0))


# --- 2. numerical faults ------------------------------------------------------------------
def _assert_same_state(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"a skipped step changed {changed}"


def _checkpointing_trainer(tmp_path: Path, faults: Faults, **kwargs: Any) -> L.Trainer:
    every_step = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints",
        filename="{epoch}-{step}",
        every_n_train_steps=1,
        save_top_k=-1,
    )
    return _trainer(
        tmp_path,
        [faults, every_step],
        enable_checkpointing=True,
        plugins=[AtomicCheckpointIO()],
        limit_val_batches=0,
        **kwargs,
    )


def _checkpoint_steps(folder: Path) -> list[int]:
    """The global steps of the checkpoints in ``folder``, after checking each is finite."""
    steps = []
    for path in sorted(folder.glob("*.ckpt")):
        checkpoint = load_checkpoint(path, weights_only=True)
        assert finite_report(checkpoint) == [], path
        steps.append(checkpoint["global_step"])
    return sorted(steps)


def test_nan_batch_is_skipped_training_goes_on_and_checkpoints_stay_finite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 24 training clips in batches of 4: 6 steps per epoch; every clip of step 2 is NaN.
    faults = Faults(nan_steps={2: [0]})
    module = tiny_module(tmp_path / "cache", weight_decay=1e-2)
    trainer = _checkpointing_trainer(tmp_path, faults)
    data = ColourData()
    guard_log = "aurl.callbacks.nonfinite_guard"
    with caplog.at_level(logging.WARNING, logger=guard_log):
        trainer.fit(module, datamodule=data)

    assert (
        find_callback(trainer, NonFiniteGuard).nonfinite_steps == 1 and trainer.global_step == 12
    )
    (warning,) = [r.getMessage() for r in caplog.records if r.name == guard_log]
    assert "non-finite loss" in warning and "at step 2: step skipped" in warning
    # The skipped step left weights, BatchNorm statistics and momentum exactly as they were
    # (a zero-gradient step would still apply weight decay and momentum).
    _assert_same_state(faults.before[2], faults.after[2])
    # Training went on after it.
    final = {k: v for k, v in module.state_dict().items() if torch.is_tensor(v)}
    assert not torch.equal(
        final["semantic_tower.fc.weight"], faults.after[2]["semantic_tower.fc.weight"]
    )
    assert all(torch.isfinite(v).all() for v in final.values() if v.is_floating_point())
    # A checkpoint after every step, the skipped one included, and none holds a non-finite value.
    assert _checkpoint_steps(tmp_path / "checkpoints") == list(range(1, 13))
    rows = read_metric_rows(Path(trainer.logger.log_dir) / "metrics.csv")
    assert per_epoch(rows, "train/nonfinite_steps") == {0: 1.0, 1: 0.0}
    results = trainer.test(module, datamodule=data, verbose=False)[0]
    assert all(math.isfinite(value) for value in results.values())


def test_consecutive_nonfinite_limit_counts_only_unbroken_runs(tmp_path: Path) -> None:
    # Two runs of two NaN steps, a finite step between them: within max_nonfinite_steps=2.
    faults = Faults(nan_steps={1: [0], 2: [0], 4: [0], 5: [0]})
    module = tiny_module(tmp_path / "cache")
    trainer = _checkpointing_trainer(tmp_path, faults, max_epochs=1, max_nonfinite_steps=2)
    trainer.fit(module, datamodule=ColourData())
    assert find_callback(trainer, NonFiniteGuard).nonfinite_steps == 4 and trainer.global_step == 6
    for step in (1, 2, 4, 5):
        _assert_same_state(faults.before[step], faults.after[step])
    assert _checkpoint_steps(tmp_path / "checkpoints") == list(range(1, 7))


def test_nonfinite_limit_zero_stops_at_the_first_one_with_a_clear_error(tmp_path: Path) -> None:
    faults = Faults(nan_steps={3: [0]})
    module = tiny_module(tmp_path / "cache")
    trainer = _checkpointing_trainer(tmp_path, faults, max_nonfinite_steps=0)
    with pytest.raises(
        FloatingPointError,
        match=r"1 consecutive non-finite losses \(limit max_nonfinite_steps=0\)",
    ):
        trainer.fit(module, datamodule=ColourData())
    # The checkpoints written before the stop are finite; none was written for the bad step.
    assert _checkpoint_steps(tmp_path / "checkpoints") == [1, 2, 3]


def test_a_batch_whose_videos_were_all_skipped_skips_the_step(tmp_path: Path) -> None:
    faults = Faults(empty_steps={1: [0]})
    module = tiny_module(tmp_path / "cache", weight_decay=1e-2)
    trainer = _checkpointing_trainer(tmp_path, faults, max_epochs=1)
    trainer.fit(module, datamodule=ColourData())
    _assert_same_state(faults.before[1], faults.after[1])
    assert find_callback(trainer, NonFiniteGuard).nonfinite_steps == 0 and trainer.global_step == 6
    rows = read_metric_rows(Path(trainer.logger.log_dir) / "metrics.csv")
    assert per_epoch(rows, "train/skipped_videos") == {0: 4.0}


def test_a_checkpoint_with_nan_weights_is_refused_and_not_written(tmp_path: Path) -> None:
    module = tiny_module(tmp_path / "cache")
    trainer = _trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        plugins=[AtomicCheckpointIO()],
    )
    trainer.fit(module, datamodule=ColourData())
    with torch.no_grad():
        module.semantic_tower.fc.weight[0, 0] = float("nan")
    target = tmp_path / "nan.ckpt"
    with pytest.raises(FloatingPointError, match=r"non-finite .*semantic_tower\.fc\.weight"):
        trainer.save_checkpoint(target)
    assert not target.exists() and not list(tmp_path.glob(".nan.ckpt*"))


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_nonfinite_loss_on_one_rank_skips_the_step_on_every_rank(tmp_path: Path) -> None:
    # Rank 1 gets a NaN batch at step 1, rank 0 an empty batch at step 3 (all videos skipped).
    # Lightning refuses a None training_step under DDP, and a rank that skips backward alone
    # leaves the others waiting in the gradient all-reduce: every rank must agree.
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability_helpers", "ddp-nonfinite", str(tmp_path)],
        cwd=REPO,
        env=subprocess_env(AURL_CACHE_DIR=str(tmp_path / "cache")),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for rank, result in enumerate(ranks):
        assert result["nonfinite_steps"] == 1 and result["global_step"] == 6, rank
        # Step 1 was skipped on both ranks: rank 0's finite batch did not update anything
        # (nor its BatchNorm statistics; rank 1's are replaced by rank 0's at every DDP forward).
        before, after = result["before"][1], result["after"][1]
        if rank == 1:
            kept = [k for k in before if k in result["params"] or k.startswith("momentum.")]
            before, after = {k: before[k] for k in kept}, {k: after[k] for k in kept}
        _assert_same_state(before, after)
        # Step 3 went on: rank 1's batch trained both ranks' (synchronised) weights.
        assert not torch.equal(
            result["before"][3]["semantic_tower.fc.weight"],
            result["after"][3]["semantic_tower.fc.weight"],
        )
        assert all(torch.isfinite(p).all() for p in result["params"].values())
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), name


# --- 3. kill and resume -------------------------------------------------------------------
# The tiny benchmark of the CLI tests with more and longer videos: 2 epochs of several steps.
TINY_SYNTHETIC = {**cli_helpers.TINY_SYNTHETIC, "videos_per_class": 4, "num_frames": 12}
RESUME_EPOCHS = 4


class _Killed(Exception):
    """Stands for the end of a killed job."""


class _Interrupt(L.Callback):
    """Raises at the first training batch of ``epoch``, as a killed job stops."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch:
            raise _Killed


class _LossRecorder(L.Callback):
    def __init__(self) -> None:
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step] = float(outputs["loss"])


def _synthetic_fit(
    tmp_path: Path, root: Path, callbacks: list[L.Callback], ckpt_path: str | None = None
) -> AURLModule:
    """Fits the tiny model for 2 epochs on tiny SyntheticActions, a checkpoint every epoch."""
    torch.manual_seed(0)  # the same initial weights in both runs
    catalogs = [
        SyntheticActions(tmp_path / "synthetic", part=part, **TINY_SYNTHETIC)
        for part in ("seen", "unseen")
    ]
    data = ZeroShotDataModule(
        catalogs[0],
        catalogs[1:],
        overlap_tau=0.0,
        clip_len=4,
        size=32,
        batch_size=4,
        eval_batch_size=16,
        num_workers=2,
    )
    module = tiny_module(tmp_path / "cache")
    checkpoints = ModelCheckpoint(dirpath=root, save_top_k=-1, save_last=True)
    trainer = tiny_trainer(
        root, [checkpoints, *callbacks], enable_checkpointing=True, limit_val_batches=0
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module


def test_resuming_at_an_epoch_end_repeats_the_uninterrupted_epochs(tmp_path: Path) -> None:
    # In one process: persistent DataLoader workers, dropout, the class generator's stream and
    # the per-epoch reshuffle must all continue as if nothing had happened.
    runs = {}
    for name in ("reference", "resumed"):
        batches, losses = BatchRecorder(), _LossRecorder()
        callbacks: list[L.Callback] = [batches, losses]
        ckpt_path = None
        if name == "resumed":
            with pytest.raises(_Killed):
                _synthetic_fit(tmp_path, tmp_path / name, [_Interrupt(1)])
            ckpt_path = str(tmp_path / name / "last.ckpt")
        module = _synthetic_fit(tmp_path, tmp_path / name, callbacks, ckpt_path)
        runs[name] = (batches, losses, module.state_dict())
    (ref_batches, ref_losses, ref_state), (batches, losses, state) = runs.values()
    assert batches.used[("train", 1)] == ref_batches.used[("train", 1)]
    resumed_steps = sorted(losses.losses)
    assert resumed_steps == sorted(ref_losses.losses)[len(ref_losses.losses) // 2 :]  # epoch 1
    assert losses.losses == {step: ref_losses.losses[step] for step in resumed_steps}
    for name, value in ref_state.items():
        if torch.is_tensor(value):
            assert torch.equal(value, state[name]), name


class _Signal(L.Callback):
    """Sends ``signum`` to this process at the start of training batch ``batch_idx`` of
    epoch ``epoch``, as SLURM does before a job's end."""

    def __init__(self, signum: int, epoch: int, batch_idx: int) -> None:
        self.signum, self.epoch, self.batch_idx = signum, epoch, batch_idx

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch_idx):
            os.kill(os.getpid(), self.signum)


@pytest.mark.slow
def test_sigusr1_saves_a_checkpoint_at_a_batch_end_that_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for SLURM's scontrol that records how it was called.
    calls, scontrol = tmp_path / "scontrol_calls", tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir()
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{scontrol.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    handler = signal.getsignal(signal.SIGUSR1)

    reference = _synthetic_fit(tmp_path, tmp_path / "reference", [])
    preemption = PreemptionCheckpoint()
    signalled = tmp_path / "signalled"
    signalled.mkdir()
    (signalled / "hpc_ckpt_2.ckpt").write_bytes(b"")  # a requeued job's earlier one: numbered on
    _synthetic_fit(tmp_path, signalled, [_Signal(signal.SIGUSR1, 1, 2), preemption])
    assert preemption.saved == signalled / "hpc_ckpt_3.ckpt"
    assert calls.read_text() == "requeue 4242\n"
    assert signal.getsignal(signal.SIGUSR1) == handler  # restored after the fit
    state = torch.load(preemption.saved, weights_only=True)
    # Saved at the end of epoch 1's third batch: its optimiser step done, the loader's position
    # after it; the resumed run trains on from there to the reference's weights, bit for bit.
    steps_per_epoch = state["global_step"] - 3
    assert state["epoch"] == 1 and steps_per_epoch > 3
    assert state["ZeroShotDataModule"]["train_loader"]["loader"]
    resumed = _synthetic_fit(tmp_path, tmp_path / "resumed", [], str(preemption.saved))
    for name, value in reference.state_dict().items():
        if torch.is_tensor(value):
            assert torch.equal(value, resumed.state_dict()[name]), name


def _resume_overrides(path: Path, synthetic_root: Path) -> Path:
    """A config fragment stacked on experiments/smoke.yaml: tiny, deterministic, a checkpoint
    (and ``last.ckpt``) at the end of every epoch, CSV logs only.

    smoke.yaml's own callback monitors ``val/top1``, and Lightning 2.6 then rewrites
    ``last.ckpt`` only in epochs whose score is a new best: it is not a resume point.
    """
    catalog = {"root": str(synthetic_root), **TINY_SYNTHETIC}
    overrides = {
        "trainer": {
            "max_epochs": RESUME_EPOCHS,
            "deterministic": True,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": [
                {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": "{root}", "name": "csv"},
                }
            ],
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": "{root}/checkpoints",
                        "filename": "epoch-{epoch:02d}",
                        "save_top_k": -1,
                        "save_last": True,
                    },
                },
                *(
                    {"class_path": f"aurl.callbacks.{name}"}
                    for name in ("NonFiniteGuard", "RandomStateCheckpoint", "ResumeSchedule")
                ),
            ],
        },
        "model": {
            "visual_tower": {
                "init_args": {
                    "backbone_kwargs": {"widths": [4, 8, 8, 8]},
                    "embed_dim": 16,
                    "hidden_dim": 16,
                }
            },
            "semantic_tower": {
                "init_args": {"text_dim": 8, "fc_dim": 16, "hidden_dim": 16, "embed_dim": 16}
            },
            "text_encoder": {
                "class_path": "aurl.text_encoders.RandomTextEncoder",
                "init_args": {"dim": 8},
            },
        },
        "data": {
            "source": {
                "class_path": "data_modules.datasets.SyntheticActions",
                "init_args": {**catalog, "part": "seen"},
            },
            "targets": [
                {
                    "class_path": "data_modules.datasets.SyntheticActions",
                    "init_args": {**catalog, "part": "unseen"},
                }
            ],
            "clip_len": 4,
            "frame_stride": 2,
            "batch_size": 4,
            "eval_batch_size": 16,
            "num_workers": 2,
        },
    }
    path.write_text(yaml.safe_dump(overrides, sort_keys=False))
    return path


def _start_fit(config: Path, root: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    """Starts ``aurl fit`` on experiments/smoke.yaml + ``config`` in ``root``; output to a log."""
    args = ["fit", "--config", str(REPO / "experiments" / "smoke.yaml"), "--config", str(config)]
    args += ["--trainer.default_root_dir", str(root), *extra]
    with (root.parent / f"{root.name}.log").open("a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "aurl.cli", *args],
            cwd=root.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _finish(proc: subprocess.Popen, root: Path, timeout: float) -> None:
    returncode = proc.wait(timeout=timeout)
    log = (root.parent / f"{root.name}.log").read_text()
    assert returncode == 0, log[-4000:]


@contextlib.contextmanager
def _reaped(procs: list[subprocess.Popen]) -> Iterator[list[subprocess.Popen]]:
    """Yields ``procs`` (started runs; more may be added) and kills those still running after."""
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _resume_and_finish(
    started: list[subprocess.Popen], config: Path, victim: Path, reference: Path, env: dict
) -> None:
    """Resumes the killed run in ``victim`` with ``--ckpt_path last``; waits for it and for the
    uninterrupted run in ``reference`` (``started[0]``) to end well."""
    started.append(_start_fit(config, victim, env, "--ckpt_path", "last"))
    _finish(started[-1], victim, timeout=240)
    _finish(started[0], reference, timeout=240)


def _metrics(root: Path, version: int) -> list[dict[str, float]]:
    return read_metric_rows(root / "csv" / f"version_{version}" / "metrics.csv")


def _test_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    (row,) = [r for r in rows if any(k.startswith("test/") for k in r)]
    return {k: v for k, v in row.items() if k.startswith("test/")}


def _train_losses(rows: list[dict[str, float]], first_epoch: int = 0) -> dict[int, float]:
    """``{step: train/loss}`` of the steps of epochs ``first_epoch`` and later."""
    return {
        int(r["step"]): r["train/loss"]
        for r in rows
        if "train/loss" in r and r["epoch"] >= first_epoch
    }


@pytest.mark.slow
def test_killed_training_resumes_from_the_last_epoch_to_the_same_result(tmp_path: Path) -> None:
    synthetic_root = tmp_path / "synthetic"
    # Generated once here, so that the two concurrent runs only read it.
    SyntheticActions(synthetic_root, **TINY_SYNTHETIC).prepare()
    config = _resume_overrides(tmp_path / "tiny.yaml", synthetic_root)
    env = subprocess_env(AURL_CACHE_DIR=str(tmp_path / "cache"))
    reference, victim = tmp_path / "reference", tmp_path / "victim"
    started = [_start_fit(config, reference, env), _start_fit(config, victim, env)]
    killed = started[1]
    with _reaped(started):
        last = victim / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 240
        while not last.exists() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert last.exists(), "no epoch-end checkpoint was written"
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
        # It died before the end: the run wrote no test scores.
        assert not any(k.startswith("test/") for r in _metrics(victim, 0) for k in r)
        resume_epoch = torch.load(last, weights_only=True)["epoch"] + 1
        assert resume_epoch < RESUME_EPOCHS

        _resume_and_finish(started, config, victim, reference, env)

    expected, got = _metrics(reference, 0), _metrics(victim, 1)
    # The resumed run starts at the first unfinished epoch and retraces the reference exactly.
    expected_losses = _train_losses(expected, resume_epoch)
    assert _train_losses(got).keys() == expected_losses.keys()
    assert _train_losses(got) == pytest.approx(expected_losses, abs=1e-6)
    assert per_epoch(got, "val/top1") == {
        e: v for e, v in per_epoch(expected, "val/top1").items() if e >= resume_epoch
    }
    scores = _test_scores(expected)
    assert scores and _test_scores(got) == pytest.approx(scores, abs=1e-6)
    final = [
        torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in (reference, victim)
    ]
    assert final[0]["global_step"] == final[1]["global_step"]
    assert final[0]["state_dict"].keys() == final[1]["state_dict"].keys()
    for name, value in final[0]["state_dict"].items():
        other = final[1]["state_dict"][name]
        if isinstance(value, dict):  # the class generator's random stream
            value, other = value["rng_state"], other["rng_state"]
        assert torch.equal(value, other), name


# --- 3b. killed mid-epoch -----------------------------------------------------------------
MID_EPOCH_EPOCHS = 3  # one more after the resumed epoch: it must be whole and the same
MID_EPOCH_BATCH = 2  # batches of 2 make epochs of several steps
CHECKPOINT_EVERY = 3  # steps between two last-in-epoch.ckpt
KILL_STEP = 6  # a step inside epoch 1


def _mid_epoch_overrides(path: Path, synthetic_root: Path, *callbacks: dict[str, Any]) -> Path:
    """The kill-and-resume config of 3. with the house checkpoints ``last.ckpt`` and
    ``last-in-epoch.ckpt`` (of experiments/defaults/callbacks.yaml), the latter written every
    ``CHECKPOINT_EVERY`` steps instead of every 30 minutes, plus ``callbacks``."""
    config = yaml.safe_load(_resume_overrides(path, synthetic_root).read_text())
    house = cli_helpers.load_yaml(cli_helpers.EXPERIMENTS / "defaults" / "callbacks.yaml")
    last = {c.get("init_args", {}).get("filename"): c for c in house}
    in_epoch = last["last-in-epoch"]["init_args"]
    in_epoch.update(every_n_train_steps=CHECKPOINT_EVERY, train_time_interval=None)
    config["trainer"]["max_epochs"] = MID_EPOCH_EPOCHS
    config["trainer"]["callbacks"][0:1] = [last["last"], last["last-in-epoch"]]
    config["trainer"]["callbacks"] += callbacks
    config["data"]["batch_size"] = MID_EPOCH_BATCH
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.slow
def test_killed_mid_epoch_training_resumes_from_its_last_checkpoint_to_the_same_result(
    tmp_path: Path,
) -> None:
    # Two persistent DataLoader workers, SIGKILL right after last-in-epoch.ckpt of step
    # KILL_STEP was written; the resumed run continues that epoch with the next batch (the
    # loader's position is in the checkpoint) and must end where an uninterrupted run ends:
    # bit for bit on a CPU (torch.equal), as it computes the same steps on the same batches.
    synthetic_root = tmp_path / "synthetic"
    SyntheticActions(synthetic_root, **TINY_SYNTHETIC).prepare()
    config = _mid_epoch_overrides(tmp_path / "tiny.yaml", synthetic_root)
    killer = {
        "class_path": "tests.reliability_helpers.KillAfterStep",
        "init_args": {"step": KILL_STEP, "marker": str(tmp_path / "killed")},
    }
    victim_config = _mid_epoch_overrides(tmp_path / "victim.yaml", synthetic_root, killer)
    # The killer lives in tests/, which the child imports from the repository.
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = subprocess_env(AURL_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=python_path)
    reference, victim = tmp_path / "reference", tmp_path / "victim"
    started = [_start_fit(config, reference, env), _start_fit(victim_config, victim, env)]
    killed = started[1]
    with _reaped(started):
        log = victim.parent / "victim.log"
        assert killed.wait(timeout=240) == -signal.SIGKILL, log.read_text()[-4000:]
        checkpoint = victim / "checkpoints" / "last-in-epoch.ckpt"
        state = torch.load(checkpoint, weights_only=True)
        assert state["global_step"] == KILL_STEP and state["epoch"] == 1
        batches_done = state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
        assert state["ZeroShotDataModule"]["train_loader"]["loader"]  # the loader's position

        # `last` picks the newer of last.ckpt (end of epoch 0) and last-in-epoch.ckpt.
        _resume_and_finish(started, victim_config, victim, reference, env)

    expected, got = _metrics(reference, 0), _metrics(victim, 1)
    # The resumed run starts with the batch after the checkpoint (its loss is logged at step
    # KILL_STEP, before the optimiser step) and retraces the reference exactly: the same
    # batches in the same order, the same dropout and class-generator draws.
    expected_losses = {s: v for s, v in _train_losses(expected).items() if s >= KILL_STEP}
    assert expected_losses and _train_losses(got) == expected_losses
    assert per_epoch(got, "val/top1") == {
        e: v for e, v in per_epoch(expected, "val/top1").items() if e >= 1
    }
    scores = _test_scores(expected)
    assert scores and _test_scores(got) == scores
    final = [
        torch.load(r / "checkpoints" / "last.ckpt", weights_only=True) for r in (reference, victim)
    ]
    assert final[0]["global_step"] == final[1]["global_step"]
    steps_per_epoch = final[0]["global_step"] // MID_EPOCH_EPOCHS
    # The kill came in the middle of epoch 1.
    assert 0 < batches_done["processed"] < steps_per_epoch
    assert steps_per_epoch + batches_done["processed"] == KILL_STEP
    assert final[0]["state_dict"].keys() == final[1]["state_dict"].keys()
    for name, value in final[0]["state_dict"].items():
        other = final[1]["state_dict"][name]
        if isinstance(value, dict):  # the class generator's random stream
            value, other = value["rng_state"], other["rng_state"]
        assert torch.equal(value, other), name
