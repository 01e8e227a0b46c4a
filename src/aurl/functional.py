"""Pure metric functions for zero-shot evaluation and the alignment/uniformity diagnostics.

Notation used by every docstring below: ``e_i = x_i / ||x_i||_2`` is the L2-normalised embedding of
video ``i`` (``torch.nn.functional.normalize`` with ``eps=1e-12``: a zero vector stays zero),
``y_i`` its label, ``N`` the number of videos, and ``mu_c = (1 / n_c) * sum_{i : y_i = c} e_i``
the centre of class ``c`` (the plain mean of its normalised embeddings, **not** re-normalised).
Only classes with at least one video are "present"; absent classes never enter a formula.

The torchmetrics pattern is followed: the public functions are thin wrappers around private
``_*_update`` / ``_*_compute`` helpers that the classes in :mod:`aurl.metrics` reuse, so a metric
accumulated over batches (and over DDP ranks) computes exactly the same formula.

Arithmetic runs in the input's floating dtype promoted to at least float32 (float64 inputs stay
float64).

:func:`evaluate_zero_shot` scores one evaluation set from its embeddings (what
:class:`aurl.module.AURLModule` reports, there accumulated by the metric classes), and
:class:`EvalResult` keeps a set's embeddings and scores for plots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

log = logging.getLogger(__name__)

_REDUCTIONS = ("min", "mean")


def _work_dtype(tensor: Tensor) -> torch.dtype:
    return torch.promote_types(tensor.dtype, torch.float32)


def _check_embeddings(embeddings: Tensor, name: str, where: str) -> None:
    if not isinstance(embeddings, Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(embeddings).__name__}")
    if embeddings.ndim != 2 or not embeddings.is_floating_point():
        raise ValueError(
            f"{where}: {name} must be a 2-D floating tensor (N, D), got shape "
            f"{tuple(embeddings.shape)} and dtype {embeddings.dtype}"
        )
    if embeddings.shape[0] == 0 or embeddings.shape[1] == 0:
        raise ValueError(f"{where}: {name} is empty (shape {tuple(embeddings.shape)})")


def _check_labels(labels: Tensor, num_rows: int, where: str, num_classes: int | None) -> None:
    if not isinstance(labels, Tensor):
        raise TypeError(f"{where}: labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != 1 or labels.is_floating_point() or labels.is_complex():
        raise ValueError(
            f"{where}: labels must be a 1-D integer tensor (N,), got shape {tuple(labels.shape)} "
            f"and dtype {labels.dtype}"
        )
    if labels.dtype == torch.bool:
        raise ValueError(f"{where}: labels must be integers, got dtype torch.bool")
    if labels.shape[0] != num_rows:
        raise ValueError(
            f"{where}: labels has {labels.shape[0]} entries but the embeddings have "
            f"{num_rows} rows"
        )
    if num_classes is not None:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"{where}: labels must lie in [0, {num_classes}), got values in [{low}, {high}]"
            )


def _dense_labels(labels: Tensor) -> tuple[Tensor, int]:
    """Maps arbitrary integer labels to ``0..P-1`` (P = number of distinct labels), sorted."""
    classes, inverse = torch.unique(labels, sorted=True, return_inverse=True)
    return inverse, classes.numel()


def _class_sums(embeddings: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-class sums of the normalised embeddings and per-class counts: the sufficient statistics
    of the class centres, additive over batches and ranks.

    Args:
        embeddings: (N, D) raw embeddings; normalised here.
        labels: (N,) integer labels in ``[0, num_classes)`` (validated by the caller).
        num_classes: C.

    Returns:
        ``sums`` (C, D) with ``sums[c] = sum_{i : y_i = c} e_i`` and ``counts`` (C,) int64 with
        ``counts[c] = n_c``.
    """
    normed = F.normalize(embeddings.to(_work_dtype(embeddings)), dim=1)  # (N, D)
    sums = normed.new_zeros(num_classes, normed.shape[1]).index_add_(0, labels, normed)
    counts = torch.bincount(labels, minlength=num_classes)
    return sums, counts


