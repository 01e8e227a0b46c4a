"""SyntheticActions: the embedded zero-shot benchmark of colour x shape x motion compositions.

Every class is a composition such as ``"red square moving left"``; the default vocabulary gives
5 colours x 4 shapes x 6 motions = 120 classes. A seeded split holds out compositions as unseen
classes while every colour, shape and motion still occurs among the seen ones, so an unseen class
("blue circle growing") is reachable only through the words of its name.

Rendering rules (procedural numpy, deterministic from a per-video seed):

- Background: a smooth random low-saturation texture (grey levels ~15-85 with a small colour
  tint) plus static fine noise and fresh per-frame noise, so no background pixel is as bright or
  as saturated as an object.
- Objects: filled, anti-aliased shapes, all of the area of a circle of the object's radius.
  Each object is two-toned: the half on one side of a line
  through its centre is drawn at full colour, the other half at 60% brightness. The marker makes
  rotation visible for every shape (a circle too) and breaks the 90-degree symmetry of squares
  and crosses, so clockwise differs from anticlockwise.
- Main object: the class's colour, shape and motion. It is drawn in front of the distractor and
  its radius is at least 1.6x the distractor's in every frame; "the larger object" is the rule
  that names the class.
- Distractor: one smaller object of a different colour, a different shape and a different
  motion, drawn from the renderer's full vocabulary (``COLOURS``, ``SHAPES``, ``MOTIONS``), so
  the model must attend to the main object.
- Motions: translations move the object by 30-50% of the frame side over the video (less where
  a large object would leave the frame); rotations turn it by 0.5-0.9 turns; growing /
  shrinking scale its radius by 1.5-1.8x. Objects stay wholly inside every frame.

Videos are written as H.264 mp4 files into a cache folder laid out as a ``VideoFolder``::

    <cache_dir>/synthetic-<hash>/<class name>/<index:04d>.mp4
    <cache_dir>/synthetic-<hash>/manifest.json

The hash keys the folder by every parameter that changes a video (generator version,
vocabulary, counts, frames, size, fps, crf, seed), so different parameters never share a folder.
The manifest is written last and atomically: a folder without one is an interrupted generation,
resumed by rendering only the files that are missing. The unseen split is recorded in the
manifest but does not key the folder: a different split only rewrites the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from data_modules.video_writer import write_video

logger = logging.getLogger(__name__)

# Bump whenever rendering or encoding changes what a given seed produces: it keys the cache.
GENERATOR_VERSION = 1
# The benchmark's version: the renderer plus the default parameters below. Results of
# different versions are never comparable; the version keys the cache folder, the manifest
# records it and README names it with every number.
#   v1: 16-frame videos, 24 a class (2,880 files).
#   v2: 16-frame videos, 48 a class (5,760 files): more videos of the same classes.
BENCHMARK_VERSION = 2
MANIFEST_NAME = "manifest.json"

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
DEFAULT_VIDEOS_PER_CLASS = 48
DEFAULT_NUM_FRAMES = 16
DEFAULT_COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "white")
DEFAULT_SHAPES: tuple[str, ...] = SHAPES
DEFAULT_MOTIONS: tuple[str, ...] = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "rotating clockwise",
    "growing",
)

# What a left-right mirror makes of each motion (the others are their own mirror).
MIRRORED_MOTIONS: dict[str, str] = {
    "moving left": "moving right",
    "moving right": "moving left",
    "rotating clockwise": "rotating anticlockwise",
    "rotating anticlockwise": "rotating clockwise",
}
# Unit direction (dx, dy) in image coordinates (y points down) of each translation.
_DIRECTIONS: dict[str, tuple[float, float]] = {
    "moving left": (-1.0, 0.0),
    "moving right": (1.0, 0.0),
    "moving up": (0.0, -1.0),
    "moving down": (0.0, 1.0),
}
# Sign of the angular velocity in image coordinates: with y down, a growing angle turns clockwise.
_SPINS: dict[str, float] = {"rotating clockwise": 1.0, "rotating anticlockwise": -1.0}
_SCALINGS: dict[str, float] = {"growing": 1.0, "shrinking": -1.0}

# Radii are fractions of the frame side; the distractor's largest radius is at most
# _DISTRACTOR_RATIO[1] of the main object's smallest radius.
_MAIN_RADIUS = (0.13, 0.17)
_DISTRACTOR_RATIO = (0.5, 0.62)
_TRAVEL = (0.3, 0.5)
_TURNS = (0.5, 0.9)
_SCALE = (1.5, 1.8)
_DARK_HALF = 0.6
# Shape proportions (in units of the radius) giving each shape the area of the circle.
_SQUARE_HALF = math.sqrt(math.pi) / 2  # half side
_TRIANGLE_R = math.sqrt(4 * math.pi / (3 * math.sqrt(3)))  # circumradius
_CROSS_ARM, _CROSS_WIDTH = 1.1, 0.44  # half length and half width of each bar
# Farthest point of each shape from its centre, in units of the radius.
_REACH = {
    "circle": 1.0,
    "square": _SQUARE_HALF * math.sqrt(2),
    "triangle": _TRIANGLE_R,
    "cross": math.hypot(_CROSS_ARM, _CROSS_WIDTH),
}
_GOP_SIZE = 8


class SyntheticVideo(NamedTuple):
    """One generated video: ``path`` is relative to the dataset root."""

    path: str
    class_name: str
    index: int
    seed: int


@dataclass(frozen=True)
class SyntheticManifest:
    """What ``manifest.json`` records about a generated SyntheticActions folder.

    Attributes:
        root: the dataset folder (``<cache_dir>/synthetic-<hash>``).
        version: ``GENERATOR_VERSION`` that rendered the videos.
        params: the parameters that key the folder (see ``generate_synthetic_actions``).
        class_names: all classes, in label order.
        seen: seen (training) classes, in label order.
        unseen: held-out classes, in label order.
        num_unseen: size of the unseen split.
        split_seed: seed of the unseen split.
        videos: every video of the folder, class by class.
    """

    root: Path
    version: int
    params: dict[str, Any]
    class_names: list[str]
    seen: list[str]
    unseen: list[str]
    num_unseen: int
    split_seed: int
    videos: list[SyntheticVideo]

    @property
    def counts(self) -> dict[str, int]:
        """Number of videos per class name."""
        counts = dict.fromkeys(self.class_names, 0)
        for video in self.videos:
            counts[video.class_name] += 1
        return counts

    def video_paths(self, class_names: Iterable[str] | None = None) -> list[tuple[Path, str]]:
        """Absolute paths with their class names, optionally restricted to ``class_names``."""
        wanted = None if class_names is None else set(class_names)
        return [
            (self.root / video.path, video.class_name)
            for video in self.videos
            if wanted is None or video.class_name in wanted
        ]


def synthetic_class_names(
    colours: Sequence[str] = DEFAULT_COLOURS,
    shapes: Sequence[str] = DEFAULT_SHAPES,
    motions: Sequence[str] = DEFAULT_MOTIONS,
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
    num_unseen: int = 30,
    seed: int = 0,
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


def video_seed(seed: int, class_name: str, index: int) -> int:
    """The 64-bit seed of one video, from the dataset seed, its class name and index.

    Derived from the class *name* (not its position), so any subset of classes and videos can
    be generated alone, in any order, in any process.
    """
    name_key = int.from_bytes(hashlib.sha256(class_name.encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([seed, name_key, index]).generate_state(1, np.uint64)[0])


def render_video(
    colour: str,
    shape: str,
    motion: str,
    rng: np.random.Generator,
    num_frames: int = 16,
    size: int = 32,
) -> np.ndarray:
    """Renders one video of a ``colour`` ``shape`` doing ``motion`` on a noisy background.

    See the module docstring for the rules (two-tone objects, the larger main object in front,
    a distractor differing in colour, shape and motion).

    Args:
        colour: key of ``COLOURS``.
        shape: one of ``SHAPES``.
        motion: one of ``MOTIONS``.
        rng: source of every random choice; the same state gives the same video.
        num_frames: number of frames T (at least 2).
        size: frame height and width in pixels (at least 16).

    Returns:
        uint8 frames of shape ``(T, size, size, 3)``.
    """
    parse_class_name(f"{colour} {shape} {motion}")
    if num_frames < 2 or size < 16:
        raise ValueError(
            f"render_video: need num_frames >= 2 and size >= 16, got {num_frames} and {size}"
        )
    frames = _background(rng, num_frames, size)  # (T, H, W, 3) float
    main_radius = float(rng.uniform(*_MAIN_RADIUS)) * size
    d_colour = _pick_other(rng, tuple(COLOURS), colour)
    d_shape = _pick_other(rng, SHAPES, shape)
    d_motion = _pick_other(rng, MOTIONS, motion)
    # The distractor's largest radius is a fraction of the main object's smallest one.
    d_radius = main_radius * float(rng.uniform(*_DISTRACTOR_RATIO))
    if d_motion in _SCALINGS:
        d_radius /= _SCALE[1]
    # The distractor first, the main object in front of it.
    for obj_colour, obj_shape, obj_motion, radius in (
        (d_colour, d_shape, d_motion, d_radius),
        (colour, shape, motion, main_radius),
    ):
        track = _track(rng, obj_shape, obj_motion, radius, num_frames, size)
        _draw(frames, np.array(COLOURS[obj_colour], np.float32), obj_shape, track)
    frames += rng.normal(0.0, 4.0, frames.shape).astype(np.float32)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def generate_synthetic_actions(
    cache_dir: str | Path | None = None,
    *,
    colours: Sequence[str] = DEFAULT_COLOURS,
    shapes: Sequence[str] = DEFAULT_SHAPES,
    motions: Sequence[str] = DEFAULT_MOTIONS,
    videos_per_class: int = DEFAULT_VIDEOS_PER_CLASS,
    num_frames: int = DEFAULT_NUM_FRAMES,
    size: int = 32,
    fps: int = 8,
    crf: int = 20,
    seed: int = 0,
    num_unseen: int = 30,
    split_seed: int = 0,
    num_workers: int = 2,
    progress: bool = True,
) -> SyntheticManifest:
    """Generates (or finds cached) SyntheticActions videos and returns their manifest.

    Safe to interrupt: rerunning resumes, rendering only the missing videos. Run it in one
    process (e.g. a LightningDataModule's ``prepare_data``), not concurrently in several.

    Args:
        cache_dir: parent of the ``synthetic-<hash>`` folder; ``None`` -> ``default_cache_dir()``.
        colours: colour vocabulary (keys of ``COLOURS``).
        shapes: shape vocabulary (``SHAPES``).
        motions: motion vocabulary (``MOTIONS``).
        videos_per_class: videos rendered for each class.
        num_frames: frames per video.
        size: frame side in pixels; even, as H.264 with 4:2:0 chroma requires.
        fps: frame rate written into the files.
        crf: H.264 constant rate factor (lower is higher quality).
        seed: dataset seed; video ``i`` of class ``c`` uses ``video_seed(seed, c, i)``.
        num_unseen: unseen classes in the recorded split (``split_unseen``).
        split_seed: seed of the recorded split.
        num_workers: render/encode processes; ``<= 1`` works in this process.
        progress: show a tqdm progress bar.

    Returns:
        The manifest of the complete folder.
    """
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and >= 16 (H.264 4:2:0), got {size}")
    if videos_per_class < 1 or num_frames < 2 or fps <= 0:
        raise ValueError(
            f"need videos_per_class >= 1, num_frames >= 2, fps > 0; got {videos_per_class}, "
            f"{num_frames}, {fps}"
        )
    class_names = synthetic_class_names(colours, shapes, motions)
    seen, unseen = split_unseen(class_names, num_unseen, split_seed)
    params = {
        "version": GENERATOR_VERSION,
        "benchmark_version": BENCHMARK_VERSION,
        "colours": list(colours),
        "shapes": list(shapes),
        "motions": list(motions),
        "videos_per_class": videos_per_class,
        "num_frames": num_frames,
        "size": size,
        "fps": fps,
        "crf": crf,
        "gop_size": _GOP_SIZE,
        "seed": seed,
    }
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    root = root / f"synthetic-{_params_hash(params)}"
    manifest = SyntheticManifest(
        root=root,
        version=GENERATOR_VERSION,
        params=params,
        class_names=class_names,
        seen=seen,
        unseen=unseen,
        num_unseen=num_unseen,
        split_seed=split_seed,
        videos=[
            SyntheticVideo(f"{name}/{index:04d}.mp4", name, index, video_seed(seed, name, index))
            for name in class_names
            for index in range(videos_per_class)
        ],
    )
    manifest_path = root / MANIFEST_NAME
    previous = _read_json(manifest_path) if manifest_path.is_file() else None
    if previous is not None and previous.get("params") != params:
        raise ValueError(
            f"{manifest_path}: parameters {previous.get('params')} differ from {params} in a "
            "folder keyed by their hash; delete the folder"
        )
    missing = [v for v in manifest.videos if not _is_complete(root / v.path)]
    if missing:
        _remove_partial_files(root, class_names)
        _render_all(root, manifest, missing, num_workers, progress)
    if missing or previous != _manifest_json(manifest):
        _write_json_atomic(manifest_path, _manifest_json(manifest))
    return manifest


def load_manifest(root: str | Path) -> SyntheticManifest:
    """Reads ``<root>/manifest.json`` of a complete generation.

    Raises:
        FileNotFoundError: no manifest (the generation never finished).
        ValueError: a malformed manifest, naming the file and field.
    """
    root = Path(root)
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no SyntheticActions manifest (generation incomplete or wrong folder)"
        )
    data = _read_json(path)
    try:
        return SyntheticManifest(
            root=root,
            version=int(data["version"]),
            params=dict(data["params"]),
            class_names=list(data["class_names"]),
            seen=list(data["seen"]),
            unseen=list(data["unseen"]),
            num_unseen=int(data["num_unseen"]),
            split_seed=int(data["split_seed"]),
            videos=[
                SyntheticVideo(v["path"], v["class_name"], int(v["index"]), int(v["seed"]))
                for v in data["videos"]
            ],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path}: malformed manifest ({type(error).__name__}: {error})"
        ) from error


def default_cache_dir() -> Path:
    """``$AURL_CACHE_DIR/synthetic`` if set, else ``~/.cache/aurl/synthetic``."""
    base = os.environ.get("AURL_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "aurl") / "synthetic"


def _params_hash(params: dict[str, Any]) -> str:
    """A short stable hash of JSON-serialisable parameters (keys the cache folder)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _check_vocabulary(field: str, given: Sequence[str], known: Sequence[str]) -> None:
    unknown = [v for v in given if v not in known]
    if unknown or len(set(given)) != len(given) or not given:
        raise ValueError(
            f"{field}: expected distinct values from {list(known)}, got {list(given)}"
            + (f" (unknown: {unknown})" if unknown else "")
        )


def _pick_other(rng: np.random.Generator, options: Sequence[str], excluded: str) -> str:
    others = [o for o in options if o != excluded]
    return others[int(rng.integers(len(others)))]


def _background(rng: np.random.Generator, num_frames: int, size: int) -> np.ndarray:
    """Smooth low-saturation texture + static fine noise, repeated over time: (T, H, W, 3)."""
    grid = rng.uniform(15.0, 70.0, (5, 5, 1)) + rng.uniform(-10.0, 10.0, (5, 5, 3))
    # Bilinear upsampling of the 5x5 grid to size x size.
    coords = np.linspace(0.0, 4.0, size)
    lo = np.minimum(coords.astype(int), 3)
    frac = coords - lo
    rows = grid[lo] * (1 - frac)[:, None, None] + grid[lo + 1] * frac[:, None, None]
    image = rows[:, lo] * (1 - frac)[None, :, None] + rows[:, lo + 1] * frac[None, :, None]
    image = image + rng.normal(0.0, 6.0, image.shape)
    return np.repeat(image[None].astype(np.float32), num_frames, axis=0)


def _track(
    rng: np.random.Generator, shape: str, motion: str, radius: float, num_frames: int, size: int
) -> np.ndarray:
    """Per-frame (cx, cy, radius, angle) of an object whose smallest radius is ``radius``."""
    t = np.linspace(0.0, 1.0, num_frames)
    radii = np.full(num_frames, radius)
    if motion in _SCALINGS:
        # Capped so that the object at its largest still fits, with a pixel spare.
        fits = (size / 2 - 1.0) / (_REACH[shape] * radius)
        scale = min(rng.uniform(*_SCALE), fits)
        grow = t if _SCALINGS[motion] > 0 else 1.0 - t
        radii = radius * scale**grow
    angle = np.full(num_frames, rng.uniform(0.0, 2 * math.pi))
    # The centre keeps the whole shape (at any angle) and a pixel spare inside the frame.
    margin = _REACH[shape] * radii.max() + 1.0
    if motion in _DIRECTIONS:
        dx, dy = _DIRECTIONS[motion]
        travel = min(rng.uniform(*_TRAVEL) * size, max(size - 2 * margin, 0.0))
        start = _uniform(rng, margin, size - margin - travel)
        across = _uniform(rng, margin, size - margin)
        # Positions along the motion axis run from `start` to `start + travel`, mirrored
        # for negative directions.
        along = start + travel * t
        if dx:
            cx = along if dx > 0 else size - along
            cy = np.full(num_frames, across)
        else:
            cy = along if dy > 0 else size - along
            cx = np.full(num_frames, across)
    else:
        cx = np.full(num_frames, _uniform(rng, margin, size - margin))
        cy = np.full(num_frames, _uniform(rng, margin, size - margin))
        if motion in _SPINS:
            angle = angle + _SPINS[motion] * rng.uniform(*_TURNS) * 2 * math.pi * t
    return np.stack([cx, cy, radii, angle], axis=1)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    # Tolerates high == low up to rounding, where the object exactly fits the frame.
    return low + rng.random() * max(high - low, 0.0)


def _draw(frames: np.ndarray, rgb: np.ndarray, shape: str, track: np.ndarray) -> None:
    """Alpha-composites a two-tone ``shape`` into ``frames`` (T, H, W, 3) in place."""
    size = frames.shape[1]
    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    cx, cy, radius, angle = (track[:, k, None, None].astype(np.float32) for k in range(4))
    dx = grid[None, None, :] - cx  # (T, 1, W)
    dy = grid[None, :, None] - cy  # (T, H, 1)
    # Object-local coordinates: rotate by -angle.
    cos, sin = np.cos(angle), np.sin(angle)
    u = cos * dx + sin * dy  # (T, H, W)
    v = cos * dy - sin * dx
    coverage = np.clip(0.5 - _sdf(shape, u, v, radius), 0.0, 1.0)  # (T, H, W)
    # Bright half where u > 0, dark half where u < 0, a one-pixel blend between.
    shade = _DARK_HALF + (1 - _DARK_HALF) * np.clip(0.5 + u, 0.0, 1.0)  # (T, H, W)
    alpha = coverage[..., None]  # (T, H, W, 1)
    frames *= 1 - alpha
    frames += alpha * shade[..., None] * rgb


def _sdf(shape: str, u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Signed distance in pixels (negative inside) of a shape centred at the origin.

    Every shape has the area of the circle of ``radius``, so "larger" means the same for all.
    """
    if shape == "circle":
        return np.hypot(u, v) - radius
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - _SQUARE_HALF * radius
    if shape == "triangle":
        # Equilateral: the inradius is half the circumradius.
        edges = [
            u * math.cos(a) + v * math.sin(a)
            for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3)
        ]
        return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - _TRIANGLE_R / 2 * radius
    if shape == "cross":
        arm, width = _CROSS_ARM * radius, _CROSS_WIDTH * radius
        bar_h = np.maximum(np.abs(u) - arm, np.abs(v) - width)
        bar_v = np.maximum(np.abs(u) - width, np.abs(v) - arm)
        return np.minimum(bar_h, bar_v)
    raise ValueError(f"unknown shape {shape!r}; expected one of {list(SHAPES)}")


def _is_complete(path: Path) -> bool:
    # write_video renames its temp file only after the last packet, so any non-empty file is whole.
    return path.is_file() and path.stat().st_size > 0


def _remove_partial_files(root: Path, class_names: Sequence[str]) -> None:
    for name in class_names:
        folder = root / name
        if folder.is_dir():
            for partial in folder.glob(".*.tmp.*"):
                partial.unlink()


def _render_one(job: tuple[str, SyntheticVideo, int, int, int, int]) -> str:
    root, video, num_frames, size, fps, crf = job
    colour, shape, motion = parse_class_name(video.class_name)
    frames = render_video(
        colour, shape, motion, np.random.default_rng(video.seed), num_frames, size
    )
    write_video(Path(root) / video.path, frames, fps=fps, gop_size=_GOP_SIZE, crf=crf)
    return video.path


def _render_all(
    root: Path,
    manifest: SyntheticManifest,
    videos: list[SyntheticVideo],
    num_workers: int,
    progress: bool,
) -> None:
    params = manifest.params
    jobs = [
        (str(root), v, params["num_frames"], params["size"], params["fps"], params["crf"])
        for v in videos
    ]
    logger.info(
        "Generating %d of %d SyntheticActions videos into %s (%d workers)",
        len(jobs),
        len(manifest.videos),
        root,
        num_workers,
    )
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="SyntheticActions", unit="video", disable=not progress)
    with bar:
        if num_workers <= 1:
            for job in jobs:
                _render_one(job)
                bar.update()
        else:
            with ProcessPoolExecutor(num_workers) as pool:
                chunk = max(1, min(64, len(jobs) // (4 * num_workers)))
                for _ in pool.map(_render_one, jobs, chunksize=chunk):
                    bar.update()
    logger.info("Generated %d videos in %.1f s", len(jobs), time.perf_counter() - start)


def _manifest_json(manifest: SyntheticManifest) -> dict[str, Any]:
    return {
        "generator": "SyntheticActions",
        "version": manifest.version,
        "params": manifest.params,
        "class_names": manifest.class_names,
        "seen": manifest.seen,
        "unseen": manifest.unseen,
        "num_unseen": manifest.num_unseen,
        "split_seed": manifest.split_seed,
        "counts": manifest.counts,
        "videos": [v._asdict() for v in manifest.videos],
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}): {error.msg}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return data


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
