"""torchmetrics classes for zero-shot evaluation; the formulas live in :mod:`aurl.functional`.

Every metric here equals its functional twin evaluated on the union of all updates of all DDP
ranks, with uneven shards, including a rank that received no data at all. torchmetrics stands in
a 1-D empty tensor of the metric dtype for a concatenation state that a rank never filled, and
cannot gather it together with the (N, D) tensors of the other ranks; the sum states of
:class:`Dispersion` learn their embedding dimension at the first update. The two gather functions
below first exchange the state shapes so that such a rank joins the gather with a tensor of the
right shape and dtype.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from aurl.functional import (
    _REDUCTIONS,
    _check_embeddings,
    _check_labels,
    _class_sums,
    _dispersion_compute,
    _topk_correct,
    _zero_shot_check,
    closeness,
)


def _gather_shapes(tensor: Tensor, group: Any) -> list[tuple[tuple[int, ...], torch.dtype]]:
    """Shape and dtype of ``tensor`` on every rank of ``group``."""
    metas: list[Any] = [None] * torch.distributed.get_world_size(group)
    torch.distributed.all_gather_object(metas, (tuple(tensor.shape), tensor.dtype), group=group)
    return metas


def _gather_cat_state(tensor: Tensor, group: Any = None) -> list[Tensor]:
    """``gather_all_tensors`` for concatenation states that tolerates ranks without updates.

    An empty tensor on a rank (torchmetrics' placeholder: updates reject empty input) is replaced
    by an empty tensor with the trailing shape and dtype of a rank that holds data.
    """
    metas = _gather_shapes(tensor, group)
    filled = [meta for meta in metas if math.prod(meta[0]) > 0]
    if tensor.numel() == 0 and filled:
        shape, dtype = filled[0]
        tensor = tensor.new_zeros((0, *shape[1:]), dtype=dtype)
    return gather_all_tensors(tensor, group)


def _gather_sum_state(tensor: Tensor, group: Any = None) -> list[Tensor]:
    """``gather_all_tensors`` for sum states whose default broadcasts to the filled shape.

    A rank still holding the default zeros (C, 1) of :class:`Dispersion` expands it to the (C, D)
    of the other ranks, which adds nothing to the sum.
    """
    shape = torch.broadcast_shapes(*(meta[0] for meta in _gather_shapes(tensor, group)))
    return gather_all_tensors(tensor.expand(shape).contiguous(), group)


class ZeroShotAccuracy(Metric):
    """Zero-shot top-k accuracy, micro-averaged over videos (see
    :func:`aurl.functional.zero_shot_topk`, whose tie rule it shares).

    States are the sums ``correct`` and ``total``, so the value is exact under DDP. Every update
    of one evaluation must use the same class set (``class_embeddings`` rows in the same order).

    Args:
        top_k: how many nearest classes count as a hit.
        **kwargs: passed to :class:`torchmetrics.Metric`.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    correct: Tensor
    total: Tensor

    def __init__(self, top_k: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"ZeroShotAccuracy: top_k must be a positive integer, got {top_k!r}")
        self.top_k = top_k
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor) -> None:
        """Adds a batch.

        Args:
            video_embeddings: (B, D).
            class_embeddings: (C, D), row ``j`` is class ``j``.
            labels: (B,) in ``[0, C)``.
        """
        where = "ZeroShotAccuracy.update"
        _zero_shot_check(video_embeddings, class_embeddings, labels, self.top_k, where)
        hits = _topk_correct(video_embeddings, class_embeddings, labels, self.top_k)  # (B,)
        self.correct += hits.sum()
        self.total += hits.numel()

    def compute(self) -> Tensor:
        """The fraction of correct videos; NaN before any update."""
        if int(self.total) == 0:
            return torch.tensor(float("nan"), device=self.device)
        return self.correct.float() / self.total.float()