def _dispersion_compute(sums: Tensor, counts: Tensor, reduction: str = "min") -> Tensor:
    """Reduces the distances between the centres of the present classes.

    Args:
        sums: (C, D) per-class sums of normalised embeddings, as from :func:`_class_sums`.
        counts: (C,) per-class counts; classes with count 0 are absent and ignored.
        reduction: ``"min"`` (Dispersion) or ``"mean"`` (mean inter-centre distance).

    Returns:
        A scalar: ``min`` or ``mean`` over pairs ``c < c'`` of present classes of
        ``||mu_c - mu_c'||_2``; NaN when fewer than two classes are present (no pair exists).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    present = counts > 0
    centres = sums[present] / counts[present].unsqueeze(1).to(sums.dtype)  # (P, D)
    num_present = centres.shape[0]
    if num_present < 2:
        return torch.tensor(float("nan"), dtype=sums.dtype, device=sums.device)
    # The matmul expansion ||a||^2 + ||b||^2 - 2ab loses the small distances of a collapsed model
    # to cancellation; direct differences stay exact and cdist never materialises (P, P, D).
    distances = torch.cdist(
        centres.unsqueeze(0), centres.unsqueeze(0), compute_mode="donot_use_mm_for_euclid_dist"
    )[0]  # (P, P)
    rows, cols = torch.triu_indices(num_present, num_present, offset=1, device=sums.device)
    pairs = distances[rows, cols]  # (P * (P - 1) / 2,)
    return pairs.min() if reduction == "min" else pairs.mean()


def _topk_correct(
    video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor, k: int
) -> Tensor:
    """Whether each video's label is among its ``k`` nearest classes by cosine similarity.

    Ties are broken by class index (lower index ranks first), i.e. the ranking of a stable sort
    by descending similarity: the rank of the true class ``y`` is
    ``#{j : s_j > s_y} + #{j < y : s_j = s_y}`` and the video counts as correct when that rank is
    below ``k``. A non-finite similarity to the true class never counts as correct.

    Args:
        video_embeddings: (N, D), validated by the caller.
        class_embeddings: (C, D), validated by the caller.
        labels: (N,) in ``[0, C)``.
        k: 1 <= k <= C.

    Returns:
        (N,) bool.
    """
    sims = _cosine_scores(video_embeddings, class_embeddings)  # (N, C)
    labels = labels.long().unsqueeze(1)  # (N, 1)
    true_sims = sims.gather(1, labels)  # (N, 1)
    class_index = torch.arange(sims.shape[1], device=sims.device).unsqueeze(0)  # (1, C)
    ahead = (sims > true_sims) | ((sims == true_sims) & (class_index < labels))  # (N, C)
    return (ahead.sum(dim=1) < k) & torch.isfinite(true_sims.squeeze(1))


def _zero_shot_check(
    video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor, k: int, where: str
) -> None:
    _check_embeddings(video_embeddings, "video_embeddings", where)
    _check_embeddings(class_embeddings, "class_embeddings", where)
    if video_embeddings.shape[1] != class_embeddings.shape[1]:
        raise ValueError(
            f"{where}: video_embeddings have dimension {video_embeddings.shape[1]} but "
            f"class_embeddings have dimension {class_embeddings.shape[1]}"
        )
    num_classes = class_embeddings.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_classes:
        raise ValueError(f"{where}: k must be an integer in [1, {num_classes}] (C), got {k!r}")
    _check_labels(labels, video_embeddings.shape[0], where, num_classes)


def closeness(embeddings: Tensor, labels: Tensor) -> Tensor:
    """Closeness (alignment): mean distance of a video embedding to its class centre.

    ``closeness = (1 / N) * sum_i ||e_i - mu_{y_i}||_2`` (micro average over videos; a class with
    a single video contributes 0). Lower means tighter classes.

    Args:
        embeddings: (N, D) video embeddings (normalised here).
        labels: (N,) integer class ids; any integer values, only equality matters.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: on empty input, wrong shapes or dtypes, or a length mismatch.
    """
    _check_embeddings(embeddings, "embeddings", "closeness")
    _check_labels(labels, embeddings.shape[0], "closeness", None)
    dense, num_classes = _dense_labels(labels)
    sums, counts = _class_sums(embeddings, dense, num_classes)
    centres = sums / counts.unsqueeze(1).to(sums.dtype)  # (P, D)
    normed = F.normalize(embeddings.to(sums.dtype), dim=1)  # (N, D)
    return (normed - centres[dense]).norm(dim=1).mean()


def dispersion(embeddings: Tensor, labels: Tensor) -> Tensor:
    """Dispersion (uniformity): the smallest distance between two class centres.

    ``dispersion = min over present classes c != c' of ||mu_c - mu_c'||_2``. Higher means better
    separated classes. With fewer than two classes present no pair exists and the result is NaN
    (a value, not an error, so an evaluation on a single-class batch, such as a sanity check,
    does not crash; NaN cannot be mistaken for a real distance).

    Args:
        embeddings: (N, D) video embeddings (normalised here).
        labels: (N,) integer class ids; any integer values, only equality matters.

    Returns:
        A scalar tensor (NaN with fewer than two classes).

    Raises:
        ValueError: on empty input, wrong shapes or dtypes, or a length mismatch.
    """
    _check_embeddings(embeddings, "embeddings", "dispersion")
    _check_labels(labels, embeddings.shape[0], "dispersion", None)
    dense, num_classes = _dense_labels(labels)
    return _dispersion_compute(*_class_sums(embeddings, dense, num_classes), reduction="min")


def mean_centre_distance(embeddings: Tensor, labels: Tensor) -> Tensor:
    """Mean distance between class centres, a less noisy companion of :func:`dispersion`.

    ``mean_centre_distance = (2 / (P (P - 1))) * sum over present classes c < c' of
    ||mu_c - mu_c'||_2`` with P the number of present classes; NaN when P < 2 (as
    :func:`dispersion`).

    Args:
        embeddings: (N, D) video embeddings (normalised here).
        labels: (N,) integer class ids; any integer values, only equality matters.

    Returns:
        A scalar tensor (NaN with fewer than two classes).

    Raises:
        ValueError: on empty input, wrong shapes or dtypes, or a length mismatch.
    """
    _check_embeddings(embeddings, "embeddings", "mean_centre_distance")
    _check_labels(labels, embeddings.shape[0], "mean_centre_distance", None)
    dense, num_classes = _dense_labels(labels)
    return _dispersion_compute(*_class_sums(embeddings, dense, num_classes), reduction="mean")


def zero_shot_topk(
    video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor, k: int = 1
) -> Tensor:
    """Zero-shot top-k accuracy by nearest class embedding under cosine similarity.

    With ``s_ij = cos(v_i, t_j)`` between video ``i`` and class embedding ``j``, the result is
    ``(1 / N) * #{i : y_i is among the k classes with highest s_ij}`` (micro average over
    videos). Ties are broken deterministically by class index, lower first (the order of a stable
    descending sort), so a collapsed model that scores every class equally predicts class 0 and
    does not score 100%. A video whose similarity to its own class is not finite counts as wrong.

    Args:
        video_embeddings: (N, D) video embeddings.
        class_embeddings: (C, D) class-name embeddings; row ``j`` is class ``j``.
        labels: (N,) integers in ``[0, C)``.
        k: how many nearest classes count, ``1 <= k <= C``.

    Returns:
        A scalar tensor in [0, 1].

    Raises:
        ValueError: on empty input, wrong shapes or dtypes, mismatched dimensions, labels outside
            ``[0, C)`` or ``k`` outside ``[1, C]``.
    """
    _zero_shot_check(video_embeddings, class_embeddings, labels, k, "zero_shot_topk")
    correct = _topk_correct(video_embeddings, class_embeddings, labels, k)
    dtype = torch.promote_types(_work_dtype(video_embeddings), _work_dtype(class_embeddings))
    return correct.to(dtype).mean()


def zero_shot_topk_per_class(
    video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor, k: int = 1
) -> Tensor:
    """:func:`zero_shot_topk` of each class's own videos, same ranking and tie rule.

    Args:
        As :func:`zero_shot_topk`.

    Returns:
        (C,) accuracies in [0, 1]; NaN for a class without videos.

    Raises:
        ValueError: as :func:`zero_shot_topk`.
    """
    _zero_shot_check(video_embeddings, class_embeddings, labels, k, "zero_shot_topk_per_class")
    correct = _topk_correct(video_embeddings, class_embeddings, labels, k)  # (N,)
    dtype = torch.promote_types(_work_dtype(video_embeddings), _work_dtype(class_embeddings))
    num_classes = class_embeddings.shape[0]
    labels = labels.long()
    hits = torch.bincount(labels, weights=correct.to(dtype), minlength=num_classes)  # (C,)
    counts = torch.bincount(labels, minlength=num_classes).to(hits.dtype)  # (C,)
    return hits / counts


def harmonic_mean(a: Tensor | float, b: Tensor | float) -> Tensor:
    """Harmonic mean ``H = 2ab / (a + b)`` (the generalised zero-shot summary of seen and unseen
    accuracy), element-wise, with ``H = 0`` where ``a + b = 0`` and NaN where an input is NaN
    (a part that was not measured leaves H undefined, not 0).

    Args:
        a: non-negative number or tensor.
        b: non-negative number or tensor, broadcastable with ``a``.

    Returns:
        A floating tensor of the broadcast shape.

    Raises:
        ValueError: if an input is negative.
    """
    a_t, b_t = torch.as_tensor(a), torch.as_tensor(b)
    dtype = torch.promote_types(torch.result_type(a_t, b_t), torch.float32)
    a_t, b_t = a_t.to(dtype), b_t.to(dtype)
    if bool((a_t < 0).any()) or bool((b_t < 0).any()):
        raise ValueError(f"harmonic_mean: inputs must be non-negative, got {a} and {b}")
    total = a_t + b_t
    return torch.where(total == 0, 0.0, 2 * a_t * b_t / torch.where(total == 0, 1, total))


def gzsl_accuracies(
    video_embeddings: Tensor,
    class_embeddings: Tensor,
    labels: Tensor,
    seen_mask: Tensor,
    gamma: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Generalised zero-shot top-1 of seen-class and unseen-class videos, with calibrated
    stacking (Chao et al., 2016).

    Every video is scored against all classes with ``s_ij = cos(v_i, t_j) - gamma * seen_j``
    and predicted as the arg-max (ties: lower class index). ``gamma > 0`` counters the bias of
    a model towards the classes it was trained on; ``gamma = 0`` is plain nearest neighbour.

    Args:
        video_embeddings: (N, D) video embeddings.
        class_embeddings: (C, D) class-name embeddings, seen and unseen classes.
        labels: (N,) integers in ``[0, C)``.
        seen_mask: (C,) bool, True for seen (training) classes.
        gamma: the calibration offset subtracted from seen-class scores.

    Returns:
        ``(seen, unseen)`` accuracies: the fraction of videos of seen (unseen) classes whose
        prediction is their class; NaN for a part without videos.
    """
    _zero_shot_check(video_embeddings, class_embeddings, labels, 1, "gzsl_accuracies")
    scores = _calibrated_scores(video_embeddings, class_embeddings, seen_mask, gamma)  # (N, C)
    correct = scores.argmax(dim=1) == labels  # (N,)
    seen_video = seen_mask.to(labels.device)[labels]  # (N,)
    return _mean_or_nan(correct[seen_video], scores), _mean_or_nan(correct[~seen_video], scores)


