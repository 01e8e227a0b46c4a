"""Helpers of tests/test_reliability.py: a generated corpus of broken videos in a real Kinetics
layout, a callback that records what each batch held, log capture that also sees DataLoader
workers, the DDP worker of the non-finite-loss test (``python -m tests.reliability_helpers
ddp-nonfinite OUT_DIR``) and a callback that kills its own ``aurl fit`` mid-epoch."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import re
import signal
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from aurl.callbacks import NonFiniteGuard
from aurl.module import AURLModule
from data_modules.datasets import Kinetics700
from data_modules.video_writer import write_video
from tests.tiny import ColourData, find_callback, tiny_module, tiny_trainer, write_audio_only

TEXT_DIM = 8
# Frames of a good video; clips are CLIP_LEN frames, so a SHORT_FRAMES video loops.
GOOD_FRAMES = 8
SHORT_FRAMES = 2
CLIP_LEN = 4
# The damaged video has exactly one clip's frames: every clip decodes all of them, so whether
# FFmpeg conceals the damage cannot change from one epoch to the next.
DAMAGED_FRAMES = CLIP_LEN

# What the dataset must say about each kind of bad file (VideoDecodeError reasons).
BAD_KINDS: dict[str, str] = {
    "truncated": r"cannot open|decoding failed|stream ends",
    "zero_bytes": r"empty file \(0 bytes\)",
    "text": r"cannot open",
    "audio_only": r"no video stream \(streams: audio\)",
    "unreadable": r"Permission denied",
}
# Overwritten middle bytes: H.264 may conceal the damage (the video is used) or fail (skipped).
DAMAGED = "overwritten"


@dataclass
class Corpus:
    """A Kinetics-700 split of good and broken videos, and which file is which."""

    catalog: Kinetics700
    good: set[str] = field(default_factory=set)  # decodable (the short ones included)
    short: set[str] = field(default_factory=set)  # shorter than one clip: good, padded
    bad: dict[str, str] = field(default_factory=dict)  # path -> kind; on disk, never decodable
    damaged: set[str] = field(default_factory=set)  # middle bytes overwritten: either way
    missing: set[str] = field(default_factory=set)  # listed in the CSV, absent on disk


def _noise_video(path: Path, num_frames: int, rng: np.random.Generator) -> Path:
    frames = rng.integers(0, 256, (num_frames, 32, 32, 3), dtype=np.uint8)
    return write_video(path, frames, fps=8, gop_size=num_frames)


def _write_bad(path: Path, kind: str, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        data = _noise_video(path, GOOD_FRAMES, rng).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is a text file with a video's name\n")
    elif kind == "audio_only":
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio_only(path)
    elif kind == "unreadable":
        _noise_video(path, GOOD_FRAMES, rng).chmod(0)
    elif kind == DAMAGED:
        data = bytearray(_noise_video(path, DAMAGED_FRAMES, rng).read_bytes())
        middle = len(data) // 2
        data[middle - 100 : middle + 100] = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    else:
        raise ValueError(f"unknown bad kind {kind!r}")


def build_kinetics_corpus(
    root: Path,
    split: str,
    classes: Sequence[str],
    kinds: Sequence[str],
    good_per_class: int = 3,
    seed: int = 0,
) -> Corpus:
    """Writes ``root/<split>/<label>/<id>_<start>_<end>.mp4`` files and ``root/<split>.csv``.

    Each class gets ``good_per_class`` good videos, one video shorter than a clip, one file of
    each of ``kinds`` (``BAD_KINDS`` keys or ``DAMAGED``) and one CSV row whose file is missing.
    The class list (``root/<split>_classes.txt``) holds exactly ``classes``.
    """
    rng = np.random.default_rng(seed)
    class_list = root / f"{split}_classes.txt"
    class_list.parent.mkdir(parents=True, exist_ok=True)
    class_list.write_text("\n".join(classes) + "\n")
    corpus = Corpus(Kinetics700(root, root / f"{split}.csv", split, class_list, name=f"k_{split}"))
    rows = []
    for c, label in enumerate(classes):
        names = [f"good{i}" for i in range(good_per_class)] + ["short", *kinds, "missing"]
        for start, name in enumerate(names):
            youtube_id = f"c{c}{name}"
            rows.append([label, youtube_id, start, start + 10, split])
            path = root / split / label / f"{youtube_id}_{start:06d}_{start + 10:06d}.mp4"
            if name.startswith("good"):
                _noise_video(path, GOOD_FRAMES, rng)
                corpus.good.add(str(path))
            elif name == "short":
                _noise_video(path, SHORT_FRAMES, rng)
                corpus.good.add(str(path))
                corpus.short.add(str(path))
            elif name == "missing":
                corpus.missing.add(str(path))
            else:
                _write_bad(path, name, rng)
                if name == DAMAGED:
                    corpus.damaged.add(str(path))
                else:
                    corpus.bad[str(path)] = name
    with (root / f"{split}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows(rows)
    return corpus


class BatchRecorder(L.Callback):
    """Records the used and skipped paths of every batch, by ``(stage, epoch)``."""

    def __init__(self) -> None:
        self.used: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.skipped: dict[tuple[str, int], list[str]] = defaultdict(list)

    def _record(self, stage: str, trainer: L.Trainer, batch: dict[str, Any]) -> None:
        key = (stage, trainer.current_epoch if stage != "test" else 0)
        self.used[key] += list(batch["path"])
        self.skipped[key] += list(batch["skipped"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._record("train", trainer, batch)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not trainer.sanity_checking:
            self._record("val", trainer, batch)

    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._record("test", trainer, batch)


@contextlib.contextmanager
def log_to_file(logger_name: str, path: Path) -> Iterator[Path]:
    """Appends the WARNING records of ``logger_name`` to ``path``, DataLoader workers included.

    Forked workers inherit the handler; the file is opened for appending, so every process's
    lines land in it whole (pytest's caplog lives in one process's memory and misses them).
    """
    handler = logging.FileHandler(path, mode="a")
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        handler.close()


def finite_report(checkpoint: dict[str, Any]) -> list[str]:
    """Names of the non-finite floating tensors of a checkpoint's weights and optimizer state."""
    bad = []

    def visit(value: Any, name: str) -> None:
        if isinstance(value, torch.Tensor):
            if value.is_floating_point() and not value.isfinite().all():
                bad.append(name)
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, f"{name}.{key}")
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                visit(item, f"{name}[{i}]")

    visit(checkpoint["state_dict"], "state_dict")
    visit(checkpoint.get("optimizer_states", []), "optimizer_states")
    return bad


