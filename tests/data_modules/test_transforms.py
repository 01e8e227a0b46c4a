"""Clip transforms: plan geometry, the draws of the float pipeline they replace, frames in
memory against a torch reference, and the normalisation on the device."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data_modules.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    create_transform,
    short_side_shape,
    to_model_input,
)
from data_modules.video_reader import ResizeCrop

MEAN = np.array(KINETICS_MEAN, dtype=np.float64)
STD = np.array(KINETICS_STD, dtype=np.float64)
SHAPES = [(240, 320), (320, 240), (90, 100), (256, 340), (112, 112)]


def _video(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), np.uint8))


def _smooth_video(t: int, h: int, w: int) -> torch.Tensor:
    """Smooth colour gradients: resampling them is well defined, so resizers agree closely."""
    rows, cols = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
    frame = np.stack([200 * rows, 180 * cols, 60 + 120 * rows * cols], axis=-1)
    return torch.from_numpy(np.repeat(frame[None], t, axis=0).round().astype(np.uint8))


def _torch_resize(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The host-side resize of the float pipeline: antialiased bilinear, (T, H, W, 3) floats."""
    frames = video.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    out = F.interpolate(
        frames, size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
    return out.permute(0, 2, 3, 1)  # (T, height, width, 3)


# --- the draws of the float pipeline ---------------------------------------------------------
def _old_e2e(height: int, width: int, size: int, short: int, rng: random.Random):
    """The float pipeline's E2E training draws: resize_short_side, random_crop, flip."""
    scale = short / min(height, width)
    if height <= width:
        h, w = short, max(short, round(width * scale))
    else:
        h, w = max(short, round(height * scale)), short
    top, left = rng.randint(0, h - size), rng.randint(0, w - size)
    return (h, w), top, left, rng.random() < 0.5


def _old_crop_box(height: int, width: int, rng: random.Random, scale=(0.6, 1.0)):
    """The float pipeline's random resized crop box, written out as it was."""
    area = rng.uniform(*scale) * height * width
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    box_w = min(width, max(1, round(math.sqrt(area * aspect))))
    box_h = min(height, max(1, round(math.sqrt(area / aspect))))
    return rng.randint(0, height - box_h), rng.randint(0, width - box_w), box_h, box_w


@pytest.mark.parametrize("seed", range(50))
def test_plans_draw_what_the_float_pipeline_drew(seed: int) -> None:
    height, width = SHAPES[seed % len(SHAPES)]
    new, old = random.Random(seed), random.Random(seed)
    e2e = create_transform("e2e", train=True, size=112, short_side=128)
    for _ in range(3):
        plan = e2e.plan(height, width, new)
        shape, top, left, flip = _old_e2e(height, width, 112, 128, old)
        assert plan == ResizeCrop(*shape, top, left, 112, flip)
    crop = create_transform("aurl_crop", train=True, size=112)
    for _ in range(3):
        plan = crop.plan(height, width, new)
        top, left, box_h, box_w = _old_crop_box(height, width, old)
        # The box, scaled to size x size: the window's corner is the box's scaled corner.
        assert (plan.height, plan.width) == (
            round(height * 112 / box_h),
            round(width * 112 / box_w),
        )
        assert abs(plan.top - top * 112 / box_h) <= 1 and abs(plan.left - left * 112 / box_w) <= 1
        assert plan.size == 112 and not plan.flip
        plan.check()
    # Plain resizes and evaluation plans draw nothing.
    for name in ("aurl", "aurl_crop", "e2e"):
        for train in (name == "aurl", False):
            create_transform(name, train=train).plan(height, width, new)
    assert new.getstate() == old.getstate()


def test_plan_geometry() -> None:
    assert create_transform("aurl", train=True, size=64).plan(240, 320) == ResizeCrop(
        64, 64, 0, 0, 64
    )
    assert create_transform("aurl_crop", train=False, size=64).plan(240, 320) == ResizeCrop(
        64, 64, 0, 0, 64
    )
    e2e = create_transform("e2e", train=False)
    assert e2e.plan(240, 320) == ResizeCrop(128, 171, 8, 29, 112)
    assert e2e.plan(320, 240) == ResizeCrop(171, 128, 29, 8, 112)
    assert short_side_shape(256, 340, 128) == (128, 170)
    assert short_side_shape(100, 100, 128) == (128, 128)
    train = create_transform("e2e", train=True, rng=random.Random(0))
    plans = [train.plan(240, 320) for _ in range(200)]
    for plan in plans:
        assert (plan.height, plan.width) == (128, 171)
        plan.check()
    assert len({(p.top, p.left) for p in plans}) > 100 and 60 < sum(p.flip for p in plans) < 140
    # A box covering the whole frame is the plain resize.
    whole = create_transform("aurl_crop", train=True, size=40, scale=(1.0, 1.0), ratio=(1, 1))
    assert whole.plan(40, 40, random.Random(3)) == ResizeCrop(40, 40, 0, 0, 40)


def test_randomness_follows_the_rng() -> None:
    first = create_transform("e2e", train=True, rng=random.Random(5))
    second = create_transform("e2e", train=True, rng=random.Random(5))
    plans_a = [first.plan(128, 150) for _ in range(5)]
    assert plans_a == [second.plan(128, 150) for _ in range(5)]
    assert len(set(plans_a)) > 1
    # A per-call rng overrides the transform's own.
    shared = create_transform("e2e", train=True)
    assert shared.plan(128, 150, random.Random(9)) == shared.plan(128, 150, random.Random(9))


# --- frames in memory --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["aurl", "aurl_crop", "e2e"])
@pytest.mark.parametrize("train", [True, False])
def test_output_shape_and_dtype(name: str, train: bool) -> None:
    transform = create_transform(name, train=train, rng=random.Random(0))
    for h, w in [(240, 320), (320, 240), (90, 100)]:
        out = transform(_video(4, h, w))
        assert out.shape == (4, 112, 112, 3) and out.dtype == torch.uint8
    extra = {"short_side": 80} if name == "e2e" else {}
    small = create_transform(name, train, size=64, rng=random.Random(0), **extra)
    assert small(_video(2, 72, 96)).shape == (2, 64, 64, 3)


def test_resize_matches_the_torch_resize_it_replaces() -> None:
    video = _smooth_video(2, 90, 160)
    for size in (20, 64, 112):
        out = create_transform("aurl", train=False, size=size)(video).float()
        assert (out - _torch_resize(video, size, size)).abs().max() <= 1.5
    # Constant colours stay exact.
    flat = torch.empty(2, 90, 160, 3, dtype=torch.uint8)
    flat[..., 0], flat[..., 1], flat[..., 2] = 200, 30, 117
    out = create_transform("aurl", train=True)(flat)
    assert (out == torch.tensor([200, 30, 117], dtype=torch.uint8)).all()


def test_aurl_resize_ignores_aspect_ratio_and_averages() -> None:
    # Left half black, right half white, 4x wider than tall: a plain resize keeps the halves.
    video = torch.zeros(1, 40, 160, 3, dtype=torch.uint8)
    video[:, :, 80:] = 255
    pixels = create_transform("aurl", train=False, size=20)(video).numpy().astype(int)
    assert (pixels[0, :, :9] == 0).all() and (pixels[0, :, 11:] == 255).all()
    # Antialiasing: the two boundary columns are blends, not a copy of one source column.
    assert ((pixels[0, :, 9:11] > 0) & (pixels[0, :, 9:11] < 255)).all()


def test_e2e_crops_are_exact_windows_at_the_short_side() -> None:
    # Short side already 128: no resampling, so crops are exact windows (flipped or not).
    video = _video(2, 128, 160)
    center = create_transform("e2e", train=False)(video)
    top, left = (128 - 112) // 2, (160 - 112) // 2
    assert torch.equal(center, video[:, top : top + 112, left : left + 112])
    transform = create_transform("e2e", train=True)
    for seed in range(10):
        plan = transform.plan(128, 160, random.Random(seed))
        window = video[:, plan.top : plan.top + 112, plan.left : plan.left + 112]
        expected = window.flip(2) if plan.flip else window
        assert torch.equal(transform(video, random.Random(seed)), expected)


def test_aurl_crop_equals_crop_then_resize_up_to_rounding() -> None:
    video = _smooth_video(2, 120, 160)
    transform = create_transform("aurl_crop", train=True, size=48, scale=(0.3, 0.6))
    for seed in range(10):
        top, left, box_h, box_w = transform.crop_box(120, 160, random.Random(seed))
        out = transform(video, random.Random(seed)).float()  # (2, 48, 48, 3)
        box = video[:, top : top + box_h, left : left + box_w]
        # Rounding the scaled size and offset moves the window by under a pixel (0.45-0.92
        # levels on average on these gradients; another box of the frame is off by 14 or more).
        assert (out - _torch_resize(box, 48, 48)).abs().mean() <= 1.5


def test_eval_plans_are_deterministic() -> None:
    video = _video(2, 130, 150)
    for name in ("aurl", "aurl_crop", "e2e"):
        transform = create_transform(name, train=False)
        assert torch.equal(transform(video), transform(video))


# --- normalisation on the device -------------------------------------------------------------
def test_to_model_input_matches_the_formula_and_layout() -> None:
    video = _video(6, 8, 10).reshape(2, 3, 8, 10, 3)  # (B, T, H, W, 3)
    out = to_model_input(video, KINETICS_MEAN, KINETICS_STD)
    assert out.shape == (2, 3, 3, 8, 10) and out.dtype == torch.float32 and out.is_contiguous()
    expected = ((video.numpy() / 255.0 - MEAN) / STD).transpose(0, 4, 1, 2, 3)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)
    clips = _video(8, 4, 4).reshape(2, 2, 2, 4, 4, 3)  # (B, K, T, H, W, 3)
    out = create_transform("aurl", train=False, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    got = out.to_model_input(clips)
    assert got.shape == (2, 2, 3, 2, 4, 4)
    expected = ((clips.numpy() / 255.0 - 0.5) / np.array([0.25, 0.5, 1.0])).transpose(
        0, 1, 5, 2, 3, 4
    )
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_to_model_input_passes_empty_batches_and_refuses_floats() -> None:
    empty = to_model_input(torch.empty(0, dtype=torch.uint8), KINETICS_MEAN, KINETICS_STD)
    assert empty.shape == (0,) and empty.dtype == torch.float32
    with pytest.raises(ValueError, match="uint8 clips"):
        to_model_input(torch.rand(2, 3, 4, 4, 3), KINETICS_MEAN, KINETICS_STD)
    with pytest.raises(ValueError, match="uint8 clips"):
        to_model_input(torch.zeros(2, 4, 4, 3, 4, dtype=torch.uint8), KINETICS_MEAN, KINETICS_STD)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="uint8"):
        create_transform("aurl", train=False)(torch.rand(2, 8, 8, 3))
    with pytest.raises(ValueError, match="short_side"):
        create_transform("e2e", train=True, size=112, short_side=100)
    with pytest.raises(ValueError, match="3 values"):
        create_transform("aurl", train=False, mean=(0.5,))
    with pytest.raises(KeyError, match="crop"):
        create_transform("crop", train=False)
    with pytest.raises(TypeError, match=r"'aurl'.*short_side"):
        create_transform("aurl", train=False, short_side=128)
    with pytest.raises(ValueError, match="scale"):
        create_transform("aurl_crop", train=True, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="ratio"):
        create_transform("aurl_crop", train=True, ratio=(2.0, 1.0))
