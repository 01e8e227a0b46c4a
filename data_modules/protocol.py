"""The zero-shot protocol: the seeded 50% class splits, overlap removal and GZSL class lists."""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from aurl.text_encoders import ClassEmbeddingCache, TextEncoder

logger = logging.getLogger(__name__)


class _Encoder(Protocol):
    def encode(self, texts: list[str]) -> Tensor: ...


def half_class_splits(class_names: Sequence[str], n_splits: int = 10) -> list[list[str]]:
    """The seeded 50% class subsets of the E2E/AURL protocol, as class names.

    For split ``s`` in ``0..n_splits-1`` this is exactly
    ``np.random.seed(s); np.random.permutation(n)[: n // 2]`` applied to the sorted class list
    (the original code sorts the class folder names). A private ``RandomState(s)`` draws the same
    numbers as the legacy global seed without touching global state.

    Args:
        class_names: the dataset's classes, in any order (the raw folder/label names give the
            original splits; cleaned names may sort differently).
        n_splits: number of splits.

    Returns:
        One list of ``n // 2`` class names per split, in permutation order.
    """
    ordered = sorted(class_names)
    if len(set(ordered)) != len(ordered):
        raise ValueError("class_names has duplicates; the splits would be ambiguous")
    n = len(ordered)
    return [
        [ordered[i] for i in np.random.RandomState(s).permutation(n)[: n // 2]]
        for s in range(n_splits)
    ]


def half_class_split_indices(class_names: Sequence[str], n_splits: int = 10) -> list[list[int]]:
    """:func:`half_class_splits` as indices into ``class_names`` (in its given order)."""
    position = {name: i for i, name in enumerate(class_names)}
    return [
        [position[name] for name in split] for split in half_class_splits(class_names, n_splits)
    ]


@dataclass(frozen=True)
class OverlapResult:
    """Outcome of :func:`remove_overlap`.

    Attributes:
        kept: source classes kept, in source order.
        removed: source classes dropped, in source order.
        nearest: for every source class, its nearest target class and cosine distance
            (empty when overlap removal was disabled with ``tau = 0``).
    """

    kept: list[str]
    removed: list[str]
    nearest: dict[str, tuple[str, float]]


def cosine_distances(a: Tensor, b: Tensor) -> Tensor:
    """``1 - cos`` between every row of ``a`` (N, D) and of ``b`` (M, D); returns (N, M)."""
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return 1.0 - a @ b.T  # (N, M)


def remove_overlap(
    source_names: Sequence[str],
    target_names: Sequence[str],
    encoder: _Encoder | None,
    tau: float = 0.05,
    report_path: str | Path | None = None,
    cache: ClassEmbeddingCache | None = None,
) -> OverlapResult:
    """Drops source classes that are too close to a target class to call the test zero-shot.

    A source class is removed when the cosine distance ``1 - cos`` between its name embedding
    and the embedding of ANY target class name is below ``tau`` (the paper's rule, tau = 0.05,
    which left 662 of the 700 Kinetics classes with Word2Vec; other encoders remove a different
    number, see the report).

    Args:
        source_names: cleaned source class names.
        target_names: cleaned class names of all target (test) datasets together.
        encoder: a text encoder (``encode(list[str]) -> (N, D)``); may be None only when
            ``tau == 0``.
        tau: distance threshold; 0 disables removal (nothing is encoded or written).
        report_path: if given, a TSV with one row per source class: ``source_class``,
            ``status`` (kept/removed), ``nearest_target``, ``distance``.
        cache: where to look up and keep the name embeddings (``encoder`` must then be a
            :class:`TextEncoder`); a hit does not load the encoder's model.

    Returns:
        The kept and removed classes with each source class's nearest target.
    """
    source_names = list(source_names)
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if tau == 0:
        logger.info(
            "overlap removal disabled (tau = 0): keeping all %d source classes", len(source_names)
        )
        return OverlapResult(kept=source_names, removed=[], nearest={})
    if encoder is None:
        raise ValueError("overlap removal with tau > 0 needs a text encoder")
    # Several target datasets may share a class name; the encoder rejects duplicates.
    target_names = list(dict.fromkeys(target_names))
    if not source_names or not target_names:
        raise ValueError("overlap removal needs at least one source and one target class")
    if cache is None:
        source_emb, target_emb = encoder.encode(source_names), encoder.encode(target_names)
    else:
        if not isinstance(encoder, TextEncoder):
            raise TypeError(f"a cache needs a TextEncoder, got {type(encoder).__name__}")
        source_emb = cache.encode(encoder, source_names)  # (N, D)
        target_emb = cache.encode(encoder, target_names)  # (M, D)
    distances = cosine_distances(source_emb, target_emb)
    min_dist, argmin = distances.min(dim=1)  # (N,), (N,)
    nearest = {
        name: (target_names[int(j)], float(d))
        for name, j, d in zip(source_names, argmin, min_dist, strict=True)
    }
    removed_mask = (min_dist < tau).tolist()
    kept = [n for n, r in zip(source_names, removed_mask, strict=True) if not r]
    removed = [n for n, r in zip(source_names, removed_mask, strict=True) if r]
    logger.info(
        "overlap removal (tau = %g): kept %d and removed %d of %d source classes",
        tau,
        len(kept),
        len(removed),
        len(source_names),
    )
    if report_path is not None:
        _write_report(Path(report_path), source_names, removed_mask, nearest)
        logger.info("overlap report written to %s", report_path)
    return OverlapResult(kept=kept, removed=removed, nearest=nearest)


def _write_report(
    path: Path,
    source_names: list[str],
    removed_mask: list[bool],
    nearest: dict[str, tuple[str, float]],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["source_class", "status", "nearest_target", "distance"])
        for name, removed in zip(source_names, removed_mask, strict=True):
            target, dist = nearest[name]
            writer.writerow([name, "removed" if removed else "kept", target, f"{dist:.6f}"])
    tmp.replace(path)


def gzsl_class_names(
    seen_names: Sequence[str], unseen_names: Sequence[str]
) -> tuple[list[str], list[bool]]:
    """Candidate classes for generalised zero-shot: seen first, then unseen, with a seen mask.

    Args:
        seen_names: training classes.
        unseen_names: target classes.

    Returns:
        ``(class_names, seen_mask)``; labels of seen videos keep their seen index, unseen
        labels are offset by ``len(seen_names)``.
    """
    clash = sorted(set(seen_names) & set(unseen_names))
    if clash:
        raise ValueError(
            f"seen and unseen classes share names {clash[:5]}{'...' if len(clash) > 5 else ''}; "
            "enable overlap removal (tau > 0) or drop them from one side"
        )
    names = [*seen_names, *unseen_names]
    return names, [True] * len(seen_names) + [False] * len(unseen_names)
