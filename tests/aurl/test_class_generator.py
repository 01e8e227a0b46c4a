"""Class generator: cone membership, the original dense formula, determinism, resume."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from aurl.class_generator import ClassGenerator

C, D = 4, 6


@pytest.fixture
def seen() -> tuple[torch.Tensor, torch.Tensor]:
    """Semantic embeddings with orthogonal directions but unequal norms, and random centres."""
    q, _ = torch.linalg.qr(torch.randn(D, D, dtype=torch.float64))
    semantic = torch.tensor([0.5, 2.0, 3.0, 7.0], dtype=torch.float64)[:, None] * q[:C]  # (C, D)
    centres = torch.randn(C, D, dtype=torch.float64)
    return semantic, centres


def _unit(x: torch.Tensor) -> np.ndarray:
    x = x.detach().numpy()
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _recover(rows: torch.Tensor, basis: np.ndarray) -> np.ndarray:
    """Coefficients of each row in the (linearly independent) unit basis rows, by least squares."""
    coef, *_ = np.linalg.lstsq(basis.T, rows.detach().numpy().T, rcond=None)
    return coef.T  # (M, C)


def _nnls_residuals(rows: torch.Tensor, basis: np.ndarray) -> np.ndarray:
    return np.array([nnls(basis.T, r)[1] for r in rows.detach().numpy()])


def test_pairwise_interpolation_lies_in_the_cone(seen) -> None:
    semantic, centres = seen
    gen = ClassGenerator("pairwise", num_synthetic=50, extrapolation_prob=0.0, seed=1)
    z, theta = gen(semantic, centres)
    assert z.shape == theta.shape == (50, D)
    coef = _recover(z, _unit(semantic))  # (M, C)
    # Exactly two classes per row, mixed with (lam, 1 - lam), lam in the interpolation range.
    nonzero = np.abs(coef) > 1e-9
    assert (nonzero.sum(axis=1) == 2).all()
    np.testing.assert_allclose(coef.sum(axis=1), 1.0, atol=1e-9)
    used = coef[nonzero]
    assert used.min() >= 0.2 - 1e-9 and used.max() <= 0.8 + 1e-9
    np.testing.assert_allclose(_nnls_residuals(z, _unit(semantic)), 0.0, atol=1e-9)
    # Theta uses the same coefficients on the normalised centres.
    np.testing.assert_allclose(theta.numpy(), coef @ _unit(centres), atol=1e-9)


def test_pairwise_extrapolation_leaves_the_cone(seen) -> None:
    semantic, centres = seen
    gen = ClassGenerator("pairwise", num_synthetic=50, extrapolation_prob=1.0, seed=2)
    z, _ = gen(semantic, centres)
    coef = _recover(z, _unit(semantic))
    nonzero = np.abs(coef) > 1e-9
    assert (nonzero.sum(axis=1) == 2).all()
    np.testing.assert_allclose(coef.sum(axis=1), 1.0, atol=1e-9)
    negative = coef.min(axis=1)  # (M,): the coefficient outside [0, 1] on the low side
    assert (negative < -0.1 + 1e-9).all() and (negative >= -0.5 - 1e-9).all()
    # With orthonormal directions the nearest cone point drops the negative part, so the nnls
    # residual is its size; any residual > 0 means the row is outside the cone.
    residuals = _nnls_residuals(z, _unit(semantic))
    np.testing.assert_allclose(residuals, -negative, atol=1e-9)
    assert residuals.min() > 0.09


def test_pairwise_extrapolation_with_general_seen_rows() -> None:
    semantic = torch.randn(C, D, dtype=torch.float64)  # linearly independent almost surely
    gen = ClassGenerator("pairwise", num_synthetic=30, extrapolation_prob=1.0, seed=3)
    z, _ = gen(semantic, torch.randn(C, D, dtype=torch.float64))
    assert _nnls_residuals(z, _unit(semantic)).min() > 1e-3


def test_pairwise_mixes_interpolation_and_extrapolation(seen) -> None:
    semantic, centres = seen
    gen = ClassGenerator(
        "pairwise",
        num_synthetic=4000,
        interpolation=(0.3, 0.7),
        extrapolation=((-0.4, -0.2), (1.2, 1.3)),
        extrapolation_prob=0.25,
        seed=4,
    )
    coef = _recover(gen(semantic, centres)[0], _unit(semantic))
    pair = np.where(np.abs(coef) > 1e-9, coef, np.nan)  # the two non-zero coefficients of a row
    high, low = np.nanmax(pair, axis=1), np.nanmin(pair, axis=1)
    extrapolated = low < -1e-9
    assert abs(extrapolated.mean() - 0.25) < 0.03
    # Interpolated rows: both coefficients in [0.3, 0.7]; extrapolated rows: the negative one
    # lies in (-0.4, -0.2) for either range ((1.2, 1.3) gives 1 - lam in (-0.3, -0.2)).
    assert (high[~extrapolated] <= 0.7 + 1e-9).all() and (low[~extrapolated] >= 0.3 - 1e-9).all()
    ex_low = low[extrapolated]
    assert ((ex_low >= -0.4 - 1e-9) & (ex_low <= -0.2 + 1e-9)).all()
    # Both extrapolation ranges are used: (-0.4, -0.2) covers all of it, (1.2, 1.3) only
    # (-0.3, -0.2), so about 3/4 of extrapolated rows fall in (-0.3, -0.2).
    assert 0.68 < (ex_low > -0.3).mean() < 0.82


def test_dense_mode_is_the_original_formula(seen) -> None:
    semantic, centres = seen
    gen = ClassGenerator("dense", seed=5)
    z, theta = gen(semantic, centres)
    assert z.shape == theta.shape == (C, D)  # M defaults to C
    lam = torch.rand(C, C, generator=torch.Generator().manual_seed(5)).double()  # U[0, 1)
    np.testing.assert_allclose(z.numpy(), lam.numpy() @ _unit(semantic), atol=1e-12)
    np.testing.assert_allclose(theta.numpy(), lam.numpy() @ _unit(centres), atol=1e-12)
    coef = _recover(z, _unit(semantic))
    assert (coef > -1e-9).all() and (coef < 1).all()
    np.testing.assert_allclose(_nnls_residuals(z, _unit(semantic)), 0.0, atol=1e-9)

    z7, theta7 = ClassGenerator("dense", num_synthetic=7, seed=5)(semantic, centres)
    assert z7.shape == theta7.shape == (7, D)


@pytest.mark.parametrize("mode", ["dense", "pairwise"])
def test_determinism(seen, mode: str) -> None:
    semantic, centres = seen
    a = ClassGenerator(mode, seed=7)
    b = ClassGenerator(mode, seed=7)
    c = ClassGenerator(mode, seed=8)
    first = a(semantic, centres)[0]
    torch.testing.assert_close(first, b(semantic, centres)[0])
    assert not torch.allclose(first, c(semantic, centres)[0])
    assert not torch.allclose(first, a(semantic, centres)[0])  # the stream advances
    # The global RNG neither affects nor is affected by the generator.
    torch.manual_seed(123)
    state = torch.get_rng_state()
    torch.testing.assert_close(ClassGenerator(mode, seed=7)(semantic, centres)[0], first)
    assert torch.equal(torch.get_rng_state(), state)


def test_state_dict_resume_is_exact(seen) -> None:
    semantic, centres = seen
    gen = ClassGenerator("pairwise", seed=9)
    gen(semantic, centres)
    buffer = io.BytesIO()
    torch.save(gen.state_dict(), buffer)
    expected = gen(semantic, centres)[0]

    resumed = ClassGenerator("pairwise", seed=0)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(resumed(semantic, centres)[0], expected)
    assert list(gen.parameters()) == []


def test_gradients_flow_into_semantic_and_centres(seen) -> None:
    semantic, centres = (t.clone().requires_grad_() for t in seen)
    z, theta = ClassGenerator("pairwise", seed=0)(semantic, centres)
    (z * torch.randn_like(z)).sum().add((theta * torch.randn_like(theta)).sum()).backward()
    assert semantic.grad is not None and semantic.grad.abs().sum() > 0
    assert centres.grad is not None and centres.grad.abs().sum() > 0


def test_float32_and_device(seen) -> None:
    semantic, centres = (t.float() for t in seen)
    z, theta = ClassGenerator(seed=0)(semantic, centres)
    assert z.dtype == theta.dtype == torch.float32
    if torch.cuda.is_available():
        zc, _ = ClassGenerator(seed=0)(semantic.cuda(), centres.cuda())
        assert zc.is_cuda
        torch.testing.assert_close(zc.cpu(), z)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "mixup"}, "mode"),
        ({"num_synthetic": 0}, "num_synthetic"),
        ({"interpolation": (0.8, 0.2)}, "interpolation"),
        ({"interpolation": (-0.1, 0.5)}, "interpolation"),
        ({"interpolation": (0.5, 1.2)}, "interpolation"),
        ({"interpolation": (0.5,)}, "pair"),
        ({"extrapolation": ((-0.5, 0.1),)}, "outside"),
        ({"extrapolation": ((0.9, 1.5),)}, "outside"),
        ({"extrapolation": ((-0.1, -0.5),)}, "low <= high"),
        ({"extrapolation_prob": 1.5}, "extrapolation_prob"),
        ({"extrapolation": (), "extrapolation_prob": 0.5}, "at least one"),
    ],
)
def test_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClassGenerator(**kwargs)


def test_rejects_bad_inputs() -> None:
    gen = ClassGenerator("pairwise")
    with pytest.raises(ValueError, match="at least 2 seen classes"):
        gen(torch.randn(1, D), torch.randn(1, D))
    with pytest.raises(ValueError, match=r"\(C, D\)"):
        gen(torch.randn(3, D), torch.randn(4, D))
    # Interpolation only needs no extrapolation range.
    z, _ = ClassGenerator(extrapolation=(), extrapolation_prob=0.0)(
        torch.randn(3, D), torch.randn(3, D)
    )
    assert z.shape == (3, D)
