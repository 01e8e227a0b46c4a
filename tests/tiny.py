"""The tiny zero-shot world that model, checkpoint and reliability tests share.

In-memory colour-shape clips whose answer lies in the pixels (the colour word sets one
channel's mean brightness and the shape word lights up one frame, so a tower that learns both
attributes can name unseen colour-shape pairs), their datamodule, a narrow AURL model and the
CPU trainer the tests run it with. Plain functions, so that subprocess entry points (DDP tests)
use them as the fixtures do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from aurl.callbacks import (
    NonFiniteGuard,
    RandomStateCheckpoint,
    ResumeSchedule,
    SkippedVideoCounter,
)
from aurl.class_generator import ClassGenerator
from aurl.class_space import ClassSpace, EvalSet
from aurl.losses import AURLLoss
from aurl.module import AURLModule
from aurl.text_encoders import RandomTextEncoder
from aurl.towers import SemanticTower, VisualTower
from data_modules.clip_dataset import collate_skip
from data_modules.samplers import EpochShuffleSampler
from data_modules.video_writer import write_video

COLOURS = ["red", "green", "blue", "yellow"]
SHAPES = ["square", "circle", "triangle"]
TEXT_DIM = 8  # the size of the tiny word vectors of these words


class ColourClips(Dataset):
    """``per_class`` noisy clips of shape (3, 4, size, size) for each ``"colour shape"`` name."""

    def __init__(self, class_names: list[str], per_class: int, seed: int, size: int = 16) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.items = []
        for label, name in enumerate(class_names):
            colour, shape = name.split()
            c = COLOURS.index(colour)
            for i in range(per_class):
                video = 0.3 * torch.randn(3, 4, size, size, generator=gen)  # (C, T, H, W)
                video[c % 3] += 1.0 + c // 3  # yellow: red's channel, twice as bright
                video[:, SHAPES.index(shape)] += 1.0
                self.items.append(
                    {"video": video, "label": label, "class_name": name, "path": f"{name}{i}"}
                )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]


class ColourData(L.LightningDataModule):
    """Seen colour-shape classes for training and validation, unseen ones for testing.

    Training batches come from an :class:`EpochShuffleSampler` sharded over the DDP ranks.

    Args:
        per_class: clips per class.
        batch_size: training batch size (evaluation batches hold 8).
        size: frame side of the clips.
        half_splits: 50% class splits of the test set (indices into its 4 classes).
    """

    def __init__(
        self,
        per_class: int = 4,
        batch_size: int = 4,
        size: int = 16,
        half_splits: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        names = [f"{c} {s}" for c in COLOURS for s in SHAPES]
        test_names = ["red circle", "blue triangle", "yellow square", "green square"]
        seen = [n for n in names if n not in test_names]
        test_set = EvalSet("unseen", test_names, half_splits=half_splits)
        self.class_space = ClassSpace(seen[:6], seen[6:], [test_set])
        self.per_class = per_class
        self.batch_size = batch_size
        self.size = size

    def _clips(self, names: list[str], seed: int) -> ColourClips:
        return ColourClips(names, self.per_class, seed, size=self.size)

    def train_dataloader(self) -> DataLoader:
        dataset = self._clips(self.class_space.train_classes, 0)
        world = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        sampler = EpochShuffleSampler(dataset, world, rank, seed=0)
        return DataLoader(
            dataset, self.batch_size, sampler=sampler, drop_last=True, collate_fn=collate_skip
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._clips(self.class_space.val_classes, 1), 8, collate_fn=collate_skip)

    def test_dataloader(self) -> list[DataLoader]:
        (test_set,) = self.class_space.test_sets
        return [DataLoader(self._clips(test_set.class_names, 2), 8, collate_fn=collate_skip)]


def tiny_module(cache_dir: Path, **kwargs: Any) -> AURLModule:
    """A narrow AURL model (16-d embeddings) with random ``TEXT_DIM``-d class-name embeddings
    unless ``text_encoder`` is given; ``kwargs`` override any argument."""
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


def tiny_trainer(
    root: Path,
    callbacks: Sequence[L.Callback] = (),
    max_nonfinite_steps: int = 5,
    **kwargs: Any,
) -> L.Trainer:
    """A quiet 2-epoch CPU trainer with the reliability callbacks every experiment lists, after
    ``callbacks`` (so a fault injected at batch start is what the guard sees); ``kwargs``
    override any Trainer argument (no logger and no checkpointing unless given)."""
    reliability = [
        NonFiniteGuard(max_nonfinite_steps),
        SkippedVideoCounter(),
        RandomStateCheckpoint(),
        ResumeSchedule(),
    ]
    defaults: dict[str, Any] = dict(
        callbacks=[*callbacks, *reliability],
        default_root_dir=root,
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


def find_callback(trainer: L.Trainer, kind: type[L.Callback]) -> Any:
    """The trainer's one callback of type ``kind``."""
    (callback,) = [cb for cb in trainer.callbacks if isinstance(cb, kind)]
    return callback


