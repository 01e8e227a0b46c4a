"""The AURL LightningModule: visual + semantic towers trained with the AURL loss."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aurl import functional
from aurl.class_generator import ClassGenerator
from aurl.class_space import ClassSpace
from aurl.functional import EvalResult
from aurl.hparams import save_config_hyperparameters
from aurl.losses import ZeroShotLoss
from aurl.metrics import Closeness, Dispersion, ZeroShotAccuracy
from aurl.optim import create_optimizer, create_warmup_cosine, planned_steps
from aurl.text_encoders import ClassEmbeddingCache, TextEncoder
from aurl.towers import SemanticTower, VisualTower

log = logging.getLogger(__name__)

_COMPONENTS = ("visual_tower", "semantic_tower", "loss", "text_encoder", "class_generator")


class AURLModule(L.LightningModule):
    """Zero-shot video classification with AURL.

    The module receives built components, and its class names as a
    :class:`~aurl.class_space.ClassSpace` through :meth:`set_class_space`, which ``setup``
    calls with the datamodule's ``class_space`` (``data_modules.ZeroShotDataModule``). Text
    embeddings of class names are computed once through an on-disk cache and projected by the
    semantic tower at every step. Test scores are computed by the metrics of
    :mod:`aurl.metrics` (top-k, Closeness, Dispersion) and :func:`aurl.functional.protocol_scores`
    (50% splits, calibrated GZSL, attributes).

    Reliability lives in callbacks that experiments list (``experiments/defaults``):
    :class:`~aurl.callbacks.NonFiniteGuard`, :class:`~aurl.callbacks.RandomStateCheckpoint`,
    :class:`~aurl.callbacks.ResumeSchedule`, :class:`~aurl.callbacks.SkippedVideoCounter`, and
    the checkpoint plugin :class:`~aurl.checkpoint_io.AtomicCheckpointIO`. What must stay in
    the step does: a rank whose batch is empty (every video unreadable) returns a zero loss
    that gives every parameter a zero gradient, so DDP reduces the same buckets on every rank.

    Args:
        visual_tower: clip -> embedding.
        semantic_tower: text embedding -> embedding; ``None`` keeps the text embeddings fixed
            (the E2E baseline, whose visual tower then projects to the text dimension).
        loss: a :class:`aurl.losses.ZeroShotLoss` (:class:`~aurl.losses.AURLLoss` or
            :class:`~aurl.losses.AlignOnlyLoss`).
        text_encoder: encodes class names.
        class_generator: synthesises classes for ``L_US`` from the loss's centres; ``None``
            disables it.
        optimizer: ``"sgd"`` (momentum 0.9, the paper) or ``"adamw"``.
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay of every parameter.
        warmup_epochs: linear warm-up length in epochs (fractions allowed), then cosine to 0.
        channels_last: convert the visual tower and clips to ``channels_last_3d``.
        embedding_cache_dir: folder of the class-embedding cache (default: see
            :class:`aurl.text_encoders.ClassEmbeddingCache`).
    """

    def __init__(
        self,
        visual_tower: VisualTower,
        semantic_tower: SemanticTower | None,
        loss: ZeroShotLoss,
        text_encoder: TextEncoder,
        class_generator: ClassGenerator | None = None,
        optimizer: str = "sgd",
        lr: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_epochs: float = 1.0,
        channels_last: bool = False,
        embedding_cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(loss, ZeroShotLoss):
            raise TypeError(f"loss must be an aurl.losses.ZeroShotLoss, got {type(loss)}")
        save_config_hyperparameters(self, _COMPONENTS)
        self.visual_tower = visual_tower
        self.semantic_tower = semantic_tower
        self.loss = loss
        self.text_encoder = text_encoder
        self.class_generator = class_generator
        self.embedding_cache = ClassEmbeddingCache(embedding_cache_dir)
        self.class_space: ClassSpace | None = None
        self.val_top1 = ZeroShotAccuracy(top_k=1)
        self.val_top5 = ZeroShotAccuracy(top_k=5)
        self.test_metrics = nn.ModuleList()  # one nn.ModuleDict of metrics per test set
        self.test_results: list[EvalResult] = []
        # GZSL calibration chosen on validation data at the last test epoch (gamma, H).
        self.calibration: dict[str, float] = {}
        self._text_embeddings: dict[tuple[str, ...], Tensor] = {}
        self._eval_class_embeddings: list[Tensor] = []  # per val/test set: (C, D)
        self.register_load_state_dict_post_hook(_loss_to_module_device)

    # --- class names -------------------------------------------------------------------------
    def set_class_space(self, class_space: ClassSpace) -> None:
        """Sets the class names that the dataloaders' labels index.

        ``setup`` calls it with ``trainer.datamodule.class_space`` when the datamodule has one;
        call it yourself before ``fit``/``test`` when the dataloaders come without one.
        """
        if not isinstance(class_space, ClassSpace):
            raise TypeError(f"expected an aurl.class_space.ClassSpace, got {type(class_space)}")
        self.class_space = class_space

    def _space(self) -> ClassSpace:
        if self.class_space is None:
            raise RuntimeError(
                "AURLModule has no class space: use a datamodule with a `class_space` "
                "(data_modules.ZeroShotDataModule) or call set_class_space() first"
            )
        return self.class_space

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

    def _maybe_channels_last(self, video: Tensor) -> Tensor:
        if self.hparams.channels_last and video.dim() == 5:
            return video.contiguous(memory_format=torch.channels_last_3d)
        return video

    # --- setup -------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule_space = getattr(getattr(self.trainer, "datamodule", None), "class_space", None)
        if datamodule_space is not None:
            self.set_class_space(datamodule_space)
        if self.hparams.channels_last:
            self.visual_tower.to(memory_format=torch.channels_last_3d)
        if stage == "fit":
            train_names = self._space().train_classes
            self.loss.setup_classes(
                len(train_names),
                self.visual_tower.embed_dim,
                self._initial_class_embeddings(train_names),
            )
            if self.class_generator is not None and self.loss.centres is None:
                raise ValueError(
                    f"the class generator mixes visual class centres, which "
                    f"{type(self.loss).__name__} has none of; set model.class_generator: null"
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

    # --- training ----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        video, labels = batch["video"], batch["label"]
        if video.shape[0] == 0:
            # Every video of this rank's batch was unreadable: the other ranks' batches make
            # the step (NonFiniteGuard skips it when no rank has data).
            return self._zero_loss()
        video_emb = self.visual_tower(self._maybe_channels_last(video))  # (B, D)
        # Raw (not normalised) class embeddings: the loss sees the tower output.
        class_emb = self._project_classes(self._space().train_classes)  # (C, D)
        synthetic = None
        if self.class_generator is not None:
            synthetic = self.class_generator(class_emb, self.loss.centres)  # 2 x (M, D)
        out = self.loss(video_emb, class_emb, labels, synthetic)
        batch_size = video.shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=batch_size)
        for name, value in out.items():
            if name != "loss":
                self.log(f"train/{name}", value, batch_size=batch_size)
        return out["loss"]

    def _zero_loss(self) -> Tensor:
        """A zero loss whose backward gives every trainable parameter a zero gradient (so DDP
        reduces the same buckets on every rank), whatever the values of the parameters."""
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    # --- validation: zero-shot on source classes held out from training ---------------------
    def on_validation_epoch_start(self) -> None:
        class_emb = self.embed_classes(self._space().val_classes)  # (C, D)
        self._eval_class_embeddings = [class_emb]
        # With fewer than 5 validation classes, top-5 means "among all of them".
        self.val_top5.top_k = min(5, class_emb.shape[0])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if batch["video"].shape[0] == 0:
            return
        video_emb = self.embed_videos(batch["video"])  # (B, D)
        (class_emb,) = self._eval_class_embeddings
        self.val_top1.update(video_emb, class_emb, batch["label"])
        self.val_top5.update(video_emb, class_emb, batch["label"])

    def on_validation_epoch_end(self) -> None:
        # The metrics synced their states: every rank computes the job's value.
        self._log_gathered("val/top1", self.val_top1.compute(), prog_bar=True)
        self._log_gathered("val/top5", self.val_top5.compute())
        self.val_top1.reset()
        self.val_top5.reset()

    # --- test: zero-shot on the target datasets ---------------------------------------------
    def on_test_epoch_start(self) -> None:
        test_sets = self._space().test_sets
        self._eval_class_embeddings = [self.embed_classes(s.class_names) for s in test_sets]
        self.test_metrics = nn.ModuleList(_test_metrics(len(s.class_names)) for s in test_sets).to(
            self.device
        )
        self.test_results = []

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch["video"].shape[0] == 0:
            return
        video_emb = self.embed_videos(batch["video"])  # (B, D)
        class_emb = self._eval_class_embeddings[dataloader_idx]  # (C, D)
        for name, metric in self.test_metrics[dataloader_idx].items():
            if name.startswith("top"):
                metric.update(video_emb, class_emb, batch["label"])
            else:
                metric.update(video_emb, batch["label"])

    def on_test_epoch_end(self) -> None:
        test_sets = self._space().test_sets
        # Every rank gathers every set's embeddings: (N, D), (N,).
        gathered = [metrics["closeness"].gathered() for metrics in self.test_metrics]
        # Calibration sets (validation data) first: they choose the GZSL offset gamma.
        gamma = None
        self.calibration = {}
        for eval_set, class_emb, (video_emb, labels) in zip(
            test_sets, self._eval_class_embeddings, gathered, strict=True
        ):
            if eval_set.calibration:
                gamma = self._calibrate(
                    eval_set.name, eval_set.seen_mask, video_emb, class_emb, labels
                )
        for eval_set, class_emb, (video_emb, labels), metrics in zip(
            test_sets, self._eval_class_embeddings, gathered, self.test_metrics, strict=True
        ):
            if eval_set.calibration:
                continue
            scores = {name: float(metric.compute()) for name, metric in metrics.items()}
            scores |= functional.protocol_scores(
                video_emb,
                class_emb,
                labels,
                eval_set.half_splits,
                eval_set.seen_mask,
                gamma,
                eval_set.attributes,
            )
            for name, value in scores.items():
                if name in ("top1", "top5") and not eval_set.report_full:
                    continue  # protocol "half": only the 50% splits are reported
                self._log_gathered(f"test/{eval_set.name}/{name}", value)
            self.test_results.append(
                EvalResult(
                    eval_set.name,
                    list(eval_set.class_names),
                    video_emb.cpu(),
                    class_emb.cpu(),
                    labels.cpu(),
                    scores,
                )
            )
        for metrics in self.test_metrics:
            for metric in metrics.values():
                metric.reset()

    def _calibrate(
        self,
        name: str,
        seen_mask: list[bool],
        video_emb: Tensor,
        class_emb: Tensor,
        labels: Tensor,
    ) -> float | None:
        """Chooses the GZSL offset gamma on a calibration set and logs it (None: not possible)."""
        seen = torch.as_tensor(seen_mask, device=labels.device)  # (C,)
        seen_videos = seen[labels]  # (N,)
        if seen_videos.all() or not seen_videos.any():
            # A partial evaluation (limit_test_batches) saw one part only.
            log.warning("%s: no seen or no unseen videos, GZSL not calibrated", name)
            return None
        gamma, h = functional.select_calibration_gamma(video_emb, class_emb, labels, seen)
        seen_top1, unseen_top1 = functional.gzsl_accuracies(video_emb, class_emb, labels, seen)
        self.calibration = {
            "gamma": gamma,
            "gzsl_h": h,
            "gzsl_h_uncalibrated": float(functional.harmonic_mean(seen_top1, unseen_top1)),
        }
        for key, value in self.calibration.items():
            self._log_gathered(f"test/{name}/{key}", value)
        return gamma

    def _log_gathered(self, name: str, value: Tensor | float, prog_bar: bool = False) -> None:
        """Logs an epoch value that every rank computed alike from synced or gathered data.

        ``sync_dist=True`` says it is the job's value (without it Lightning warns under DDP);
        ``rank_zero_only=True`` turns that sync into a no-op, as there is nothing to reduce.
        Every rank still logs it, so a checkpoint callback monitors it on every rank.
        """
        self.log(name, value, prog_bar=prog_bar, sync_dist=True, rank_zero_only=True)

    # --- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        # Parameters of the loss's own groups (the centres, at their learning rate) leave the
        # default group.
        groups = self.loss.parameter_groups(hp.lr)
        grouped = {id(p) for group in groups for p in group["params"]}
        rest = [p for p in self.parameters() if id(p) not in grouped]
        optimizer = create_optimizer(
            [{"params": rest}, *groups], hp.optimizer, hp.lr, hp.momentum, hp.weight_decay
        )
        total_steps, steps_per_epoch = planned_steps(self.trainer)
        warmup_steps = max(1, round(hp.warmup_epochs * steps_per_epoch))
        scheduler = create_warmup_cosine(optimizer, warmup_steps, total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def _loss_to_module_device(module: AURLModule, incompatible_keys: Any) -> None:
    """``load_state_dict`` post-hook: centres that the load created (AURLLoss allocates them
    from the state dict) join the module's device."""
    module.loss.to(module.device)


def _test_metrics(num_classes: int) -> nn.ModuleDict:
    """The streamed metrics of one test set; Closeness also keeps the embeddings."""
    return nn.ModuleDict(
        {
            "top1": ZeroShotAccuracy(top_k=1),
            "top5": ZeroShotAccuracy(top_k=min(5, num_classes)),
            "closeness": Closeness(),
            "dispersion": Dispersion(num_classes),
            "mean_centre_distance": Dispersion(num_classes, reduction="mean"),
        }
    )
