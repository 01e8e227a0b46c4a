"""AURL's losses: cosine-logit cross-entropy (NCE) terms, and an alignment-only baseline.

With logits ``l_ij = scale * cos(a_i, b_j)``, the cross-entropy of row i with target y splits into
an alignment part ``-l_iy`` (pulls a_i to its target) and a uniformity part
``logsumexp_j l_ij`` (pushes a_i from every b_j); equivalently it is
``softplus(logsumexp_{j != y} (l_ij - l_iy))``. An alignment-only loss lacks the second part and
collapses when both sides are trainable.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CentresInit = Literal["unit", "normal", "uniform", "semantic"]
CENTRES_INITS: tuple[str, ...] = get_args(CentresInit)


def cosine_logits(a: Tensor, b: Tensor, scale: float = 10.0) -> Tensor:
    """``scale * cos(a_i, b_j)`` for all pairs.

    Args:
        a: ``(N, D)``.
        b: ``(M, D)``.
        scale: inverse temperature (10 in AURL, i.e. temperature 0.1).

    Returns:
        ``(N, M)`` logits.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, D) and (M, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    return scale * F.normalize(a, dim=1) @ F.normalize(b, dim=1).T  # (N, M)


def nce(a: Tensor, b: Tensor, targets: Tensor, scale: float = 10.0) -> Tensor:
    """Mean cross-entropy over cosine logits: row i of ``a`` should pick row ``targets[i]`` of b.

    Args:
        a: ``(N, D)`` queries (e.g. video embeddings).
        b: ``(M, D)`` candidates (e.g. class embeddings).
        targets: ``(N,)`` indices into the rows of ``b``.
        scale: inverse temperature.

    Returns:
        Scalar loss.
    """
    return F.cross_entropy(cosine_logits(a, b, scale), targets)


class ZeroShotLoss(nn.Module):
    """What :class:`aurl.module.AURLModule` may ask of a loss, with do-nothing defaults.

    ``forward(video_emb (B, D), class_emb (C, D), labels (B,), synthetic)`` returns a dict of
    scalars whose ``"loss"`` is minimised; the other entries are logged as ``train/<name>``.
    A loss with learnable state tied to the training classes overrides :meth:`setup_classes`
    (called at fit setup, once the class space is known) and :meth:`parameter_groups`; one
    that a class generator can mix exposes its visual class centres as ``centres``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.centres: Tensor | None = None  # (C, D) visual class centres, or None without any

    def setup_classes(self, num_classes: int, embed_dim: int, class_embeddings: Tensor) -> None:
        """Prepares the loss for ``num_classes`` training classes.

        Args:
            num_classes: number of training classes C.
            embed_dim: embedding size D.
            class_embeddings: ``(C, D)`` projected class-name embeddings of the untrained
                semantic tower, in label order.
        """

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups of the loss's own parameters (default: none apart)."""
        return []


class AURLLoss(ZeroShotLoss):
    """``w_s * L_S + w_c * L_C + w_us * L_US`` with learnable visual class centres.

    - ``L_S = nce(videos, class_emb, labels)``: videos against the seen classes' semantic
      embeddings.
    - ``L_C = nce(videos, centres, labels)``: videos against learnable visual centres ``W``.
    - ``L_US = nce(Z, Theta, arange(M))``: synthetic semantic embeddings against their synthetic
      centres (from :class:`aurl.class_generator.ClassGenerator`).

    A term with weight 0 is not computed and reported as 0. With ``weight_c == weight_us == 0`` the
    centres get no gradient (DDP then needs ``find_unused_parameters``).

    Args:
        num_classes: number of seen classes C; None creates the centres later, through
            :meth:`init_centres` (what :class:`aurl.module.AURLModule` does at setup).
        embed_dim: embedding size D (None with ``num_classes``).
        scale: inverse temperature of the cosine logits.
        weight_s: weight of L_S.
        weight_c: weight of L_C.
        weight_us: weight of L_US.
        centres_init: how the centres ``W`` start (they are only used L2-normalised):

            - ``"unit"`` (default): random directions of unit length. A step of size ``lr``
              turns a centre of norm ``r`` by about ``lr * |g| / r**2`` radians (``g``: the
              gradient with respect to its unit direction), so unit centres turn as fast as
              the unit-scale embeddings around them.
            - ``"normal"``: N(0, 1) entries, norm ``~sqrt(D)`` (16 at D=256, 45 at D=2048):
              centres that turn ``D`` times slower, i.e. barely move in a short run and act as
              fixed random codes.
            - ``"uniform"``: U[0, 1) entries as in the original code (norm ``~sqrt(D/3)``, all
              in the positive orthant, pairwise cosine ~0.75).
            - ``"semantic"``: the unit-length projected class-name embeddings of the seen
              classes at the start of training (given to :meth:`init_centres`).
        centres_lr_mult: learning-rate multiplier of the centres (their own parameter group,
            see :meth:`parameter_groups`).
    """

    def __init__(
        self,
        num_classes: int | None = None,
        embed_dim: int | None = None,
        scale: float = 10.0,
        weight_s: float = 1.0,
        weight_c: float = 1.0,
        weight_us: float = 1.0,
        centres_init: CentresInit = "unit",
        centres_lr_mult: float = 1.0,
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        for name, w in (("weight_s", weight_s), ("weight_c", weight_c), ("weight_us", weight_us)):
            if w < 0:
                raise ValueError(f"{name} must be >= 0, got {w}")
        if weight_s == weight_c == weight_us == 0:
            raise ValueError("at least one of weight_s, weight_c, weight_us must be > 0")
        if centres_init not in CENTRES_INITS:
            raise ValueError(f"centres_init must be one of {CENTRES_INITS}, got {centres_init!r}")
        if centres_lr_mult <= 0:
            raise ValueError(f"centres_lr_mult must be > 0, got {centres_lr_mult}")
        self.centres_init = centres_init
        self.centres_lr_mult = centres_lr_mult
        # Evaluating or predicting from a checkpoint: centres of the saved shape, then filled.
        self.register_load_state_dict_pre_hook(_allocate_saved_centres)
        self.scale = scale
        self.weight_s = weight_s
        self.weight_c = weight_c
        self.weight_us = weight_us
        if (num_classes is None) != (embed_dim is None):
            raise ValueError("give both num_classes and embed_dim, or neither")
        if num_classes is not None and embed_dim is not None:
            self.init_centres(num_classes, embed_dim)

    @property
    def num_classes(self) -> int | None:
        """Number of seen classes C, or None before :meth:`init_centres`."""
        return None if self.centres is None else self.centres.shape[0]

    def init_centres(
        self, num_classes: int, embed_dim: int, semantic: Tensor | None = None
    ) -> None:
        """Creates the learnable centres ``W (C, D)`` as ``centres_init`` says.

        Called by :meth:`setup_classes` once the training classes are known (the count after
        overlap removal and validation hold-out is rarely known when writing a config).

        Args:
            num_classes: number of seen classes C.
            embed_dim: embedding size D.
            semantic: ``(C, D)`` projected class-name embeddings of the seen classes, in label
                order; required by ``centres_init="semantic"``, ignored otherwise.
        """
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        if self.centres_init == "semantic":
            if semantic is None or semantic.shape != (num_classes, embed_dim):
                got = None if semantic is None else tuple(semantic.shape)
                raise ValueError(
                    f"centres_init='semantic' needs the ({num_classes}, {embed_dim}) projected "
                    f"class embeddings, got {got}"
                )
            centres = F.normalize(semantic.detach().float().cpu(), dim=1)
        elif self.centres_init == "unit":
            centres = F.normalize(torch.randn(num_classes, embed_dim), dim=1)
        elif self.centres_init == "normal":
            centres = torch.randn(num_classes, embed_dim)
        else:
            centres = torch.rand(num_classes, embed_dim)
        device = self.centres.device if self.centres is not None else None
        self.centres = nn.Parameter(centres.to(device))  # (C, D)

    def setup_classes(self, num_classes: int, embed_dim: int, class_embeddings: Tensor) -> None:
        """Creates the centres (:meth:`init_centres`) unless they exist, for ``num_classes``.

        Raises:
            ValueError: when existing centres (``num_classes`` given in the config) are for
                another number of training classes.
        """
        if self.num_classes is None:
            self.init_centres(num_classes, embed_dim, class_embeddings)
        elif self.num_classes != num_classes:
            raise ValueError(
                f"loss.num_classes={self.num_classes} but the data has {num_classes} training "
                "classes; leave model.loss.num_classes unset"
            )

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """The loss's optimiser parameter groups: the centres at ``lr * centres_lr_mult``."""
        if self.centres is None:
            return []
        return [{"params": [self.centres], "lr": lr * self.centres_lr_mult}]

    def forward(
        self,
        video_emb: Tensor,
        class_emb: Tensor,
        labels: Tensor,
        synthetic: tuple[Tensor, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Computes the loss terms.

        Args:
            video_emb: ``(B, D)`` video embeddings.
            class_emb: ``(C, D)`` semantic embeddings of the seen classes, in label order.
            labels: ``(B,)`` seen-class indices.
            synthetic: optional ``(Z (M, D), Theta (M, D))``; without it ``l_us`` is 0.

        Returns:
            ``{"loss", "l_s", "l_c", "l_us"}``, scalars; ``loss`` is the weighted sum.
        """
        if self.centres is None:
            raise RuntimeError("AURLLoss.init_centres(num_classes, embed_dim) was not called")
        if class_emb.shape[0] != self.num_classes:
            raise ValueError(
                f"class_emb has {class_emb.shape[0]} rows but the loss has "
                f"{self.num_classes} seen classes"
            )
        zero = video_emb.new_zeros(())
        l_s = nce(video_emb, class_emb, labels, self.scale) if self.weight_s else zero
        l_c = nce(video_emb, self.centres, labels, self.scale) if self.weight_c else zero
        l_us = zero
        if synthetic is not None and self.weight_us:
            z, theta = synthetic  # (M, D), (M, D)
            if z.shape != theta.shape:
                raise ValueError(
                    f"synthetic Z and Theta must have one shape, got {tuple(z.shape)} and "
                    f"{tuple(theta.shape)}"
                )
            l_us = nce(z, theta, torch.arange(z.shape[0], device=z.device), self.scale)
        loss = self.weight_s * l_s + self.weight_c * l_c + self.weight_us * l_us
        return {"loss": loss, "l_s": l_s, "l_c": l_c, "l_us": l_us}


class AlignOnlyLoss(ZeroShotLoss):
    """E2E-style regression of each video embedding onto its class embedding.

    ``loss = mean over (i, d) of (v_i / |v_i| - c_{y_i} / |c_{y_i}|)_d ** 2`` (``nn.MSELoss`` on
    normalised vectors as in Brattoli et al.), i.e. ``mean_i (2 - 2 cos(v_i, c_{y_i})) / D``.
    For the E2E baseline the class embeddings are the fixed text embeddings; gradients still flow
    into ``class_emb`` if the caller passes a trainable one, which collapses both sides (the
    ablation that shows why AURL needs a uniformity term).
    """

    def forward(
        self,
        video_emb: Tensor,
        class_emb: Tensor,
        labels: Tensor,
        synthetic: tuple[Tensor, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Computes the alignment loss.

        Args:
            video_emb: ``(B, D)``.
            class_emb: ``(C, D)``.
            labels: ``(B,)``.
            synthetic: must be None (there are no centres to mix).

        Returns:
            ``{"loss", "l_align"}`` (the same scalar).
        """
        if synthetic is not None:
            raise ValueError(
                "AlignOnlyLoss takes no synthetic classes; train it without a class generator"
            )
        if video_emb.shape[1] != class_emb.shape[1]:
            raise ValueError(
                f"video and class embeddings differ in size: {video_emb.shape[1]} vs "
                f"{class_emb.shape[1]}"
            )
        target = F.normalize(class_emb, dim=1)[labels]  # (B, D)
        l_align = F.mse_loss(F.normalize(video_emb, dim=1), target)
        return {"loss": l_align, "l_align": l_align}


def _allocate_saved_centres(
    loss: AURLLoss, state_dict: dict[str, Tensor], prefix: str, *args: Any
) -> None:
    """``load_state_dict`` pre-hook: centres not created yet take the saved ``(C, D)`` shape."""
    saved = state_dict.get(prefix + "centres")
    if loss.centres is None and saved is not None:
        loss.centres = nn.Parameter(torch.empty_like(saved))  # (C, D), filled by the load