def select_calibration_gamma(
    video_embeddings: Tensor,
    class_embeddings: Tensor,
    labels: Tensor,
    seen_mask: Tensor,
    max_candidates: int = 2001,
) -> tuple[float, float]:
    """The calibrated-stacking offset ``gamma`` that maximises the harmonic mean H of seen and
    unseen accuracy (:func:`gzsl_accuracies`) on a validation set.

    A video's prediction changes group only where ``gamma`` crosses ``d_i = max_seen s_ij -
    max_unseen s_ij``, so H is a step function of ``gamma``: the candidates are the midpoints
    between consecutive sorted ``d_i`` (at most ``max_candidates``, as quantiles, for large
    sets), one below all and one above all, and 0. Ties in H go to the smallest ``|gamma|``.

    Args:
        video_embeddings: (N, D) validation video embeddings, of seen and unseen classes.
        class_embeddings: (C, D) class-name embeddings.
        labels: (N,) integers in ``[0, C)``.
        seen_mask: (C,) bool; both parts need videos.
        max_candidates: most gamma values tried.

    Returns:
        ``(gamma, h)``: the chosen offset and the validation H it reaches.
    """
    _zero_shot_check(video_embeddings, class_embeddings, labels, 1, "select_calibration_gamma")
    seen_mask = seen_mask.to(labels.device)
    seen_video = seen_mask[labels]  # (N,)
    if seen_video.all() or not seen_video.any() or seen_mask.all() or not seen_mask.any():
        raise ValueError("select_calibration_gamma needs seen and unseen classes and videos")
    scores = _cosine_scores(video_embeddings, class_embeddings)  # (N, C)
    seen_idx = seen_mask.nonzero().squeeze(1)  # (S,)
    unseen_idx = (~seen_mask).nonzero().squeeze(1)  # (U,)
    best_seen, arg_seen = scores[:, seen_idx].max(dim=1)  # (N,), (N,)
    best_unseen, arg_unseen = scores[:, unseen_idx].max(dim=1)  # (N,), (N,)
    seen_right = seen_idx[arg_seen] == labels  # (N,): right if the seen group wins
    unseen_right = unseen_idx[arg_unseen] == labels  # (N,)
    margin = best_seen - best_unseen  # (N,): the seen group wins while gamma < margin
    ordered = torch.unique(margin)  # sorted
    mids = (ordered[1:] + ordered[:-1]) / 2
    if mids.numel() > max_candidates:
        mids = torch.quantile(mids, torch.linspace(0, 1, max_candidates, dtype=mids.dtype))
    low, high = ordered[:1] - 1.0, ordered[-1:] + 1.0
    candidates = torch.cat([mids, low, high, torch.zeros_like(low)])  # (G,)
    seen_wins = margin[None, :] > candidates[:, None]  # (G, N)
    right = torch.where(seen_wins, seen_right[None, :], unseen_right[None, :]).to(scores.dtype)
    acc_seen = right[:, seen_video].mean(dim=1)  # (G,)
    acc_unseen = right[:, ~seen_video].mean(dim=1)  # (G,)
    h = harmonic_mean(acc_seen, acc_unseen)  # (G,)
    best = h.max()
    ties = (h == best).nonzero().squeeze(1)
    choice = ties[candidates[ties].abs().argmin()]
    return float(candidates[choice]), float(best)


