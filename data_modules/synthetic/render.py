"""Rendering a SyntheticActions video: pure numpy, deterministic from a per-video seed.

Rendering rules:

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
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from data_modules.synthetic.spec import COLOURS, MOTIONS, SHAPES, SyntheticSpec, parse_class_name

# The defaults of render_video; a frozen instance, so safe to share.
_DEFAULT = SyntheticSpec()
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
    num_frames: int = _DEFAULT.num_frames,
    size: int = _DEFAULT.size,
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


def render_synthetic_video(spec: SyntheticSpec, class_name: str, index: int) -> np.ndarray:
    """Video ``index`` of ``class_name`` under ``spec``: uint8 ``(T, size, size, 3)``.

    The generator is seeded with ``video_seed(spec.seed, class_name, index)``, so the video does
    not depend on which other videos are rendered, nor in which process.
    """
    colour, shape, motion = parse_class_name(class_name)
    rng = np.random.default_rng(video_seed(spec.seed, class_name, index))
    return render_video(colour, shape, motion, rng, spec.num_frames, spec.size)


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
