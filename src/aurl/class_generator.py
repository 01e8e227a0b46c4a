"""Synthetic classes made by mixing seen classes, for AURL's L_US term.

A synthetic class k is one row of a coefficient matrix ``Lambda (M, C)`` applied to both the
L2-normalised semantic embeddings ``S`` and the L2-normalised visual centres ``W`` of the C seen
classes: ``Z = Lambda @ norm(S)``, ``Theta = Lambda @ norm(W)``. ``L_US`` then asks each ``Z_k``
to pick its own ``Theta_k`` among all synthetic centres.

Two modes:

- ``"dense"`` is the original code: ``Lambda ~ U[0, 1)^(M x C)``. Every synthetic class mixes all
  seen classes with non-negative weights, so it only interpolates (it lies in the cone of the
  seen embeddings), and M = C in the original.
- ``"pairwise"`` is the paper's intent ("interpolates and extrapolates"): each synthetic class
  mixes a pair ``(i, j)``, ``i != j``, of seen classes with one coefficient ``lam`` shared by the
  semantic and the visual side, ``z = lam * s_i + (1 - lam) * s_j``. ``lam`` comes from the
  interpolation range (inside [0, 1]) with probability ``1 - extrapolation_prob`` and otherwise
  from one of the extrapolation ranges (outside [0, 1]), which puts ``z`` beyond ``s_i`` or
  ``s_j`` on the line through them.

Draws come from the generator's own seeded ``torch.Generator`` on the CPU (so they are the same on
every device and independent of the global RNG); its state is saved in the module's state_dict,
so resuming from a checkpoint continues the exact sequence. Every DDP rank with the same seed
draws the same synthetic classes. The module has no parameters; gradients flow into ``S`` and
``W``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ClassGenerator(nn.Module):
    """Draws synthetic classes from the seen classes' semantic embeddings and visual centres.

    Args:
        mode: ``"pairwise"`` (pairs of classes, interpolation and extrapolation) or ``"dense"``
            (the original code's all-class non-negative mixtures).
        num_synthetic: number M of synthetic classes per call; None means C (the number of seen
            classes given to :meth:`forward`).
        interpolation: ``(low, high)`` with ``0 <= low <= high <= 1``, the range of ``lam`` for
            interpolated pairs (pairwise mode only).
        extrapolation: ranges ``(low, high)`` lying entirely outside [0, 1] (``high < 0`` or
            ``low > 1``); an extrapolated pair picks one range uniformly (pairwise mode only).
        extrapolation_prob: probability that a pair is extrapolated (pairwise mode only).
        seed: seed of the generator's own random stream.
    """

    def __init__(
        self,
        mode: Literal["dense", "pairwise"] = "pairwise",
        num_synthetic: int | None = None,
        interpolation: tuple[float, float] = (0.2, 0.8),
        extrapolation: Sequence[tuple[float, float]] = ((-0.5, -0.1), (1.1, 1.5)),
        extrapolation_prob: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if mode not in ("dense", "pairwise"):
            raise ValueError(f"mode must be 'dense' or 'pairwise', got {mode!r}")
        if num_synthetic is not None and num_synthetic < 1:
            raise ValueError(f"num_synthetic must be >= 1 or None, got {num_synthetic}")
        interpolation = _pair("interpolation", interpolation)
        if not 0.0 <= interpolation[0] <= interpolation[1] <= 1.0:
            raise ValueError(
                "interpolation must be (low, high) with 0 <= low <= high <= 1, "
                f"got {interpolation}"
            )
        extrapolation = [_pair("extrapolation range", r) for r in extrapolation]
        for low, high in extrapolation:
            if low > high or not (high < 0.0 or low > 1.0):
                raise ValueError(
                    f"extrapolation range ({low}, {high}) must have low <= high and lie outside "
                    "[0, 1] (high < 0 or low > 1)"
                )
        if not 0.0 <= extrapolation_prob <= 1.0:
            raise ValueError(f"extrapolation_prob must be in [0, 1], got {extrapolation_prob}")
        if extrapolation_prob > 0 and not extrapolation:
            raise ValueError("extrapolation_prob > 0 needs at least one extrapolation range")
        self.mode = mode
        self.num_synthetic = num_synthetic
        self.interpolation = interpolation
        self.extrapolation = extrapolation
        self.extrapolation_prob = float(extrapolation_prob)
        self.seed = seed
        self._rng = torch.Generator(device="cpu")
        self._rng.manual_seed(seed)

    def sample_coefficients(self, num_classes: int) -> Tensor:
        """Draws the next mixing matrix from the generator's stream.

        Args:
            num_classes: number C of seen classes.

        Returns:
            ``(M, C)`` float32 CPU tensor; in pairwise mode each row has exactly two non-zero
            entries ``lam`` and ``1 - lam`` (so rows sum to 1), in dense mode all entries are
            U[0, 1).
        """
        m = self.num_synthetic or num_classes
        if self.mode == "dense":
            if num_classes < 1:
                raise ValueError(f"need at least 1 seen class, got {num_classes}")
            return torch.rand(m, num_classes, generator=self._rng)  # (M, C)

        if num_classes < 2:
            raise ValueError(f"pairwise mode needs at least 2 seen classes, got {num_classes}")
        first = torch.randint(num_classes, (m,), generator=self._rng)  # (M,)
        # An offset in [1, C) makes the second class always differ from the first.
        offset = torch.randint(1, num_classes, (m,), generator=self._rng)  # (M,)
        second = (first + offset) % num_classes  # (M,)
        u = torch.rand(m, generator=self._rng)  # (M,)
        low, high = self.interpolation
        lam = low + (high - low) * u  # (M,)
        if self.extrapolation_prob > 0:
            extrapolate = torch.rand(m, generator=self._rng) < self.extrapolation_prob  # (M,)
            ranges = torch.tensor(self.extrapolation)  # (R, 2)
            which = torch.randint(len(ranges), (m,), generator=self._rng)  # (M,)
            ex_low, ex_high = ranges[which, 0], ranges[which, 1]  # (M,), (M,)
            lam = torch.where(extrapolate, ex_low + (ex_high - ex_low) * u, lam)  # (M,)
        rows = torch.arange(m)
        coef = torch.zeros(m, num_classes)  # (M, C)
        coef[rows, first] = lam
        coef[rows, second] = 1.0 - lam
        return coef

    def forward(self, semantic: Tensor, centres: Tensor) -> tuple[Tensor, Tensor]:
        """Mixes the seen classes into M synthetic classes.

        Args:
            semantic: ``(C, D)`` semantic embeddings S of the seen classes.
            centres: ``(C, D)`` visual centres W of the seen classes.

        Returns:
            ``(Z (M, D), Theta (M, D))``: ``Lambda @ norm(S)`` and ``Lambda @ norm(W)``.
        """
        if semantic.dim() != 2 or semantic.shape != centres.shape:
            raise ValueError(
                "semantic embeddings and centres must both be (C, D), got "
                f"{tuple(semantic.shape)} and {tuple(centres.shape)}"
            )
        coef = self.sample_coefficients(semantic.shape[0]).to(semantic.device)  # (M, C)
        z = coef.to(semantic.dtype) @ F.normalize(semantic, dim=1)  # (M, D)
        theta = coef.to(centres.dtype) @ F.normalize(centres, dim=1)  # (M, D)
        return z, theta

    def get_extra_state(self) -> dict[str, Any]:
        return {"rng_state": self._rng.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._rng.set_state(state["rng_state"].cpu())

    def extra_repr(self) -> str:
        if self.mode == "dense":
            return f"mode=dense, num_synthetic={self.num_synthetic}, seed={self.seed}"
        return (
            f"mode=pairwise, num_synthetic={self.num_synthetic}, "
            f"interpolation={self.interpolation}, extrapolation={self.extrapolation}, "
            f"extrapolation_prob={self.extrapolation_prob}, seed={self.seed}"
        )


def _pair(name: str, value: Sequence[float]) -> tuple[float, float]:
    values = tuple(float(v) for v in value)
    if len(values) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}")
    return values[0], values[1]