def _cosine_scores(video_embeddings: Tensor, class_embeddings: Tensor) -> Tensor:
    """``cos(v_i, t_j)`` of every video and class, in the promoted work dtype: ``(N, C)``."""
    dtype = torch.promote_types(_work_dtype(video_embeddings), _work_dtype(class_embeddings))
    videos = F.normalize(video_embeddings.to(dtype), dim=1)  # (N, D)
    classes = F.normalize(class_embeddings.to(dtype), dim=1)  # (C, D)
    return videos @ classes.T  # (N, C)


def _calibrated_scores(
    video_embeddings: Tensor, class_embeddings: Tensor, seen_mask: Tensor, gamma: float
) -> Tensor:
    scores = _cosine_scores(video_embeddings, class_embeddings)  # (N, C)
    offset = gamma * seen_mask.to(device=scores.device, dtype=scores.dtype)  # (C,)
    return scores - offset[None, :]  # (N, C)


def _mean_or_nan(values: Tensor, like: Tensor) -> Tensor:
    if values.numel() == 0:
        return torch.tensor(float("nan"), dtype=like.dtype, device=like.device)
    return values.to(like.dtype).mean()


def attribute_accuracy(
    video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor, class_values: Tensor
) -> Tensor:
    """How often the top-1 class shares one attribute (e.g. the colour) with the true class.

    ``(1 / N) * #{i : a[pred_i] == a[y_i]}`` with ``pred_i`` the nearest class (ties: lower
    index, as :func:`zero_shot_topk`) and ``a`` the attribute's value id of each class. It
    tells which part of a composed class name (colour, shape, motion) the errors get wrong.

    Args:
        video_embeddings: (N, D) video embeddings.
        class_embeddings: (C, D) class-name embeddings.
        labels: (N,) integers in ``[0, C)``.
        class_values: (C,) integer id of the attribute's value for each class.

    Returns:
        A scalar tensor in [0, 1].
    """
    _zero_shot_check(video_embeddings, class_embeddings, labels, 1, "attribute_accuracy")
    if class_values.shape != (class_embeddings.shape[0],):
        raise ValueError(
            f"attribute_accuracy: class_values must be ({class_embeddings.shape[0]},), got "
            f"{tuple(class_values.shape)}"
        )
    scores = _cosine_scores(video_embeddings, class_embeddings)  # (N, C)
    values = class_values.to(labels.device)
    same = values[scores.argmax(dim=1)] == values[labels]  # (N,)
    return same.to(scores.dtype).mean()


