"""The AURL LightningModule: visual + semantic towers trained with the AURL loss."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn

from aurl import functional
from aurl.class_generator import ClassGenerator
from aurl.metrics import EmbeddingCollector, ZeroShotAccuracy
from aurl.optim import build_optimizer, build_warmup_cosine
from aurl.text_encoders import ClassEmbeddingCache, TextEncoder
from aurl.towers import SemanticTower, VisualTower

log = logging.getLogger(__name__)

_COMPONENTS = ("visual_tower", "semantic_tower", "loss", "text_encoder", "class_generator")
# Checkpoint key of the global random states (see AURLModule.on_save_checkpoint).
RNG_STATES_KEY = "aurl_rng_states"


@dataclass
class EvalResult:
    """Embeddings and scores of one evaluation set, kept after a test epoch for plots."""

    name: str
    class_names: list[str]
    video_embeddings: Tensor  # (N, D), L2-normalised
    class_embeddings: Tensor  # (C, D), L2-normalised
    labels: Tensor  # (N,)
    metrics: dict[str, float]


class AURLModule(L.LightningModule):
    """Zero-shot video classification with AURL.

    The module receives built components. Class names come from the datamodule
    (``train_class_names``, ``val_class_names``, ``test_sets``); their text embeddings are
    computed once through an on-disk cache and projected by the semantic tower at every step.

    Args:
        visual_tower: clip -> embedding.
        semantic_tower: text embedding -> embedding; ``None`` keeps the text embeddings fixed
            (the E2E baseline, whose visual tower then projects to the text dimension).
        loss: :class:`aurl.losses.AURLLoss` or :class:`aurl.losses.AlignOnlyLoss`.
        text_encoder: encodes class names.
        class_generator: synthesises classes for ``L_US``; ``None`` disables it.
        optimizer: ``"sgd"`` (momentum 0.9, the paper) or ``"adamw"``.
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay of every parameter.
        warmup_epochs: linear warm-up length in epochs (fractions allowed), then cosine to 0.
        channels_last: convert the visual tower and clips to ``channels_last_3d``.
        embedding_cache_dir: folder of the class-embedding cache (default: see
            :class:`aurl.text_encoders.ClassEmbeddingCache`).
        max_nonfinite_steps: consecutive steps with a non-finite loss tolerated (each is
            skipped and counted) before training stops with an error.

    Faults: a step whose loss is not finite on any rank is skipped on every rank (no parameter,
    BatchNorm statistic or optimizer state changes; with gradient accumulation the whole
    accumulated step is skipped); so is a step whose batches were empty (every video unreadable)
    on every rank, while a rank with an empty batch among ranks with data adds zero gradients.
    ``train/nonfinite_steps`` and ``{train,val,test}/skipped_videos`` are logged per epoch,
    summed over ranks. Checkpoints carry the global random states, restored when ``fit``
    resumes, so a run resumed from an epoch-end checkpoint repeats the uninterrupted run.
    """

    def __init__(
        self,
        visual_tower: VisualTower,
        semantic_tower: SemanticTower | None,
        loss: nn.Module,
        text_encoder: TextEncoder,
        class_generator: ClassGenerator | None = None,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_epochs: float = 1.0,
        channels_last: bool = False,
        embedding_cache_dir: str | None = None,
        max_nonfinite_steps: int = 5,
    ) -> None:
        super().__init__()
        # Built through LightningCLI, the hyperparameters are the parsed config, components
        # included as class_path/init_args, so `load_from_checkpoint` (and `aurl predict`) can
        # rebuild the whole model from a checkpoint. Built in Python, the components are
        # objects whose weights the state dict already holds: leave them out.
        from_cli = _given_hyperparameters.get() is not None
        self.save_hyperparameters(ignore=None if from_cli else list(_COMPONENTS))
        self.visual_tower = visual_tower
        self.semantic_tower = semantic_tower
        self.loss = loss
        self.text_encoder = text_encoder
        self.class_generator = class_generator
        self.embedding_cache = ClassEmbeddingCache(embedding_cache_dir)
        self.val_top1 = ZeroShotAccuracy(top_k=1)
        self.val_top5 = ZeroShotAccuracy(top_k=5)
        self.test_collectors = nn.ModuleList()
        self.test_results: list[EvalResult] = []
        # GZSL calibration chosen on validation data at the last test epoch (gamma, H).
        self.calibration: dict[str, float] = {}
        self._text_embeddings: dict[tuple[str, ...], Tensor] = {}
        self._eval_class_embeddings: Tensor | None = None
        self._nonfinite_in_row = 0
        self.nonfinite_steps = 0
        # Per-epoch counts, logged at each epoch end; the stages' epochs interleave.
        self._epoch_nonfinite = 0
        self._epoch_skipped = {"train": 0, "val": 0, "test": 0}
        self._skip_optimizer_step = False
        self._buffer_backup: list[Tensor] = []

    # --- class names -------------------------------------------------------------------------
    def _encode_names(self, class_names: list[str]) -> Tensor:
        """Text embeddings of ``class_names`` (cached on disk), kept on this module's device.

        The text encoder's model is loaded only on a cache miss, so the size check against the
        semantic tower is made here, on the embeddings, rather than by asking the encoder.
        """
        key = tuple(class_names)
        emb = self._text_embeddings.get(key)
        if emb is None or emb.device != self.device:
            emb = self.embedding_cache.encode(self.text_encoder, class_names)  # (C, text_dim)
            tower = self.semantic_tower
            if tower is not None and tower.text_dim != emb.shape[1]:
                raise ValueError(
                    f"semantic_tower.text_dim={tower.text_dim} but the text encoder gives "
                    f"{emb.shape[1]}-d embeddings; set model.semantic_tower.text_dim"
                )
            emb = emb.to(self.device)
            self._text_embeddings[key] = emb
        return emb

    def _project_classes(self, class_names: list[str]) -> Tensor:
        """Class embeddings from the semantic tower, not normalised: ``(C, D)``."""
        text = self._encode_names(class_names)  # (C, text_dim)
        return self.semantic_tower(text) if self.semantic_tower is not None else text

    def embed_classes(self, class_names: list[str]) -> Tensor:
        """Class-name embeddings in the joint space, L2-normalised: ``(C, D)``."""
        return F.normalize(self._project_classes(class_names), dim=-1)

    def embed_videos(self, video: Tensor) -> Tensor:
        """Clip embeddings, L2-normalised: ``(B, D)`` from ``(B, [K,] C, T, H, W)``."""
        return F.normalize(self.visual_tower(self._maybe_channels_last(video)), dim=-1)

    def _datamodule(self) -> Any:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            raise RuntimeError(
                "AURLModule needs a datamodule exposing train_class_names, val_class_names "
                "and test_sets (e.g. data_modules.ZeroShotDataModule)"
            )
        return datamodule

    # --- setup -------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.hparams.channels_last:
            self.visual_tower.to(memory_format=torch.channels_last_3d)
        if stage == "fit":
            train_names = self._datamodule().train_class_names
            num_classes = len(train_names)
            init_centres = getattr(self.loss, "init_centres", None)
            if init_centres is not None and self.loss.num_classes is None:
                # The loss decides whether its init uses the class embeddings.
                semantic = self._initial_class_embeddings(train_names)  # (C, D)
                init_centres(num_classes, self.visual_tower.embed_dim, semantic)
            elif init_centres is not None and self.loss.num_classes != num_classes:
                raise ValueError(
                    f"loss.num_classes={self.loss.num_classes} but the datamodule has "
                    f"{num_classes} training classes; leave model.loss.num_classes unset"
                )

    def _initial_class_embeddings(self, class_names: list[str]) -> Tensor:
        """Projected class embeddings ``(C, D)`` of the untrained semantic tower, computed in
        eval mode so that BatchNorm's running statistics stay untouched."""
        tower = self.semantic_tower
        was_training = tower is not None and tower.training
        if tower is not None:
            tower.eval()
        with torch.no_grad():
            emb = self._project_classes(class_names)  # (C, D)
        if was_training:
            tower.train()
        return emb

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Centres are created at fit setup; evaluating or predicting from a checkpoint creates
        # them from its shape so the state dict loads.
        centres = checkpoint["state_dict"].get("loss.centres")
        allocate = getattr(self.loss, "allocate_centres", None)
        if centres is not None and allocate is not None and self.loss.num_classes is None:
            allocate(*centres.shape)
            self.loss.to(self.device)
        # Resuming training continues the random streams (dropout) where the checkpoint left
        # them: resumed from an epoch end, the run repeats the uninterrupted one exactly.
        trainer = self._trainer
        states = checkpoint.get(RNG_STATES_KEY)
        if states is not None and trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            _set_rng_states(states)

    # --- training ----------------------------------------------------------------------------
    def on_train_start(self) -> None:
        # A resumed optimiser holds the learning rate of the schedule it was saved with; when
        # the run was re-planned (e.g. a larger max_epochs) the first resumed step must already
        # use the new schedule. For an unchanged schedule this rewrites the same values.
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                continue
            for group, base_lr, lr_lambda in zip(
                scheduler.optimizer.param_groups,
                scheduler.base_lrs,
                scheduler.lr_lambdas,
                strict=True,
            ):
                group["lr"] = base_lr * lr_lambda(scheduler.last_epoch)

    def on_train_epoch_start(self) -> None:
        self._epoch_skipped["train"] = 0
        self._epoch_nonfinite = 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        self._count_skipped(batch, "train")
        video, labels = batch["video"], batch["label"]
        has_data = video.shape[0] > 0
        out: dict[str, Tensor] = {}
        if has_data:
            self._backup_buffers()
            video_emb = self.visual_tower(self._maybe_channels_last(video))  # (B, D)
            # Raw (not normalised) class embeddings: the loss sees the tower output.
            class_emb = self._project_classes(self._datamodule().train_class_names)  # (C, D)
            synthetic = None
            if self.class_generator is not None:
                synthetic = self.class_generator(class_emb, self.loss.centres)  # 2 x (M, D)
            out = self.loss(video_emb, class_emb, labels, synthetic)
        # Every rank must take the same branch: under DDP a rank that skips its backward leaves
        # the others waiting in the gradient all-reduce (Lightning refuses a None loss there).
        zero = torch.zeros((), device=self.device)
        nonfinite = (~torch.isfinite(out["loss"])).float() if has_data else zero
        local = torch.stack([nonfinite, zero + has_data])  # (2,): non-finite, has data
        # Numbers of ranks with a non-finite loss and with data (unchanged without DDP).
        reduced = self.trainer.strategy.reduce(local, reduce_op="sum")
        nonfinite_ranks, ranks_with_data = reduced.tolist()
        if nonfinite_ranks > 0:
            if has_data:
                self._restore_buffers()  # BatchNorm statistics of the bad batch
            self._skip_nonfinite(out.get("loss"), int(nonfinite_ranks))
            return self._skipped_step()
        if ranks_with_data == 0:
            return self._skipped_step()
        self._nonfinite_in_row = 0
        if not has_data:
            return self._zero_loss()  # the other ranks' batches make the step
        batch_size = video.shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=batch_size)
        for name, value in out.items():
            if name != "loss":
                self.log(f"train/{name}", value, batch_size=batch_size)
        return out["loss"]

    def _maybe_channels_last(self, video: Tensor) -> Tensor:
        if self.hparams.channels_last and video.dim() == 5:
            return video.contiguous(memory_format=torch.channels_last_3d)
        return video

    def _backup_buffers(self) -> None:
        """Copies the buffers (BatchNorm statistics) that a forward pass updates in place."""
        buffers = list(self.buffers())
        if len(self._buffer_backup) != len(buffers):
            self._buffer_backup = [b.detach().clone() for b in buffers]
        else:
            for backup, buffer in zip(self._buffer_backup, buffers, strict=True):
                backup.copy_(buffer)

    def _restore_buffers(self) -> None:
        with torch.no_grad():
            for backup, buffer in zip(self._buffer_backup, self.buffers(), strict=True):
                buffer.copy_(backup)

    def _zero_loss(self) -> Tensor:
        """A zero loss whose backward gives every trainable parameter a zero gradient (so DDP
        reduces the same buckets on every rank), whatever the values of the parameters."""
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    def _skipped_step(self) -> Tensor:
        """Makes this step a no-op: zero gradients now, none at all at the optimizer step."""
        self._skip_optimizer_step = True
        return self._zero_loss()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self._skip_optimizer_step:
            # Optimizers skip parameters without a gradient: no update, no weight decay, and
            # momentum and Adam moments stay as they are.
            optimizer.zero_grad(set_to_none=True)
            self._skip_optimizer_step = False

    def _skip_nonfinite(self, loss: Tensor | None, num_ranks: int) -> None:
        self.nonfinite_steps += 1
        self._epoch_nonfinite += 1
        self._nonfinite_in_row += 1
        local = "" if loss is None else f" (here {loss.item()})"
        log.warning(
            "non-finite loss on %d rank(s)%s at step %d: step skipped on every rank "
            "(%d in a row, %d in total)",
            num_ranks,
            local,
            self.global_step,
            self._nonfinite_in_row,
            self.nonfinite_steps,
        )
        if self._nonfinite_in_row > self.hparams.max_nonfinite_steps:
            raise FloatingPointError(
                f"{self._nonfinite_in_row} consecutive non-finite losses (limit "
                f"max_nonfinite_steps={self.hparams.max_nonfinite_steps}); lower the learning "
                "rate or check the data"
            )

    def _count_skipped(self, batch: dict[str, Any], stage: str) -> None:
        self._epoch_skipped[stage] += len(batch.get("skipped") or [])

    def _log_skipped(self, stage: str) -> None:
        self.log(
            f"{stage}/skipped_videos",
            float(self._epoch_skipped[stage]),
            reduce_fx="sum",
            sync_dist=True,
        )

    def on_train_epoch_end(self) -> None:
        self._log_skipped("train")
        # Every rank counted the same (agreed) skipped steps.
        self.log(
            "train/nonfinite_steps", float(self._epoch_nonfinite), reduce_fx="max", sync_dist=True
        )

    # --- validation: zero-shot on source classes held out from training ---------------------
    def on_validation_epoch_start(self) -> None:
        self._epoch_skipped["val"] = 0
        self._eval_class_embeddings = self.embed_classes(self._datamodule().val_class_names)
        # With fewer than 5 validation classes, top-5 means "among all of them".
        self.val_top5.top_k = min(5, self._eval_class_embeddings.shape[0])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._count_skipped(batch, "val")
        if batch["video"].shape[0] == 0:
            return
        video_emb = self.embed_videos(batch["video"])  # (B, D)
        self.val_top1.update(video_emb, self._eval_class_embeddings, batch["label"])
        self.val_top5.update(video_emb, self._eval_class_embeddings, batch["label"])

    def on_validation_epoch_end(self) -> None:
        self.log("val/top1", self.val_top1.compute(), prog_bar=True)
        self.log("val/top5", self.val_top5.compute())
        self._log_skipped("val")
        self.val_top1.reset()
        self.val_top5.reset()

    # --- test: zero-shot on the target datasets ---------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._epoch_skipped["test"] = 0
        test_sets = self._datamodule().test_sets
        self.test_collectors = nn.ModuleList(EmbeddingCollector() for _ in test_sets).to(
            self.device
        )
        self.test_results = []

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._count_skipped(batch, "test")
        if batch["video"].shape[0] == 0:
            return
        video_emb = self.embed_videos(batch["video"])  # (B, D)
        self.test_collectors[dataloader_idx].update(video_emb, batch["label"])

    def on_test_epoch_end(self) -> None:
        test_sets = self._datamodule().test_sets
        gathered = [collector.compute() for collector in self.test_collectors]  # (N, D), (N,)
        # Calibration sets (validation data) first: they choose the GZSL offset gamma.
        gamma = None
        self.calibration = {}
        for eval_set, (video_emb, labels) in zip(test_sets, gathered, strict=True):
            if eval_set.calibration:
                class_emb = self.embed_classes(eval_set.class_names)  # (C, D)
                seen_mask = torch.as_tensor(eval_set.seen_mask, device=labels.device)  # (C,)
                seen_videos = seen_mask[labels]  # (N,)
                if seen_videos.all() or not seen_videos.any():
                    # A partial evaluation (limit_test_batches) saw one part only.
                    log.warning(
                        "%s: no seen or no unseen videos, GZSL not calibrated", eval_set.name
                    )
                    continue
                gamma, h = functional.select_calibration_gamma(
                    video_emb, class_emb, labels, seen_mask
                )
                seen, unseen = functional.gzsl_accuracies(video_emb, class_emb, labels, seen_mask)
                self.calibration = {
                    "gamma": gamma,
                    "gzsl_h": h,
                    "gzsl_h_uncalibrated": float(functional.harmonic_mean(seen, unseen)),
                }
                for name, value in self.calibration.items():
                    self.log(f"test/{eval_set.name}/{name}", value)
        for eval_set, (video_emb, labels), collector in zip(
            test_sets, gathered, self.test_collectors, strict=True
        ):
            collector.reset()
            if eval_set.calibration:
                continue
            class_emb = self.embed_classes(eval_set.class_names)  # (C, D)
            metrics = evaluate_zero_shot(
                video_emb,
                class_emb,
                labels,
                eval_set.half_splits,
                eval_set.seen_mask,
                gamma,
                eval_set.attributes,
            )
            for name, value in metrics.items():
                if name in ("top1", "top5") and not eval_set.report_full:
                    continue  # protocol "half": only the 50% splits are reported
                # Every rank computed the same value from the gathered embeddings: no sync.
                self.log(f"test/{eval_set.name}/{name}", value)
            self.test_results.append(
                EvalResult(
                    eval_set.name,
                    list(eval_set.class_names),
                    video_emb.cpu(),
                    class_emb.cpu(),
                    labels.cpu(),
                    metrics,
                )
            )
        self._log_skipped("test")

    # --- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        # Parameters of the loss's own groups (the centres, at their learning rate) leave the
        # default group.
        groups = (
            self.loss.parameter_groups(hp.lr) if hasattr(self.loss, "parameter_groups") else []
        )
        grouped = {id(p) for group in groups for p in group["params"]}
        rest = [p for p in self.parameters() if id(p) not in grouped]
        optimizer = build_optimizer(
            [{"params": rest}, *groups], hp.optimizer, hp.lr, hp.momentum, hp.weight_decay
        )
        trainer = self.trainer
        total_steps = int(trainer.estimated_stepping_batches)
        if trainer.train_dataloader is None:  # not loaded by the estimate when max_epochs=-1
            trainer.fit_loop.setup_data()
        # An epoch is a pass over the training loader, whether max_epochs or max_steps ends
        # the run; a loader without a length makes the whole run one "epoch".
        batches = trainer.num_training_batches
        steps_per_epoch = (
            total_steps
            if math.isinf(batches)
            else max(1, math.ceil(batches / trainer.accumulate_grad_batches))
        )
        warmup_steps = max(1, round(hp.warmup_epochs * steps_per_epoch))
        scheduler = build_warmup_cosine(optimizer, warmup_steps, total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        bad = [
            name
            for name, value in state.items()
            if isinstance(value, Tensor)
            and value.is_floating_point()
            and not value.isfinite().all()
        ]
        if bad:
            raise FloatingPointError(f"refusing to save a checkpoint with non-finite {bad}")
        checkpoint[RNG_STATES_KEY] = _rng_states()


def _rng_states() -> dict[str, Any]:
    """The global random states (dropout draws from torch's), as weights-only-loadable values."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gaussian),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"].cpu())
    keys, pos, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state(
        ("MT19937", keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached_gaussian)
    )
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda])


def evaluate_zero_shot(
    video_embeddings: Tensor,
    class_embeddings: Tensor,
    labels: Tensor,
    half_splits: list[list[int]] | None = None,
    seen_mask: list[bool] | None = None,
    calibration_gamma: float | None = None,
    attributes: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    """Zero-shot scores of one evaluation set from its collected embeddings.

    Args:
        video_embeddings: ``(N, D)`` L2-normalised video embeddings.
        class_embeddings: ``(C, D)`` L2-normalised class-name embeddings.
        labels: ``(N,)`` indices into the classes.
        half_splits: class subsets (indices) of the 50% protocol; each split is scored with
            only its videos and only its classes as candidates, reported as mean and std.
        seen_mask: marks seen classes of a generalised zero-shot set; adds ``gzsl_seen``,
            ``gzsl_unseen`` (top-1 among all classes) and their harmonic mean ``gzsl_h``.
        calibration_gamma: with ``seen_mask``, the calibrated-stacking offset chosen on
            validation data (:func:`aurl.functional.select_calibration_gamma`); adds
            ``gzsl_gamma`` and the calibrated ``gzsl_cal_seen``, ``gzsl_cal_unseen``,
            ``gzsl_cal_h``.
        attributes: each attribute's value per class (e.g. ``{"colour": [...]}``); adds
            ``attr_<name>``, how often the top-1 class has the true class's value.

    Returns:
        ``top1``, ``top5`` (full set), ``closeness``, ``dispersion``, ``mean_centre_distance``,
        and the protocol-specific scores above, as floats in [0, 1] (accuracies) or distances.
    """
    num_classes = class_embeddings.shape[0]
    metrics = {
        "top1": functional.zero_shot_topk(video_embeddings, class_embeddings, labels, 1),
        "top5": functional.zero_shot_topk(
            video_embeddings, class_embeddings, labels, min(5, num_classes)
        ),
        "closeness": functional.closeness(video_embeddings, labels),
        "dispersion": functional.dispersion(video_embeddings, labels),
        "mean_centre_distance": functional.mean_centre_distance(video_embeddings, labels),
    }
    if half_splits:
        scores = []
        for split in half_splits:
            classes = torch.as_tensor(split, device=labels.device)  # (C/2,)
            keep = torch.isin(labels, classes)  # (N,)
            if not keep.any():
                continue  # a partial evaluation (limit_test_batches) saw none of its videos
            remap = torch.full((num_classes,), -1, dtype=torch.long, device=labels.device)
            remap[classes] = torch.arange(len(split), device=labels.device)
            scores.append(
                functional.zero_shot_topk(
                    video_embeddings[keep], class_embeddings[classes], remap[labels[keep]], 1
                )
            )
        if len(scores) < len(half_splits):
            log.warning(
                "%d of %d 50%% splits had no videos",
                len(half_splits) - len(scores),
                len(half_splits),
            )
        stacked = torch.stack(scores) if scores else torch.full((1,), float("nan"))
        metrics["half_top1_mean"] = stacked.mean()
        metrics["half_top1_std"] = stacked.std(unbiased=False)
    if seen_mask is not None:
        seen = torch.as_tensor(seen_mask, device=labels.device)[labels]  # (N,)
        parts = {}
        for name, rows in (("gzsl_seen", seen), ("gzsl_unseen", ~seen)):
            if rows.any():
                parts[name] = functional.zero_shot_topk(
                    video_embeddings[rows], class_embeddings, labels[rows], 1
                )
            else:
                log.warning("generalised zero-shot: no %s videos were evaluated", name[5:])
                parts[name] = torch.tensor(float("nan"))
        metrics.update(parts)
        metrics["gzsl_h"] = functional.harmonic_mean(parts["gzsl_seen"], parts["gzsl_unseen"])
        if calibration_gamma is not None:
            seen_t = torch.as_tensor(seen_mask, device=labels.device)  # (C,)
            cal_seen, cal_unseen = functional.gzsl_accuracies(
                video_embeddings, class_embeddings, labels, seen_t, calibration_gamma
            )
            metrics["gzsl_gamma"] = torch.tensor(calibration_gamma)
            metrics["gzsl_cal_seen"] = cal_seen
            metrics["gzsl_cal_unseen"] = cal_unseen
            metrics["gzsl_cal_h"] = functional.harmonic_mean(cal_seen, cal_unseen)
    for attribute, values in (attributes or {}).items():
        ids = {value: k for k, value in enumerate(sorted(set(values)))}
        class_values = torch.tensor([ids[v] for v in values], device=labels.device)  # (C,)
        metrics[f"attr_{attribute}"] = functional.attribute_accuracy(
            video_embeddings, class_embeddings, labels, class_values
        )
    return {name: float(value) for name, value in metrics.items()}