class Dispersion(Metric):
    """Dispersion: the minimum (or mean) distance between the centres of the classes seen.

    See :func:`aurl.functional.dispersion` (``reduction="min"``) and
    :func:`aurl.functional.mean_centre_distance` (``reduction="mean"``); NaN when fewer than two
    classes were seen. The states are per-class sums of normalised embeddings (C, D) and counts
    (C,), summed across ranks, so the class centres and hence the value are exact under DDP. The
    embedding dimension D is fixed by the first update (the sum state starts as zeros (C, 1),
    which broadcasts). The sums are kept in the metric dtype, float32 unless changed with
    ``set_dtype``.

    Args:
        num_classes: C; labels must lie in ``[0, C)``.
        reduction: ``"min"`` (Dispersion) or ``"mean"`` (mean inter-centre distance).
        **kwargs: passed to :class:`torchmetrics.Metric`.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    sums: Tensor
    counts: Tensor

    def __init__(self, num_classes: int, reduction: str = "min", **kwargs: Any) -> None:
        kwargs.setdefault("dist_sync_fn", _gather_sum_state)
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"Dispersion: num_classes must be a positive integer, got {num_classes!r}"
            )
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Dispersion: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.num_classes = num_classes
        self.reduction = reduction
        self.add_state("sums", default=torch.zeros(num_classes, 1), dist_reduce_fx="sum")
        self.add_state(
            "counts", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum"
        )

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        """Adds a batch.

        Args:
            embeddings: (B, D) video embeddings (normalised inside).
            labels: (B,) in ``[0, num_classes)``.
        """
        where = "Dispersion.update"
        _check_embeddings(embeddings, "embeddings", where)
        _check_labels(labels, embeddings.shape[0], where, self.num_classes)
        dim = embeddings.shape[1]
        if self.sums.shape[1] not in (1, dim):
            raise ValueError(
                f"{where}: embeddings have dimension {dim} but earlier updates had "
                f"{self.sums.shape[1]}"
            )
        sums, counts = _class_sums(embeddings, labels.long(), self.num_classes)
        self.sums = self.sums + sums.to(self.sums.dtype)  # (C, 1) broadcasts to (C, D)
        self.counts += counts

    def compute(self) -> Tensor:
        """The reduced inter-centre distance over the classes seen."""
        return _dispersion_compute(self.sums, self.counts, self.reduction)


class Closeness(Metric):
    """Closeness: mean distance of a video embedding to its class centre (see
    :func:`aurl.functional.closeness`); NaN before any update.

    Why concatenation states rather than sums: the distance ``||e_i - mu_{y_i}||_2`` needs the
    class centre, which is known only after the last sample. Its square expands into per-class
    sums (``sum_i ||e_i||^2 - n_c ||mu_c||^2``), but the square root of a per-sample quantity
    does not, so the mean of non-squared distances cannot be computed in one pass from sum states.
    The metric therefore keeps every embedding (N x D per rank until ``compute``), and hands
    them out with :meth:`gathered`: one copy serves Closeness and the scores that need every
    embedding (what :class:`aurl.module.AURLModule` does at test time).

    Args:
        **kwargs: passed to :class:`torchmetrics.Metric`.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    embeddings: list[Tensor] | Tensor
    labels: list[Tensor] | Tensor

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("dist_sync_fn", _gather_cat_state)
        super().__init__(**kwargs)
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        """Adds a batch.

        Args:
            embeddings: (B, D) embeddings, stored as given (detached).
            labels: (B,) integer labels, stored as int64.
        """
        where = f"{type(self).__name__}.update"
        _check_embeddings(embeddings, "embeddings", where)
        _check_labels(labels, embeddings.shape[0], where, None)
        if isinstance(self.embeddings, list) and self.embeddings:
            dim = self.embeddings[0].shape[1]
            if embeddings.shape[1] != dim:
                raise ValueError(
                    f"{where}: embeddings have dimension {embeddings.shape[1]} but earlier "
                    f"updates had {dim}"
                )
        self.embeddings.append(embeddings.detach())
        self.labels.append(labels.detach().long())

    def gathered(self) -> tuple[Tensor, Tensor]:
        """Every update's ``(embeddings (N, D), labels (N,) int64)`` from every rank, in rank
        order and each rank's in update order; empty ``(0, 0)`` and ``(0,)`` tensors before any
        update. Under DDP this gathers like ``compute`` (every rank must call it)."""
        with self.sync_context(dist_sync_fn=self.dist_sync_fn):
            collected = self._collected()
        return collected if collected is not None else self._empty()

    def _empty(self) -> tuple[Tensor, Tensor]:
        return (
            torch.zeros(0, 0, device=self.device),
            torch.zeros(0, dtype=torch.long, device=self.device),
        )

    def _collected(self) -> tuple[Tensor, Tensor] | None:
        """All (embeddings (N, D), labels (N,)) so far, or None when there are none."""
        if isinstance(self.embeddings, list) and not self.embeddings:
            return None
        embeddings, labels = dim_zero_cat(self.embeddings), dim_zero_cat(self.labels)
        if embeddings.numel() == 0:  # synced, but no rank had data
            return None
        return embeddings, labels

    def compute(self) -> Tensor:
        """The mean distance to the class centre over all videos seen."""
        collected = self._collected()
        if collected is None:
            return torch.tensor(float("nan"), device=self.device)
        return closeness(*collected)
