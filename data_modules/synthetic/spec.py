"""What a SyntheticActions benchmark is: its vocabulary, its classes, its unseen split, its spec.

:class:`SyntheticSpec` holds every parameter of a generated benchmark; its defaults are the
benchmark of :data:`~data_modules.synthetic.cache.BENCHMARK_VERSION` and the single source of
every default in :mod:`data_modules.synthetic` and :class:`data_modules.datasets.SyntheticActions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Saturated, well separated RGB values that survive H.264 4:2:0 chroma subsampling at 32x32.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (235, 35, 35),
    "green": (40, 205, 55),
    "blue": (45, 85, 255),
    "yellow": (245, 225, 30),
    "white": (245, 245, 245),
    "purple": (165, 55, 225),
    "orange": (255, 140, 20),
}
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "cross")
MOTIONS: tuple[str, ...] = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "rotating clockwise",
    "rotating anticlockwise",
    "growing",
    "shrinking",
)
# What a left-right mirror makes of each motion (the others are their own mirror).
MIRRORED_MOTIONS: dict[str, str] = {
    "moving left": "moving right",
    "moving right": "moving left",
    "rotating clockwise": "rotating anticlockwise",
    "rotating anticlockwise": "rotating clockwise",
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Every parameter of a SyntheticActions benchmark; the defaults are the benchmark's.

    All but the split key the cache folder (a different value renders other videos); the split
    is only recorded in the manifest.
    """

    # Vocabularies (subsets of COLOURS, SHAPES, MOTIONS): 5 x 4 x 6 = 120 classes.
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "white")
    shapes: tuple[str, ...] = SHAPES
    # 6 of the 8 MOTIONS; "rotating anticlockwise" and "shrinking" move only distractors.
    motions: tuple[str, ...] = (
        "moving left",
        "moving right",
        "moving up",
        "moving down",
        "rotating clockwise",
        "growing",
    )
    videos_per_class: int = 48  # benchmark v2 (v1 had 24): 5,760 files
    num_frames: int = 16  # frames per video: one 16-frame clip, or 8 frames at stride 2
    size: int = 32  # frame side in pixels; even, as H.264 with 4:2:0 chroma requires
    fps: int = 8  # frame rate written into the files
    crf: int = 20  # H.264 constant rate factor (lower is higher quality)
    seed: int = 0  # rendering seed: video i of class c uses video_seed(seed, c, i)
    num_unseen: int = 30  # classes held out as unseen (a quarter of the 120)
    split_seed: int = 0  # seed of the unseen split; does not key the folder


# The defaults of the functions below; a frozen instance, so safe to share.
_DEFAULT = SyntheticSpec()


def synthetic_class_names(
    colours: Sequence[str] = _DEFAULT.colours,
    shapes: Sequence[str] = _DEFAULT.shapes,
    motions: Sequence[str] = _DEFAULT.motions,
) -> list[str]:
    """All compositions ``"<colour> <shape> <motion>"``, colour-major, in the given orders.

    Args:
        colours: colour names, keys of ``COLOURS``.
        shapes: shape names from ``SHAPES``.
        motions: motion names from ``MOTIONS``.

    Returns:
        ``len(colours) * len(shapes) * len(motions)`` unique class names.

    Raises:
        ValueError: an unknown or repeated attribute value.
    """
    _check_vocabulary("colours", colours, tuple(COLOURS))
    _check_vocabulary("shapes", shapes, SHAPES)
    _check_vocabulary("motions", motions, MOTIONS)
    return [f"{c} {s} {m}" for c in colours for s in shapes for m in motions]


def parse_class_name(name: str) -> tuple[str, str, str]:
    """Splits ``"red square moving left"`` into ``("red", "square", "moving left")``.

    Raises:
        ValueError: the name is not a composition of known colour, shape and motion.
    """
    parts = name.split(" ", 2)
    if (
        len(parts) != 3
        or parts[0] not in COLOURS
        or parts[1] not in SHAPES
        or (parts[2] not in MOTIONS)
    ):
        raise ValueError(
            f"not a synthetic class name: {name!r} (expected '<colour> <shape> <motion>' with "
            f"colour in {sorted(COLOURS)}, shape in {list(SHAPES)}, motion in {list(MOTIONS)})"
        )
    return parts[0], parts[1], parts[2]


def split_unseen(
    classes: Sequence[str] | Sequence[tuple[str, str, str]],
    num_unseen: int = _DEFAULT.num_unseen,
    seed: int = _DEFAULT.split_seed,
    max_tries: int = 1000,
) -> tuple[list[str], list[str]]:
    """Holds out ``num_unseen`` compositions while every attribute value stays among the seen.

    Draws uniformly random subsets of size ``num_unseen`` (a ``numpy`` generator seeded with
    ``seed``) and keeps the first whose complement contains every colour, every shape and every
    motion; the result is therefore uniform over all valid splits.

    Args:
        classes: class names, or ``(colour, shape, motion)`` tuples.
        num_unseen: number of held-out classes.
        seed: split seed; the same seed and classes always give the same split.
        max_tries: random draws before giving up.

    Returns:
        ``(seen, unseen)`` class names, each in the order of ``classes``.

    Raises:
        ValueError: ``num_unseen`` out of range, repeated classes, or no valid split found.
    """
    attributes = [c if isinstance(c, tuple) else parse_class_name(c) for c in classes]
    names = [" ".join(a) for a in attributes]
    if len(set(names)) != len(names):
        raise ValueError("split_unseen: class list has repeated classes")
    n = len(names)
    values = [{a[k] for a in attributes} for k in range(3)]
    needed = max(len(v) for v in values)
    if not 0 <= num_unseen <= n - needed:
        raise ValueError(
            f"split_unseen: num_unseen={num_unseen} impossible with {n} classes: at least "
            f"{needed} must stay seen to cover every colour, shape and motion"
        )
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        held_out = set(rng.choice(n, size=num_unseen, replace=False).tolist())
        seen = [i for i in range(n) if i not in held_out]
        if all({attributes[i][k] for i in seen} == values[k] for k in range(3)):
            return [names[i] for i in seen], [names[i] for i in sorted(held_out)]
    raise ValueError(
        f"split_unseen: no split of {num_unseen} unseen among {n} classes keeps every attribute "
        f"seen after {max_tries} random draws (seed {seed}); hold out fewer classes"
    )


def _check_vocabulary(field: str, given: Sequence[str], known: Sequence[str]) -> None:
    unknown = [v for v in given if v not in known]
    if unknown or len(set(given)) != len(given) or not given:
        raise ValueError(
            f"{field}: expected distinct values from {list(known)}, got {list(given)}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
