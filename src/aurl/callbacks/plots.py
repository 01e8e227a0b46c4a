"""Plots of a test epoch: embedding maps, per-class accuracy and confusion matrices, and the
embeddings themselves as a W&B table (its 2D projection panel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


EMBEDDING_TABLE_COLUMNS = ["set", "kind", "index", "class", "embedding"]


def embedding_table_rows(result: EvalResult, max_videos: int) -> list[list[Any]]:
    """Rows of :data:`EMBEDDING_TABLE_COLUMNS` for one set: its class-name embeddings (kind
    ``class name``, index = class index) and at most ``max_videos`` video embeddings (kind
    ``video``, index = position in the set, class = true class), a fixed random subset when
    there are more."""
    num_videos = result.video_embeddings.shape[0]
    picked = torch.arange(num_videos)
    if num_videos > max_videos:
        order = torch.randperm(num_videos, generator=torch.Generator().manual_seed(0))
        picked = order[:max_videos].sort().values  # (max_videos,)
    rows = [
        [result.name, "class name", c, name, result.class_embeddings[c].tolist()]
        for c, name in enumerate(result.class_names)
    ]
    for i in picked.tolist():
        label = int(result.labels[i])
        rows.append(
            [
                result.name,
                "video",
                i,
                result.class_names[label],
                result.video_embeddings[i].tolist(),
            ]
        )
    return rows


class EmbeddingPlots(L.Callback):
    """After testing, writes an embedding map and per-class accuracy bars for each test set,
    and a confusion matrix for each set of at most ``max_confusion_classes`` classes.

    PNGs go to ``<default_root_dir>/plots/`` and, with a :class:`WandbLogger`, to W&B, with
    the table ``test/embedding_table`` of :func:`embedding_table_rows` for every set (W&B's 2D
    projection of the ``embedding`` column, coloured by ``set``, ``kind`` or ``class``).

    Args:
        max_confusion_classes: Largest class count of a set that gets a confusion matrix.
        max_table_videos: Video rows per set in the W&B table (0: no table).
    """

    def __init__(self, max_confusion_classes: int = 60, max_table_videos: int = 1000) -> None:
        self.max_confusion_classes = max_confusion_classes
        self.max_table_videos = max_table_videos
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
        wandb_loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if wandb_loggers and self.max_table_videos > 0:
            rows = [
                row
                for result in pl_module.test_results
                for row in embedding_table_rows(result, self.max_table_videos)
            ]
            for logger in wandb_loggers:
                logger.log_table("test/embedding_table", EMBEDDING_TABLE_COLUMNS, rows)
