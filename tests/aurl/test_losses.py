"""Losses against numpy references written here from the formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aurl.class_generator import ClassGenerator
from aurl.losses import AlignOnlyLoss, AURLLoss, cosine_logits, nce
from aurl.towers import SemanticTower


def _np_logits(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return scale * a @ b.T


def _np_logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def _np_nce(a: np.ndarray, b: np.ndarray, y: np.ndarray, scale: float = 10.0) -> float:
    logits = _np_logits(a, b, scale)
    log_prob = logits - _np_logsumexp(logits)[:, None]
    return float(-log_prob[np.arange(len(y)), y].mean())


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x)


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "video": rng.normal(size=(6, 5)),
        "classes": rng.normal(size=(4, 5)),
        "labels": np.array([0, 1, 2, 3, 1, 0]),
    }


@pytest.mark.parametrize("scale", [10.0, 3.0])
def test_nce_matches_numpy(data, scale: float) -> None:
    expected = _np_nce(data["video"], data["classes"], data["labels"], scale)
    got = nce(_t(data["video"]), _t(data["classes"]), _t(data["labels"]), scale=scale)
    assert got.item() == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(
        cosine_logits(_t(data["video"]), _t(data["classes"]), scale),
        _t(_np_logits(data["video"], data["classes"], scale)),
    )


def test_cross_entropy_is_alignment_plus_uniformity_and_softplus(data) -> None:
    logits = _np_logits(data["video"], data["classes"], 10.0)  # (N, C)
    y = data["labels"]
    n = len(y)
    l_y = logits[np.arange(n), y]  # (N,)
    alignment = -l_y.mean()
    uniformity = _np_logsumexp(logits).mean()
    # softplus(logsumexp_{j != y}(l_j - l_y)), with the target column masked out.
    others = np.where(np.eye(logits.shape[1], dtype=bool)[y], -np.inf, logits - l_y[:, None])
    softplus_form = np.log1p(np.exp(_np_logsumexp(others))).mean()

    ce = F.cross_entropy(_t(logits), _t(y)).item()
    assert ce == pytest.approx(alignment + uniformity, rel=1e-10)
    assert ce == pytest.approx(softplus_form, rel=1e-10)


def test_aurl_loss_terms_and_weights(data) -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 5))
    z, theta = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    loss_fn = AURLLoss(num_classes=4, embed_dim=5, weight_s=0.5, weight_c=2.0, weight_us=3.0)
    loss_fn = loss_fn.double()
    with torch.no_grad():
        loss_fn.centres.copy_(_t(centres))
    video, classes, labels = _t(data["video"]), _t(data["classes"]), _t(data["labels"])
    out = loss_fn(video, classes, labels, synthetic=(_t(z), _t(theta)))

    l_s = _np_nce(data["video"], data["classes"], data["labels"])
    l_c = _np_nce(data["video"], centres, data["labels"])
    l_us = _np_nce(z, theta, np.arange(7))
    assert out["l_s"].item() == pytest.approx(l_s, rel=1e-10)
    assert out["l_c"].item() == pytest.approx(l_c, rel=1e-10)
    assert out["l_us"].item() == pytest.approx(l_us, rel=1e-10)
    assert out["loss"].item() == pytest.approx(0.5 * l_s + 2.0 * l_c + 3.0 * l_us, rel=1e-10)

    no_synth = loss_fn(video, classes, labels)
    assert no_synth["l_us"].item() == 0.0
    assert no_synth["loss"].item() == pytest.approx(0.5 * l_s + 2.0 * l_c, rel=1e-10)


def test_zero_weight_skips_term(data) -> None:
    loss_fn = AURLLoss(num_classes=4, embed_dim=5, weight_c=0.0, weight_us=0.0).double()
    video = _t(data["video"]).requires_grad_()
    synth = (torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64))
    out = loss_fn(video, _t(data["classes"]), _t(data["labels"]), synthetic=synth)
    assert out["l_c"].item() == 0.0
    assert out["l_us"].item() == 0.0
    assert out["loss"].item() == pytest.approx(
        _np_nce(data["video"], data["classes"], data["labels"]), rel=1e-10
    )
    out["loss"].backward()
    assert loss_fn.centres.grad is None
    assert video.grad is not None


def test_centres_init() -> None:
    unit = AURLLoss(num_classes=50, embed_dim=64)
    normal = AURLLoss(num_classes=50, embed_dim=64, centres_init="normal")
    uniform = AURLLoss(num_classes=50, embed_dim=64, centres_init="uniform")
    assert unit.centres_init == "unit" and unit.centres.shape == (50, 64)
    assert unit.centres.requires_grad
    assert torch.allclose(unit.centres.norm(dim=1), torch.ones(50))
    assert normal.centres.norm(dim=1).mean() > 6  # ~sqrt(64)
    assert (uniform.centres >= 0).all() and (uniform.centres < 1).all()
    assert normal.centres.min() < 0 and unit.centres.min() < 0


def test_semantic_centres_start_at_the_class_embeddings() -> None:
    semantic = torch.randn(4, 6)
    loss_fn = AURLLoss(centres_init="semantic")
    loss_fn.init_centres(4, 6, semantic)
    assert torch.allclose(loss_fn.centres, F.normalize(semantic, dim=1))
    with pytest.raises(ValueError, match="projected class embeddings"):
        AURLLoss(centres_init="semantic").init_centres(4, 6)
    with pytest.raises(ValueError, match="projected class embeddings"):
        AURLLoss(centres_init="semantic").init_centres(4, 6, torch.randn(4, 5))


def test_centres_have_their_own_learning_rate_group() -> None:
    loss_fn = AURLLoss(num_classes=4, embed_dim=6, centres_lr_mult=10.0)
    (group,) = loss_fn.parameter_groups(0.05)
    assert group["params"] == [loss_fn.centres] and group["lr"] == pytest.approx(0.5)
    assert AURLLoss().parameter_groups(0.05) == []
    with pytest.raises(ValueError, match="centres_lr_mult"):
        AURLLoss(centres_lr_mult=0.0)


def _turn_angles(centres: torch.Tensor, video: torch.Tensor, labels, lr: float, steps: int):
    """Measured and predicted angle (radians) each centre turns in each plain SGD step of L_C."""
    loss_fn = AURLLoss(weight_s=0.0, weight_c=1.0, weight_us=0.0).double()
    loss_fn.centres = torch.nn.Parameter(centres.clone())
    class_emb = torch.zeros_like(centres)  # unused with weight_s = 0
    measured, predicted = [], []
    for _ in range(steps):
        loss_fn.centres.grad = None
        loss_fn(video, class_emb, labels)["loss"].backward()
        w, g = loss_fn.centres.detach().clone(), loss_fn.centres.grad  # (C, D), (C, D)
        # The loss sees only w / |w|, so g is orthogonal to w and the step turns w by
        # atan(lr * |g| / |w|) exactly.
        predicted.append(torch.atan(lr * g.norm(dim=1) / w.norm(dim=1)))
        with torch.no_grad():
            loss_fn.centres -= lr * g
        cos = F.cosine_similarity(w, loss_fn.centres.detach(), dim=1)
        measured.append(torch.acos(cos.clamp(-1, 1)))
    return torch.stack(measured), torch.stack(predicted)  # (steps, C) each


def test_unit_centres_turn_at_the_rate_of_the_embeddings_and_normal_ones_d_times_slower() -> None:
    gen = torch.Generator().manual_seed(0)
    num_classes, dim, lr, steps = 6, 256, 0.05, 5
    labels = torch.arange(24) % num_classes
    video = torch.randn(24, dim, generator=gen, dtype=torch.float64)
    directions = F.normalize(torch.randn(num_classes, dim, generator=gen, dtype=torch.float64))
    unit, unit_pred = _turn_angles(directions, video, labels, lr, steps)
    assert torch.allclose(unit, unit_pred, rtol=1e-4, atol=1e-7)
    # Same directions with norm sqrt(D) = 16 (what N(0, 1) entries give): the gradient is 16
    # times smaller and divided by a 16 times larger norm, so the first step turns ~256 x less.
    slow, slow_pred = _turn_angles(directions * dim**0.5, video, labels, lr, 1)
    assert torch.allclose(slow, slow_pred, rtol=1e-4, atol=1e-9)
    assert torch.allclose(
        unit[0] / slow[0], torch.full((num_classes,), float(dim), dtype=torch.float64), rtol=0.02
    )
    # Unit centres move a visible angle in a few steps: at least 0.5 degree each.
    assert (unit.sum(0) > math.radians(0.5)).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes"),
        ({"scale": 0.0}, "scale"),
        ({"weight_c": -1.0}, "weight_c"),
        ({"weight_s": 0.0, "weight_c": 0.0, "weight_us": 0.0}, "at least one"),
        ({"centres_init": "zeros"}, "centres_init"),
    ],
)
def test_aurl_loss_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AURLLoss(**({"num_classes": 4, "embed_dim": 5} | kwargs))


def test_aurl_loss_rejects_bad_inputs(data) -> None:
    loss_fn = AURLLoss(num_classes=3, embed_dim=5).double()
    with pytest.raises(ValueError, match="4 rows but the loss has 3"):
        loss_fn(_t(data["video"]), _t(data["classes"]), _t(data["labels"]))
    loss_fn = AURLLoss(num_classes=4, embed_dim=5).double()
    bad = (torch.randn(3, 5, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="one shape"):
        loss_fn(_t(data["video"]), _t(data["classes"]), _t(data["labels"]), synthetic=bad)


def test_align_only_loss_formula(data) -> None:
    v, c, y = data["video"], data["classes"], data["labels"]
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    expected = ((vn - cn[y]) ** 2).mean()
    cos = (vn * cn[y]).sum(axis=1)
    assert expected == pytest.approx((2 - 2 * cos).mean() / v.shape[1])

    out = AlignOnlyLoss()(_t(v), _t(c), _t(y))
    assert set(out) == {"loss", "l_align"}
    assert out["loss"].item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="no synthetic"):
        AlignOnlyLoss()(_t(v), _t(c), _t(y), synthetic=(_t(c), _t(c)))
    with pytest.raises(ValueError, match="differ in size"):
        AlignOnlyLoss()(_t(v), _t(c[:, :4]), _t(y))


def test_a_small_gradient_step_lowers_the_aurl_loss_as_first_order_predicts() -> None:
    # A deterministic property of the loss and its gradients (not an optimisation outcome,
    # which may differ across CPUs): a plain SGD step of size lr lowers the loss by
    # lr * |grad|^2 to first order, with every part (towers and centres) getting gradient.
    torch.manual_seed(0)
    num_classes, feat_dim, text_dim, embed_dim = 5, 12, 8, 6
    labels = torch.arange(20) % num_classes
    features = torch.randn(num_classes, feat_dim)[labels] + 0.3 * torch.randn(20, feat_dim)
    text = torch.randn(num_classes, text_dim)
    video_proj = torch.nn.Linear(feat_dim, embed_dim).double()
    semantic = SemanticTower(text_dim, fc_dim=8, hidden_dim=16, embed_dim=embed_dim).double()
    loss_fn = AURLLoss(num_classes, embed_dim).double()
    coef = (
        ClassGenerator(mode="pairwise", num_synthetic=8, seed=0)
        .sample_coefficients(num_classes)
        .double()
    )  # (8, C): fixed synthetic classes, so the loss is one function of the weights
    params = [*video_proj.parameters(), *semantic.parameters(), *loss_fn.parameters()]

    def loss() -> torch.Tensor:
        s = semantic(text.double())  # (C, D)
        synthetic = (coef @ F.normalize(s, dim=1), coef @ F.normalize(loss_fn.centres, dim=1))
        return loss_fn(video_proj(features.double()), s, labels, synthetic)["loss"]

    before = loss()
    grads = torch.autograd.grad(before, params)
    assert all(g.abs().sum() > 0 for g in grads)
    sq_norm = sum((g**2).sum() for g in grads)
    lr = 1e-4
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p -= lr * g
        decrease = before - loss()
    assert decrease > 0
    assert float(decrease) == pytest.approx(float(lr * sq_norm), rel=0.05)


def test_centres_can_be_created_after_construction() -> None:
    loss_fn = AURLLoss()
    assert loss_fn.centres is None and loss_fn.num_classes is None
    video, labels = torch.randn(6, 5), torch.arange(6) % 3
    with pytest.raises(RuntimeError, match="init_centres"):
        loss_fn(video, torch.randn(3, 5), labels)
    loss_fn.init_centres(3, 5)
    assert loss_fn.num_classes == 3 and loss_fn.centres.shape == (3, 5)
    assert torch.isfinite(loss_fn(video, torch.randn(3, 5), labels)["loss"])
    with pytest.raises(ValueError, match="both num_classes and embed_dim"):
        AURLLoss(num_classes=3)
