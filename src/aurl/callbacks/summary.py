"""The end-of-run summary printed for people: scores, run folder, checkpoints and plots."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from aurl.callbacks.plots import EmbeddingPlots
from aurl.module import AURLModule


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
            # The first monitor-less checkpoint (filename "last", rewritten at every epoch end)
            # holds the final state; the house's next one ("last-in-epoch") is older by then.
            if callback is not best and callback.monitor is None and callback.best_model_path:
                lines.append(f"  last checkpoint: {callback.best_model_path}")
                break
        plots = [cb for cb in trainer.callbacks if isinstance(cb, EmbeddingPlots)]
        if plots and plots[0].paths:
            lines.append(f"  plots: {plots[0].paths[0].parent}")
        lines.append("=" * 72)
        print("\n".join(lines), flush=True)
