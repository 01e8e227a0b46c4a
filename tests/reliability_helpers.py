"""Helpers of tests/test_reliability.py: a generated corpus of broken videos in a real Kinetics
layout, a callback that records what each batch held, log capture that also sees DataLoader
workers, and the DDP worker of the non-finite-loss test (``python -m tests.reliability_helpers
ddp-nonfinite OUT_DIR``)."""

from __future__ import annotations

import contextlib
import csv
import logging
import re
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from aurl.class_generator import ClassGenerator
from aurl.losses import AURLLoss
from aurl.module import AURLModule
from aurl.text_encoders import RandomTextEncoder
from aurl.towers import SemanticTower, VisualTower
from data_modules.clip_dataset import collate_skip
from data_modules.datasets import Kinetics700
from data_modules.protocol import EvalSet
from data_modules.samplers import EpochShuffleSampler
from data_modules.video_writer import write_video
from tests.colour_clips import COLOURS, SHAPES, ColourClips

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


def _write_audio_only(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


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
        _write_audio_only(path)
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


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger ``metrics.csv``, with the empty cells left out."""
    with path.open(newline="") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def logged_per_epoch(rows: list[dict[str, float]], key: str) -> dict[int, float]:
    """``{epoch: value}`` of a metric logged once per epoch (an error if logged twice)."""
    values: dict[int, float] = {}
    for row in rows:
        if key in row:
            epoch = int(row["epoch"])
            assert epoch not in values, f"{key} logged twice in epoch {epoch}"
            values[epoch] = row[key]
    return values


def tiny_module(cache_dir: Path, **kwargs: Any) -> AURLModule:
    """A narrow AURL model with random 8-d class-name embeddings (no model files needed)."""
    defaults: dict[str, Any] = dict(
        visual_tower=VisualTower(
            "r2plus1d_narrow", {"widths": (4, 4, 8, 8)}, embed_dim=16, hidden_dim=16
        ),
        semantic_tower=SemanticTower(TEXT_DIM, fc_dim=16, hidden_dim=16, embed_dim=16),
        loss=AURLLoss(),
        text_encoder=RandomTextEncoder(dim=TEXT_DIM),
        class_generator=ClassGenerator("pairwise", num_synthetic=4, seed=0),
        lr=0.05,
        warmup_epochs=0.5,
        embedding_cache_dir=str(cache_dir),
    )
    defaults.update(kwargs)
    return AURLModule(**defaults)


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


# --- in-memory zero-shot data -------------------------------------------------------------
class ColourData(L.LightningDataModule):
    """Seen colour-shape classes for training and validation, unseen ones for testing.

    Training batches come from an :class:`EpochShuffleSampler` sharded over the DDP ranks.
    """

    def __init__(self, per_class: int = 4, batch_size: int = 4) -> None:
        super().__init__()
        names = [f"{c} {s}" for c in COLOURS for s in SHAPES]
        self.test_names = ["red circle", "blue triangle", "yellow square", "green square"]
        seen = [n for n in names if n not in self.test_names]
        self.train_class_names = seen[:6]
        self.val_class_names = seen[6:]
        self.test_sets = [EvalSet("unseen", self.test_names)]
        self.per_class = per_class
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        dataset = ColourClips(self.train_class_names, self.per_class, 0)
        world = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        sampler = EpochShuffleSampler(dataset, world, rank, seed=0)
        return DataLoader(
            dataset, self.batch_size, sampler=sampler, drop_last=True, collate_fn=collate_skip
        )

    def val_dataloader(self) -> DataLoader:
        dataset = ColourClips(self.val_class_names, self.per_class, 1)
        return DataLoader(dataset, 8, collate_fn=collate_skip)

    def test_dataloader(self) -> list[DataLoader]:
        return [
            DataLoader(ColourClips(self.test_names, self.per_class, 2), 8, collate_fn=collate_skip)
        ]


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
            "nonfinite_steps": pl_module.nonfinite_steps,
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
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        # Forked ranks skip a second import of torch and Lightning (seconds on a busy machine).
        strategy="ddp_fork",
        max_epochs=2,
        default_root_dir=out,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        limit_val_batches=0,
        callbacks=[faults, SaveRankResult(out, faults)],
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
