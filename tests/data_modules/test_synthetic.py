"""SyntheticActions: class names, the unseen split, rendering rules, files, manifest and cache."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from data_modules.synthetic import (
    BENCHMARK_VERSION,
    COLOURS,
    MOTIONS,
    SHAPES,
    SyntheticSpec,
    cache,
    generate_synthetic_actions,
    parse_class_name,
    render_video,
    split_unseen,
    synthetic_class_names,
    video_seed,
)

# Chromaticity (RGB / max channel) that a person would call each colour name.
REFERENCE_CHROMA = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "white": (1.0, 1.0, 1.0),
    "purple": (0.7, 0.2, 1.0),
    "orange": (1.0, 0.55, 0.0),
}
TINY = SyntheticSpec(
    colours=("red", "blue"),
    shapes=("square", "circle"),
    motions=("moving left", "growing"),
    videos_per_class=2,
    num_frames=8,
    size=32,
    fps=8,
    num_unseen=2,
)
QUIET = {"num_workers": 1, "progress": False}


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _near(frames: np.ndarray, rgb: tuple[int, int, int] | np.ndarray, tol: float) -> np.ndarray:
    """(T, H, W) mask of pixels within ``tol`` (Euclidean RGB) of ``rgb``."""
    return np.linalg.norm(frames.astype(np.float64) - np.asarray(rgb, np.float64), axis=-1) < tol


def _main_masks(frames: np.ndarray, colour: str) -> tuple[np.ndarray, np.ndarray]:
    """(bright half, whole object) masks of the main object; its dark half is ~60% bright."""
    rgb = np.asarray(COLOURS[colour], np.float64)
    bright = _near(frames, rgb, 50)
    return bright, bright | _near(frames, 0.6 * rgb, 40)


def _centroids(mask: np.ndarray) -> np.ndarray:
    """(T, 2) mean (x, y) of each frame's mask."""
    ys, xs = np.mgrid[: mask.shape[1], : mask.shape[2]]
    area = mask.sum(axis=(1, 2))
    assert (area > 0).all(), "main object not found in some frame"
    return np.stack([(mask * xs).sum((1, 2)) / area, (mask * ys).sum((1, 2)) / area], axis=1)


def test_class_names_count_format_unique() -> None:
    names = synthetic_class_names()
    assert len(names) == 120 == len(set(names))
    pattern = re.compile(
        r"^(red|green|blue|yellow|white) (square|circle|triangle|cross) "
        r"(moving (left|right|up|down)|rotating clockwise|growing)$"
    )
    assert all(pattern.match(n) for n in names)
    assert "red square moving left" in names
    assert parse_class_name("blue circle rotating clockwise") == (
        "blue",
        "circle",
        "rotating clockwise",
    )
    assert len(synthetic_class_names(["red"], ["circle", "cross"], MOTIONS)) == 2 * len(MOTIONS)


@pytest.mark.parametrize(
    "kwargs", [{"colours": ["pink"]}, {"shapes": ["circle", "circle"]}, {"motions": []}]
)
def test_class_names_reject_bad_vocabulary(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        synthetic_class_names(**kwargs)


def test_parse_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="red blob moving left"):
        parse_class_name("red blob moving left")


def _covers(seen: list[str], names: list[str]) -> bool:
    return all(
        {parse_class_name(n)[k] for n in seen} == {parse_class_name(n)[k] for n in names}
        for k in range(3)
    )


def test_split_keeps_every_attribute_seen_and_is_seeded() -> None:
    names = synthetic_class_names()
    splits = {}
    for seed in range(5):
        seen, unseen = split_unseen(names, num_unseen=30, seed=seed)
        assert len(unseen) == 30 and len(seen) == 90
        assert set(seen) | set(unseen) == set(names) and not set(seen) & set(unseen)
        assert _covers(seen, names)
        # Outputs keep the input order.
        assert seen == [n for n in names if n in set(seen)]
        splits[seed] = tuple(unseen)
    assert split_unseen(names, 30, seed=3) == split_unseen(list(names), 30, seed=3)
    assert len(set(splits.values())) == 5


def test_split_accepts_tuples_and_hard_cases() -> None:
    tuples = [parse_class_name(n) for n in synthetic_class_names()]
    seen, unseen = split_unseen(tuples, num_unseen=30, seed=0)
    assert (seen, unseen) == split_unseen(synthetic_class_names(), 30, seed=0)
    # 90 held out: the remaining 30 must still cover 5 colours, 4 shapes, 6 motions.
    seen, _ = split_unseen(tuples, num_unseen=90, seed=1)
    assert _covers(seen, synthetic_class_names())
    with pytest.raises(ValueError, match="impossible"):
        split_unseen(tuples, num_unseen=115)


