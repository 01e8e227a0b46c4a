"""Callbacks for people: embedding plots, per-class accuracy and the end-of-run summary."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from aurl.functional import confusion_matrix, zero_shot_topk_per_class
from aurl.module import AURLModule, EvalResult

log = logging.getLogger(__name__)


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


class RunSummary(L.Callback):
    """Prints the test scores and where the run folder, checkpoint and plots are."""

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: AURLModule) -> None:
        lines = ["", "=" * 72, "aurl run summary"]
        for result in pl_module.test_results:
            m = result.metrics
            lines.append(
                f"  {result.name:<24} top-1 {100 * m['top1']:6.2f}%  top-5 {100 * m['top5']:6.2f}%"
                f"  Closeness {m['closeness']:.4f}  Dispersion {m['dispersion']:.4f}"
                f"  ({len(result.class_names)} classes, {len(result.labels)} videos)"
            )
            if "half_top1_mean" in m:
                lines.append(
                    f"  {'':<24} 50% splits top-1 {100 * m['half_top1_mean']:.2f}"
                    f" +- {100 * m['half_top1_std']:.2f}%"
                )
            if "gzsl_h" in m:
                lines.append(
                    f"  {'':<24} GZSL seen {100 * m['gzsl_seen']:.2f}%  unseen "
                    f"{100 * m['gzsl_unseen']:.2f}%  H {100 * m['gzsl_h']:.2f}%"
                )
            if "gzsl_cal_h" in m:
                lines.append(
                    f"  {'':<24} calibrated (gamma {m['gzsl_gamma']:.3f}): seen "
                    f"{100 * m['gzsl_cal_seen']:.2f}%  unseen {100 * m['gzsl_cal_unseen']:.2f}%"
                    f"  H {100 * m['gzsl_cal_h']:.2f}%"
                )
            attributes = [k for k in m if k.startswith("attr_")]
            if attributes:
                lines.append(
                    f"  {'':<24} top-1 has the right "
                    + ", ".join(f"{k[5:]} {100 * m[k]:.1f}%" for k in attributes)
                )
        if pl_module.calibration:
            c = pl_module.calibration
            lines.append(
                f"  GZSL calibration on validation data: gamma {c['gamma']:.3f}, H "
                f"{100 * c['gzsl_h_uncalibrated']:.2f}% -> {100 * c['gzsl_h']:.2f}%"
            )
        lines.append(f"  run folder: {Path(trainer.default_root_dir).resolve()}")
        best = trainer.checkpoint_callback
        if best is not None and best.best_model_path:
            lines.append(f"  best checkpoint: {best.best_model_path}")
        for callback in trainer.checkpoint_callbacks:
            # The monitor-less checkpoint (filename "last") is the resume point.
            if callback is not best and callback.monitor is None and callback.best_model_path:
                lines.append(f"  last checkpoint: {callback.best_model_path}")
        plots = [cb for cb in trainer.callbacks if isinstance(cb, EmbeddingPlots)]
        if plots and plots[0].paths:
            lines.append(f"  plots: {plots[0].paths[0].parent}")
        lines.append("=" * 72)
        print("\n".join(lines), flush=True)
