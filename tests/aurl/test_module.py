from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aurl.callbacks import NonFiniteGuard
from aurl.functional import evaluate_zero_shot
from aurl.losses import AlignOnlyLoss, AURLLoss
from aurl.module import AURLModule
from aurl.text_encoders import create_text_encoder
from aurl.towers import SemanticTower, VisualTower
from tests.tiny import TEXT_DIM, ColourData, find_callback, tiny_module, tiny_trainer

HALF_SPLITS = [[0, 1], [2, 3], [1, 3]]


def colour_data() -> ColourData:
    """24 training clips in batches of 8 (3 steps an epoch); 16 test clips with 50% splits."""
    return ColourData(batch_size=8, size=32, half_splits=HALF_SPLITS)


def build_module(word_vectors: Path, **kwargs: Any) -> AURLModule:
    """The tiny model with Word2Vec class names (a text model that loads, and is cached)."""
    encoder = create_text_encoder("word2vec", path=str(word_vectors))
    return tiny_module(kwargs.pop("cache_dir"), text_encoder=encoder, **kwargs)


def test_fit_then_test_logs_every_metric(tmp_path: Path, word_vectors: Path) -> None:
    module = build_module(word_vectors, cache_dir=tmp_path / "cache")
    data = colour_data()
    trainer = tiny_trainer(tmp_path)
    trainer.fit(module, datamodule=data)
    assert module.loss.centres.shape == (6, 16)  # created at setup from the datamodule
    logged = trainer.callback_metrics
    for key in ("train/loss", "train/l_s", "train/l_c", "train/l_us", "val/top1", "val/top5"):
        assert key in logged and math.isfinite(float(logged[key])), key
    assert float(logged["train/l_us"]) > 0

    results = trainer.test(module, datamodule=data)[0]
    for name in ("top1", "top5", "closeness", "dispersion", "half_top1_mean", "half_top1_std"):
        assert f"test/unseen/{name}" in results
    # The logged scores are the scores of the collected embeddings.
    stored = module.test_results[0]
    assert stored.video_embeddings.shape == (16, 16)
    expected = evaluate_zero_shot(
        stored.video_embeddings, stored.class_embeddings, stored.labels, HALF_SPLITS
    )
    # The streamed metrics (aurl.metrics) equal their pure twins on the gathered embeddings.
    for name in ("top1", "top5", "closeness", "dispersion", "mean_centre_distance"):
        assert results[f"test/unseen/{name}"] == pytest.approx(expected[name], abs=1e-6), name
    for name in ("half_top1_mean", "half_top1_std"):
        assert results[f"test/unseen/{name}"] == pytest.approx(expected[name]), name