def confusion_matrix(video_embeddings: Tensor, class_embeddings: Tensor, labels: Tensor) -> Tensor:
    """Counts of (true class, top-1 class) pairs: ``(C, C)`` int64, rows are true classes.

    The top-1 is the nearest class by cosine similarity, ties to the lower index (as
    :func:`zero_shot_topk`), so the diagonal sums to ``N * top1``.
    """
    _zero_shot_check(video_embeddings, class_embeddings, labels, 1, "confusion_matrix")
    num_classes = class_embeddings.shape[0]
    scores = _cosine_scores(video_embeddings, class_embeddings)  # (N, C)
    pairs = labels.long() * num_classes + scores.argmax(dim=1)  # (N,)
    return torch.bincount(pairs, minlength=num_classes**2).view(num_classes, num_classes)


@dataclass
class EvalResult:
    """Embeddings and scores of one evaluation set, kept after a test epoch for plots."""

    name: str
    class_names: list[str]
    video_embeddings: Tensor  # (N, D), L2-normalised
    class_embeddings: Tensor  # (C, D), L2-normalised
    labels: Tensor  # (N,)
    metrics: dict[str, float]


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
            validation data (:func:`select_calibration_gamma`); adds
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
        "top1": zero_shot_topk(video_embeddings, class_embeddings, labels, 1),
        "top5": zero_shot_topk(video_embeddings, class_embeddings, labels, min(5, num_classes)),
        "closeness": closeness(video_embeddings, labels),
        "dispersion": dispersion(video_embeddings, labels),
        "mean_centre_distance": mean_centre_distance(video_embeddings, labels),
    }
    metrics = {name: float(value) for name, value in metrics.items()}
    scores = protocol_scores(
        video_embeddings,
        class_embeddings,
        labels,
        half_splits,
        seen_mask,
        calibration_gamma,
        attributes,
    )
    return metrics | scores


