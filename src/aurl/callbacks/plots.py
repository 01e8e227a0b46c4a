"""Plots of a test epoch: embedding maps, per-class accuracy and confusion matrices."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from aurl.functional import EvalResult, confusion_matrix, zero_shot_topk_per_class
from aurl.module import AURLModule


def pca_2d(points: torch.Tensor) -> torch.Tensor:
    """Projects ``(N, D)`` points on their first two principal components: ``(N, 2)``."""
    centred = points - points.mean(dim=0, keepdim=True)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)  # v: (min(N, D), D)
    return centred @ v[:2].T


def plot_embedding_map(result: EvalResult, path: Path) -> Path:
    """PCA map of the video embeddings (dots) and class-name embeddings (stars) of a set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_videos = result.video_embeddings.shape[0]
    coords = pca_2d(torch.cat([result.video_embeddings, result.class_embeddings]))  # (N + C, 2)
    videos, classes = coords[:num_videos], coords[num_videos:]
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(9, 8))
    ax.scatter(
        videos[:, 0], videos[:, 1], c=[cmap(int(y) % 20) for y in result.labels], s=8, alpha=0.6
    )
    ax.scatter(
        classes[:, 0],
        classes[:, 1],
        c=[cmap(c % 20) for c in range(len(result.class_names))],
        marker="*",
        s=160,
        edgecolors="black",
    )
    if len(result.class_names) <= 40:
        for (x, y), name in zip(classes.tolist(), result.class_names, strict=True):
            ax.annotate(name, (x, y), fontsize=6)
    ax.set_title(
        f"{result.name}: video (dots) and class-name (stars) embeddings, PCA; "
        f"top-1 {100 * result.metrics['top1']:.1f}%"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_per_class_accuracy(result: EvalResult, path: Path) -> Path:
    """Bar chart of each class's top-1 accuracy, sorted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = zero_shot_topk_per_class(result.video_embeddings, result.class_embeddings, result.labels)
    order = torch.argsort(torch.nan_to_num(acc, nan=-1.0), descending=True).tolist()
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(order)), 4.5))
    ax.bar(range(len(order)), [100 * float(acc[i]) for i in order])
    ax.set_xticks(
        range(len(order)), [result.class_names[i] for i in order], rotation=90, fontsize=6
    )
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{result.name}: per-class top-1")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_confusion(result: EvalResult, path: Path) -> Path:
    """Confusion matrix of the top-1 predictions (rows: true class, normalised per row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = confusion_matrix(result.video_embeddings, result.class_embeddings, result.labels)
    rows = counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1)  # (C, C)
    num_classes = len(result.class_names)
    side = max(6.0, 0.22 * num_classes + 3)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(rows.numpy(), cmap="viridis", vmin=0, vmax=1)
    ticks = range(num_classes)
    ax.set_xticks(ticks, result.class_names, rotation=90, fontsize=6)
    ax.set_yticks(ticks, result.class_names, fontsize=6)
    ax.set_xlabel("top-1 class")
    ax.set_ylabel("true class")
    ax.set_title(f"{result.name}: confusion of the top-1 (share of each true class)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


class EmbeddingPlots(L.Callback):
    """After testing, writes an embedding map and per-class accuracy bars for each test set,
    and a confusion matrix for each set of at most ``max_confusion_classes`` classes.

    PNGs go to ``<default_root_dir>/plots/`` and, with a :class:`WandbLogger`, to W&B.
    """

    def __init__(self, max_confusion_classes: int = 60) -> None:
        self.max_confusion_classes = max_confusion_classes
        self.paths: list[Path] = []

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: AURLModule) -> None:
        folder = Path(trainer.default_root_dir) / "plots"
        folder.mkdir(parents=True, exist_ok=True)
        for result in pl_module.test_results:
            maps = plot_embedding_map(result, folder / f"{result.name}_embeddings.png")
            bars = plot_per_class_accuracy(result, folder / f"{result.name}_per_class_top1.png")
            plots = {"embeddings": maps, "per_class_top1": bars}
            if len(result.class_names) <= self.max_confusion_classes:
                path = folder / f"{result.name}_confusion.png"
                plots["confusion"] = plot_confusion(result, path)
            self.paths += plots.values()
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    for kind, path in plots.items():
                        logger.log_image(f"test/{result.name}/{kind}", [str(path)])