def test_epoch_values_are_logged_without_a_sync_dist_warning_under_ddp(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    # A 1-process DDP group: Lightning asks for sync_dist at epoch level whenever a group is up,
    # but validation values come from synced metrics and test values from gathered embeddings.
    module = tiny_module(tmp_path / "cache")
    trainer = tiny_trainer(tmp_path, strategy="ddp", devices=1)
    # Lightning's launcher writes LOCAL_RANK, MASTER_PORT, ... into this process's environment:
    # left there, a later DDP child would take itself for one rank of an external launch.
    environ = dict(os.environ)
    try:
        validated = trainer.validate(module, datamodule=colour_data(), verbose=False)[0]
        tested = trainer.test(module, datamodule=colour_data(), verbose=False)[0]
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(environ)
    assert "val/top1" in validated
    assert "test/unseen/top1" in tested
    assert not [str(w.message) for w in recwarn if "sync_dist" in str(w.message)]


def test_training_updates_every_trainable_parameter(tmp_path: Path, word_vectors: Path) -> None:
    # Wiring, not an optimisation outcome (that varies across CPUs): every loss term reaches
    # its parameters, so each trainable tensor of towers and centres is changed by fit.
    module = build_module(
        word_vectors,
        loss=AURLLoss(centres_lr_mult=5.0),
        cache_dir=tmp_path / "cache",
    )
    data = colour_data()
    module.loss.init_centres(len(data.class_space.train_classes), 16)
    before = {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}
    trainer = tiny_trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    after = dict(module.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert not unchanged
    assert any(n.startswith("loss.centres") for n in before)
    # The centres train in their own group, at 5 times the learning rate of the rest.
    rest, centres = trainer.optimizers[0].param_groups
    assert centres["params"] == [module.loss.centres]
    assert centres["lr"] == pytest.approx(5.0 * rest["lr"])
    assert len(rest["params"]) == len(before) - 1


def test_semantic_centres_start_at_the_projected_class_names(
    tmp_path: Path, word_vectors: Path
) -> None:
    module = build_module(
        word_vectors,
        loss=AURLLoss(centres_init="semantic"),
        cache_dir=tmp_path / "cache",
    )
    data = colour_data()
    trainer = tiny_trainer(tmp_path, max_steps=1, limit_val_batches=0)
    trainer.strategy.connect(module)
    module.trainer = trainer
    trainer.datamodule = data
    module.setup("fit")
    module.semantic_tower.eval()
    expected = module.embed_classes(data.class_space.train_classes)  # (C, D)
    assert torch.allclose(module.loss.centres, expected, atol=1e-6)


def test_evaluate_zero_shot_against_a_manual_computation() -> None:
    gen = torch.Generator().manual_seed(3)
    videos = torch.nn.functional.normalize(torch.randn(30, 5, generator=gen), dim=1)
    classes = torch.nn.functional.normalize(torch.randn(6, 5, generator=gen), dim=1)
    labels = torch.arange(30) % 6
    splits = [[0, 2, 4], [1, 3, 5]]
    seen_mask = [True, True, True, False, False, False]
    out = evaluate_zero_shot(videos, classes, labels, splits, seen_mask)

    sims = (videos @ classes.T).numpy()
    y = labels.numpy()
    assert out["top1"] == pytest.approx(np.mean(sims.argmax(1) == y))
    split_scores = []
    for split in splits:
        rows = np.isin(y, split)
        pred = np.array(split)[sims[rows][:, split].argmax(1)]
        split_scores.append(np.mean(pred == y[rows]))
    assert out["half_top1_mean"] == pytest.approx(np.mean(split_scores))
    assert out["half_top1_std"] == pytest.approx(np.std(split_scores))
    seen_rows = y < 3
    acc_seen = np.mean(sims[seen_rows].argmax(1) == y[seen_rows])
    acc_unseen = np.mean(sims[~seen_rows].argmax(1) == y[~seen_rows])
    assert out["gzsl_seen"] == pytest.approx(acc_seen)
    assert out["gzsl_unseen"] == pytest.approx(acc_unseen)
    assert out["gzsl_h"] == pytest.approx(2 * acc_seen * acc_unseen / (acc_seen + acc_unseen))


def test_checkpoint_restores_centres_for_testing(tmp_path: Path, word_vectors: Path) -> None:
    cache = str(tmp_path / "cache")
    module = build_module(word_vectors, cache_dir=cache)
    trainer = tiny_trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    data = colour_data()
    trainer.fit(module, datamodule=data)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)

    fresh = build_module(word_vectors, cache_dir=cache)
    assert fresh.loss.centres is None
    tester = tiny_trainer(tmp_path)
    first = trainer.test(module, datamodule=data, verbose=False)[0]
    second = tester.test(fresh, datamodule=data, ckpt_path=str(ckpt), verbose=False)[0]
    assert torch.equal(fresh.loss.centres.detach(), module.loss.centres.detach())
    assert second == pytest.approx(first)


def test_align_only_baseline_keeps_text_embeddings_fixed(
    tmp_path: Path, word_vectors: Path
) -> None:
    module = build_module(
        word_vectors,
        visual_tower=VisualTower(
            "r2plus1d_narrow", {"widths": (4, 4, 8, 8)}, embed_dim=TEXT_DIM, projector="linear"
        ),
        semantic_tower=None,
        loss=AlignOnlyLoss(),
        class_generator=None,
        cache_dir=tmp_path / "cache",
    )
    trainer = tiny_trainer(tmp_path, max_epochs=1)
    trainer.fit(module, datamodule=colour_data())
    assert "train/l_align" in trainer.callback_metrics
    assert not any(name.startswith("semantic_tower") for name, _ in module.named_parameters())


def test_a_loss_must_declare_the_zero_shot_contract(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"loss must be an aurl.losses.ZeroShotLoss"):
        tiny_module(tmp_path / "cache", loss=torch.nn.MSELoss())


def test_text_dim_mismatch_is_a_clear_error(tmp_path: Path, word_vectors: Path) -> None:
    module = build_module(
        word_vectors,
        semantic_tower=SemanticTower(TEXT_DIM + 1, fc_dim=16, hidden_dim=16, embed_dim=16),
        cache_dir=tmp_path / "cache",
    )
    with pytest.raises(ValueError, match=r"semantic_tower.text_dim=9 .* 8-d"):
        tiny_trainer(tmp_path).fit(module, datamodule=colour_data())


def test_cached_class_embeddings_never_load_the_text_model(
    tmp_path: Path, word_vectors: Path
) -> None:
    cache = str(tmp_path / "cache")
    first = build_module(word_vectors, cache_dir=cache)
    trainer = tiny_trainer(tmp_path / "a", max_epochs=1)
    trainer.fit(first, datamodule=colour_data())
    trainer.test(first, datamodule=colour_data())
    assert first.text_encoder._vectors is not None  # the first run encoded the names

    second = build_module(word_vectors, cache_dir=cache)
    trainer = tiny_trainer(tmp_path / "b", max_epochs=1)
    trainer.fit(second, datamodule=colour_data())
    trainer.test(second, datamodule=colour_data())
    assert second.text_encoder._vectors is None  # every class list came from the cache


@pytest.mark.parametrize("max_epochs, max_steps", [(-1, 6), (4, 5)])
def test_warmup_counts_epochs_in_loader_batches_when_max_steps_ends_the_run(
    tmp_path: Path, word_vectors: Path, max_epochs: int, max_steps: int
) -> None:
    module = build_module(word_vectors, cache_dir=tmp_path / "cache")
    trainer = tiny_trainer(tmp_path, max_epochs=max_epochs, max_steps=max_steps)
    trainer.fit(module, datamodule=colour_data())
    # 24 clips in batches of 8: 3 steps an epoch, so warmup_epochs=0.5 is round(1.5) = 2 steps.
    assert trainer.num_training_batches == 3 and trainer.global_step == max_steps
    factor = trainer.lr_scheduler_configs[0].scheduler.lr_lambdas[0]
    assert [factor(0), factor(1)] == [0.5, 1.0]


def test_nonfinite_losses_are_skipped_then_stop_training(
    tmp_path: Path, word_vectors: Path
) -> None:
    module = build_module(word_vectors, cache_dir=tmp_path / "cache")
    data = colour_data()
    original = module.loss.forward

    def poisoned(*args, **kwargs):
        out = original(*args, **kwargs)
        out["loss"] = out["loss"] * float("nan")
        return out

    module.loss.forward = poisoned
    with pytest.raises(FloatingPointError, match="3 consecutive non-finite losses"):
        trainer = tiny_trainer(tmp_path, max_epochs=3, max_nonfinite_steps=2)
        trainer.fit(module, datamodule=data)
    assert find_callback(trainer, NonFiniteGuard).nonfinite_steps == 3
    assert all(torch.isfinite(p).all() for p in module.parameters())