def protocol_scores(
    video_embeddings: Tensor,
    class_embeddings: Tensor,
    labels: Tensor,
    half_splits: list[list[int]] | None = None,
    seen_mask: list[bool] | None = None,
    calibration_gamma: float | None = None,
    attributes: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    """The scores of one evaluation set that need all its embeddings at once.

    The arguments are those of :func:`evaluate_zero_shot`, which returns these scores with
    top-1, top-5, Closeness and Dispersion (which :mod:`aurl.metrics` accumulates per batch).

    Returns:
        ``half_top1_mean``/``half_top1_std`` with ``half_splits``; the ``gzsl_*`` scores with
        ``seen_mask`` (calibrated ones with ``calibration_gamma``); ``attr_<name>`` per
        attribute; nothing else.
    """
    num_classes = class_embeddings.shape[0]
    metrics: dict[str, Tensor] = {}
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
                zero_shot_topk(
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
                parts[name] = zero_shot_topk(
                    video_embeddings[rows], class_embeddings, labels[rows], 1
                )
            else:
                log.warning("generalised zero-shot: no %s videos were evaluated", name[5:])
                parts[name] = torch.tensor(float("nan"))
        metrics.update(parts)
        metrics["gzsl_h"] = harmonic_mean(parts["gzsl_seen"], parts["gzsl_unseen"])
        if calibration_gamma is not None:
            seen_t = torch.as_tensor(seen_mask, device=labels.device)  # (C,)
            cal_seen, cal_unseen = gzsl_accuracies(
                video_embeddings, class_embeddings, labels, seen_t, calibration_gamma
            )
            metrics["gzsl_gamma"] = torch.tensor(calibration_gamma)
            metrics["gzsl_cal_seen"] = cal_seen
            metrics["gzsl_cal_unseen"] = cal_unseen
            metrics["gzsl_cal_h"] = harmonic_mean(cal_seen, cal_unseen)
    for attribute, values in (attributes or {}).items():
        ids = {value: k for k, value in enumerate(sorted(set(values)))}
        class_values = torch.tensor([ids[v] for v in values], device=labels.device)  # (C,)
        metrics[f"attr_{attribute}"] = attribute_accuracy(
            video_embeddings, class_embeddings, labels, class_values
        )
    return {name: float(value) for name, value in metrics.items()}