def test_render_is_deterministic_from_the_seed() -> None:
    a = render_video("red", "square", "moving left", np.random.default_rng(7), 8, 32)
    b = render_video("red", "square", "moving left", np.random.default_rng(7), 8, 32)
    c = render_video("red", "square", "moving left", np.random.default_rng(8), 8, 32)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5
    # Video seeds depend on the dataset seed, the class and the index.
    seeds = {
        video_seed(s, n, i)
        for s in (0, 1)
        for n in ("red square growing", "red circle growing")
        for i in (0, 1)
    }
    assert len(seeds) == 8


@pytest.mark.parametrize("shape", ["square", "circle", "triangle", "cross"])
@pytest.mark.parametrize(
    ("motion", "axis", "sign"),
    [("moving left", 0, -1), ("moving right", 0, 1), ("moving up", 1, -1), ("moving down", 1, 1)],
)
def test_translations_move_the_main_object(shape: str, motion: str, axis: int, sign: int) -> None:
    size = 32
    for seed in range(5):
        colour = list(COLOURS)[seed]
        frames = render_video(colour, shape, motion, np.random.default_rng(seed), 16, size)
        centre = _centroids(_main_masks(frames, colour)[1])  # (T, 2)
        travel = centre[-1, axis] - centre[0, axis]
        assert sign * travel > 0.25 * size, (motion, shape, travel)
        assert abs(centre[-1, 1 - axis] - centre[0, 1 - axis]) < 1.5
        steps = np.diff(centre[:, axis])
        assert (sign * steps > -0.5).all()


@pytest.mark.parametrize("shape", ["square", "circle", "triangle", "cross"])
@pytest.mark.parametrize(("motion", "sign"), [("growing", 1), ("shrinking", -1)])
def test_scalings_change_the_main_object_area(shape: str, motion: str, sign: int) -> None:
    for seed in range(5):
        colour = list(COLOURS)[seed + 2]
        frames = render_video(colour, shape, motion, np.random.default_rng(seed), 16, 32)
        whole = _main_masks(frames, colour)[1]
        area = whole.sum(axis=(1, 2)).astype(float)
        ratio = area[-1] / area[0] if sign > 0 else area[0] / area[-1]
        assert ratio > 2.0, (motion, shape, area)
        centre = _centroids(whole)
        assert np.abs(centre - centre[0]).max() < 1.5


@pytest.mark.parametrize("shape", ["square", "circle", "triangle", "cross"])
@pytest.mark.parametrize(
    ("motion", "sign"), [("rotating clockwise", 1), ("rotating anticlockwise", -1)]
)
def test_rotations_turn_the_marked_object(shape: str, motion: str, sign: int) -> None:
    for seed in range(5):
        colour = list(COLOURS)[seed]
        frames = render_video(colour, shape, motion, np.random.default_rng(seed), 16, 32)
        bright, whole = _main_masks(frames, colour)
        offset = _centroids(bright) - _centroids(whole)  # (T, 2) towards the bright half
        # Image y points down, so a growing atan2(dy, dx) turns clockwise on screen.
        angle = np.unwrap(np.arctan2(offset[:, 1], offset[:, 0]))
        turned = angle[-1] - angle[0]
        assert sign * turned > 0.4 * 2 * np.pi, (motion, shape, turned)
        # Pixel-level centroids are noisy for small crosses: most steps, not all, turn forwards.
        assert np.mean(sign * np.diff(angle) > 0) >= 0.75, (motion, shape, angle)
        centre = _centroids(whole)
        assert np.abs(centre - centre[0]).max() < 1.5


def test_main_object_is_larger_than_the_distractor() -> None:
    for seed in range(20):
        colour = list(COLOURS)[seed % 5]
        motion = MOTIONS[seed % len(MOTIONS)]
        shape = SHAPES[seed % len(SHAPES)]
        frames = render_video(colour, shape, motion, np.random.default_rng(seed), 16, 32)
        main = _near(frames, COLOURS[colour], 40).sum(axis=(1, 2))
        others = sum(
            _near(frames, rgb, 40).sum(axis=(1, 2)) for c, rgb in COLOURS.items() if c != colour
        )
        assert (main > 1.5 * others).all(), (seed, main, others)
        assert others.max() > 0, "no distractor"
        # The main object stays wholly inside the frame.
        whole = _main_masks(frames, colour)[1]
        assert not whole[:, [0, -1], :].any() and not whole[:, :, [0, -1]].any(), seed


@pytest.mark.parametrize("crf", [18, 23])
def test_colour_survives_h264(tmp_path: Path, crf: int) -> None:
    from data_modules.video_writer import write_video

    for i, colour in enumerate(COLOURS):
        frames = render_video(colour, SHAPES[i % 4], "moving right", np.random.default_rng(i))
        path = write_video(tmp_path / f"{colour}.mp4", frames, fps=8, crf=crf)
        decoded = _decode(path)
        assert decoded.shape == frames.shape
        mean = decoded[_main_masks(frames, colour)[1]].astype(np.float64).mean(axis=0)
        chroma = mean / mean.max()
        nearest = min(
            REFERENCE_CHROMA, key=lambda c: np.linalg.norm(chroma - np.array(REFERENCE_CHROMA[c]))
        )
        assert nearest == colour, (colour, mean)
        assert mean.max() > 140