def write_audio_only(path: Path) -> Path:
    """Writes a valid media file without a video stream: 4 frames of silent mono AAC."""
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
    return path


# The components of `tiny_module` as `aurl fit` records them (class_path/init_args).
TINY_SPECS: dict[str, Any] = {
    "visual_tower": {
        "class_path": "aurl.towers.VisualTower",
        "init_args": {
            "backbone": "r2plus1d_narrow",
            "backbone_kwargs": {"widths": [4, 4, 8, 8]},
            "embed_dim": 16,
            "hidden_dim": 16,
        },
    },
    "semantic_tower": {
        "class_path": "aurl.towers.SemanticTower",
        "init_args": {"text_dim": TEXT_DIM, "fc_dim": 16, "hidden_dim": 16, "embed_dim": 16},
    },
    "text_encoder": {
        "class_path": "aurl.text_encoders.RandomTextEncoder",
        "init_args": {"dim": TEXT_DIM},
    },
    "loss": {"class_path": "aurl.losses.AURLLoss", "init_args": {"scale": 10.0}},
}
# The evaluation pipeline recorded with them: 4-frame clips of 16x16 frames.
TINY_PREPROCESSING: dict[str, Any] = {
    "clip_len": 4,
    "frame_stride": 1,
    "size": 16,
    "transform": "aurl",
}


def write_cli_checkpoint(
    path: Path, cache_dir: Path, text_encoder: dict[str, Any] | None = None
) -> AURLModule:
    """Writes a checkpoint laid out as ``aurl fit`` writes one (components as
    ``class_path``/``init_args``, the datamodule's hyperparameters) for an untrained
    :func:`tiny_module` built from :data:`TINY_SPECS`; returns that module, in eval mode.

    ``text_encoder`` replaces the spec of the text encoder (its output must be ``TEXT_DIM``-d).
    """
    specs = dict(TINY_SPECS, text_encoder=text_encoder or TINY_SPECS["text_encoder"])
    module = tiny_module(
        cache_dir,
        visual_tower=VisualTower(**specs["visual_tower"]["init_args"]),
        semantic_tower=SemanticTower(**specs["semantic_tower"]["init_args"]),
        loss=AURLLoss(**specs["loss"]["init_args"]),
    )
    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": {**specs, "embedding_cache_dir": str(cache_dir)},
        "datamodule_hyper_parameters": dict(TINY_PREPROCESSING, batch_size=4),
    }
    torch.save(checkpoint, path)
    return module.eval()


def write_colour_videos(folder: Path, count: int, num_frames: int = 6) -> list[Path]:
    """``count`` short 16x16 H.264 videos of random frames, different for each."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        write_video(
            folder / f"video{k}.mp4",
            rng.integers(0, 256, size=(num_frames, 16, 16, 3), dtype=np.uint8),
            fps=8,
        )
        for k in range(count)
    ]