class Faults(L.Callback):
    """Breaks chosen training batches in place before the module sees them.

    Args:
        nan_steps: ``{global_step: ranks}``: every clip of that step's batch becomes NaN on
            those ranks.
        empty_steps: ``{global_step: ranks}``: that step's batch loses every item (as if all
            its videos were unreadable) on those ranks.
    """

    def __init__(
        self,
        nan_steps: dict[int, Sequence[int]] | None = None,
        empty_steps: dict[int, Sequence[int]] | None = None,
    ) -> None:
        self.nan_steps = nan_steps or {}
        self.empty_steps = empty_steps or {}
        self.before: dict[int, dict[str, torch.Tensor]] = {}
        self.after: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step, rank = trainer.global_step, trainer.global_rank
        if rank in self.nan_steps.get(step, ()):
            batch["video"].fill_(float("nan"))
        if rank in self.empty_steps.get(step, ()):
            batch["skipped"] = list(batch["path"])
            batch["video"] = batch["video"][:0]
            batch["label"] = batch["label"][:0]
            batch["class_name"], batch["path"] = [], []
        if step in self.nan_steps or step in self.empty_steps:
            self.before[step] = _state_and_momentum(pl_module, trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # global_step has moved on by one: the state recorded is the one after the fault's step.
        step = trainer.global_step - 1
        if step in self.before:
            self.after[step] = _state_and_momentum(pl_module, trainer)


class KillAfterStep(L.Callback):
    """SIGKILLs its own process once, at the first training batch after ``step`` optimiser
    steps: the checkpoints of step ``step`` are written by then (ModelCheckpoint saves at the
    end of a batch), the next batch has not started.

    Args:
        step: the global step to die at.
        marker: a file created just before dying; when it exists the callback does nothing,
            so a run resumed with the same config lives.
    """

    def __init__(self, step: int, marker: str) -> None:
        self.step = step
        self.marker = Path(marker)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)


def _state_and_momentum(module: L.LightningModule, trainer: L.Trainer) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in module.state_dict().items() if torch.is_tensor(v)}
    optimizer = trainer.optimizers[0]
    for i, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
        buffer = optimizer.state.get(param, {}).get("momentum_buffer")
        if buffer is not None:
            state[f"momentum.{i}"] = buffer.detach().clone()
    return state


class SaveRankResult(L.Callback):
    """Saves what the DDP test checks to ``<folder>/rank<r>.pt`` when each rank's fit ends."""

    def __init__(self, folder: Path, faults: Faults) -> None:
        self.folder = folder
        self.faults = faults

    def on_fit_end(self, trainer: L.Trainer, pl_module: AURLModule) -> None:
        result = {
            "nonfinite_steps": find_callback(trainer, NonFiniteGuard).nonfinite_steps,
            "global_step": trainer.global_step,
            "params": {k: p.detach().clone() for k, p in pl_module.named_parameters()},
            "before": self.faults.before,
            "after": self.faults.after,
        }
        torch.save(result, self.folder / f"rank{trainer.global_rank}.pt")


def _ddp_nonfinite_main(out_dir: str) -> None:
    """Trains on 2 CPU ranks with a NaN batch on rank 1 only, then an empty batch on rank 0."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    L.seed_everything(0)
    out = Path(out_dir)
    module = tiny_module(out / "cache")
    faults = Faults(nan_steps={1: [1]}, empty_steps={3: [0]})
    trainer = tiny_trainer(
        out,
        [faults, SaveRankResult(out, faults)],
        devices=2,
        # Forked ranks skip a second import of torch and Lightning (seconds on a busy machine).
        strategy="ddp_fork",
        limit_val_batches=0,
    )
    trainer.fit(module, datamodule=ColourData(per_class=4, batch_size=4))


def warned_paths(log_file: Path, paths: Sequence[str]) -> dict[str, list[str]]:
    """For each path, the 'skipping unreadable video' lines of ``log_file`` that name it."""
    lines = log_file.read_text().splitlines() if log_file.exists() else []
    found: dict[str, list[str]] = {}
    for path in paths:
        pattern = re.compile(rf"skipping unreadable video {re.escape(path)}: (.+)$")
        found[path] = [m.group(1) for line in lines if (m := pattern.search(line))]
    return found


if __name__ == "__main__":
    if sys.argv[1:2] != ["ddp-nonfinite"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m tests.reliability_helpers ddp-nonfinite OUT_DIR")
    _ddp_nonfinite_main(sys.argv[2])