def test_generate_writes_decodable_videos_and_manifest(tmp_path: Path) -> None:
    manifest = generate_synthetic_actions(tmp_path, TINY, **QUIET)
    root = manifest.root
    assert root.parent == tmp_path and root.name.startswith("synthetic-")
    names = synthetic_class_names(TINY.colours, TINY.shapes, TINY.motions)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))
    assert files == sorted(f"{n}/{i:04d}.mp4" for n in names for i in range(2))
    for rel in files:
        frames = _decode(root / rel)
        assert frames.shape == (8, 32, 32, 3)
        with av.open(str(root / rel)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
            assert container.streams.video[0].average_rate == 8

    data = json.loads((root / "manifest.json").read_text())
    assert data["class_names"] == names
    assert data["counts"] == dict.fromkeys(names, 2)
    assert sorted(v["path"] for v in data["videos"]) == files
    assert (data["seen"], data["unseen"]) == split_unseen(names, 2, seed=0)
    assert data["params"]["num_frames"] == 8 and data["params"]["size"] == 32
    assert [p for p, _ in manifest.video_paths(data["unseen"])] == [
        root / f"{n}/{i:04d}.mp4" for n in data["unseen"] for i in range(2)
    ]


def test_generate_resumes_without_regenerating_complete_files(tmp_path: Path) -> None:
    manifest = generate_synthetic_actions(tmp_path, TINY, **QUIET)
    root = manifest.root
    paths = sorted(root.rglob("*.mp4"))
    before = {p: p.stat().st_mtime_ns for p in paths}
    first_frames = _decode(paths[0])
    manifest_mtime = (root / "manifest.json").stat().st_mtime_ns

    # A complete cache is returned without touching anything.
    assert generate_synthetic_actions(tmp_path, TINY, **QUIET) == manifest
    assert (root / "manifest.json").stat().st_mtime_ns == manifest_mtime
    assert {p: p.stat().st_mtime_ns for p in paths} == before

    # Interrupted: one video missing, a partial temp file left behind, no manifest.
    paths[0].unlink()
    partial = paths[1].with_name(".0009.tmp.mp4")
    partial.write_bytes(b"partial")
    (root / "manifest.json").unlink()
    assert generate_synthetic_actions(tmp_path, TINY, **QUIET) == manifest
    assert (root / "manifest.json").is_file()
    assert not partial.exists()
    np.testing.assert_array_equal(_decode(paths[0]), first_frames)
    after = {p: p.stat().st_mtime_ns for p in paths}
    assert after[paths[0]] != before[paths[0]]
    assert all(after[p] == before[p] for p in paths[1:])


def test_parameters_key_the_cache_folder(tmp_path: Path) -> None:
    base = generate_synthetic_actions(tmp_path, TINY, **QUIET)
    other = generate_synthetic_actions(tmp_path, replace(TINY, seed=1), **QUIET)
    assert other.root != base.root
    # The benchmark version keys the folder: numbers of two versions never share videos.
    assert base.params["benchmark_version"] == BENCHMARK_VERSION
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "BENCHMARK_VERSION", BENCHMARK_VERSION + 1)
        assert generate_synthetic_actions(tmp_path, TINY, **QUIET).root != base.root
    # Only the split changes: same videos and folder, manifest rewritten.
    resplit = generate_synthetic_actions(tmp_path, replace(TINY, split_seed=5), **QUIET)
    assert resplit.root == base.root
    assert json.loads((base.root / "manifest.json").read_text())["split_seed"] == 5
    assert (resplit.seen, resplit.unseen) == split_unseen(base.class_names, 2, seed=5)
    # A class's videos do not depend on which other classes are generated.
    alone = generate_synthetic_actions(tmp_path, replace(TINY, colours=("blue",)), **QUIET)
    assert alone.root != base.root
    rel = "blue circle growing/0001.mp4"
    np.testing.assert_array_equal(_decode(alone.root / rel), _decode(base.root / rel))


def test_generate_in_two_processes_matches_one(tmp_path: Path) -> None:
    one = generate_synthetic_actions(tmp_path / "one", TINY, **QUIET)
    two = generate_synthetic_actions(tmp_path / "two", TINY, num_workers=2, progress=False)
    for video in one.videos:
        np.testing.assert_array_equal(
            _decode(one.root / video.path), _decode(two.root / video.path)
        )


def test_bad_parameters_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        generate_synthetic_actions(tmp_path, replace(TINY, size=33), **QUIET)
