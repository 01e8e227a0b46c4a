"""Clip transforms: shapes, normalisation against a formula, E2E crop and flip."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from data_modules.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    create_transform,
    resize,
    resize_short_side,
)

MEAN = np.array(KINETICS_MEAN, dtype=np.float64)
STD = np.array(KINETICS_STD, dtype=np.float64)


def _video(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), np.uint8))


def _normalised_reference(video: np.ndarray) -> np.ndarray:
    """uint8 (T, H, W, 3) -> (3, T, H, W) with the REFERENCE normalisation, in float64."""
    return ((video / 255.0 - MEAN) / STD).transpose(3, 0, 1, 2)


def _coordinate_video(t: int, h: int, w: int) -> torch.Tensor:
    """Red = row, green = column, blue = frame: every pixel says where it came from."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    frames = [np.stack([rows, cols, np.full_like(rows, 10 * k)], axis=-1) for k in range(t)]
    return torch.from_numpy(np.stack(frames).astype(np.uint8))  # (T, H, W, 3)


def _pixels(out: torch.Tensor) -> np.ndarray:
    """Undoes the normalisation: (3, T, H, W) float -> (T, H, W, 3) integer pixel values."""
    values = out.double().numpy().transpose(1, 2, 3, 0) * STD + MEAN
    return np.rint(values * 255).astype(np.int64)


@pytest.mark.parametrize("name", ["aurl", "aurl_crop", "e2e"])
@pytest.mark.parametrize("train", [True, False])
def test_output_shape_and_dtype(name: str, train: bool) -> None:
    transform = create_transform(name, train=train, rng=random.Random(0))
    for h, w in [(240, 320), (320, 240), (90, 100)]:
        out = transform(_video(4, h, w))
        assert out.shape == (3, 4, 112, 112) and out.dtype == torch.float32
    extra = {"short_side": 80} if name == "e2e" else {}
    small = create_transform(name, train, size=64, rng=random.Random(0), **extra)
    assert small(_video(2, 72, 96)).shape == (3, 2, 64, 64)


def test_normalisation_matches_the_formula() -> None:
    # A frame already at the output size is not resampled, so the output is pure normalisation.
    video = _video(3, 112, 112)
    for name in ("aurl", "e2e"):
        kwargs = {"short_side": 112} if name == "e2e" else {}
        out = create_transform(name, train=False, **kwargs)(video)
        np.testing.assert_allclose(out.numpy(), _normalised_reference(video.numpy()), atol=1e-5)


def test_custom_mean_and_std() -> None:
    video = _video(2, 8, 8)
    out = create_transform("aurl", train=False, size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    expected = ((video.numpy() / 255.0 - 0.5) / np.array([0.25, 0.5, 1.0])).transpose(3, 0, 1, 2)
    np.testing.assert_allclose(out(video).numpy(), expected, atol=1e-5)


def test_resize_keeps_constant_colours() -> None:
    video = torch.empty(2, 90, 160, 3, dtype=torch.uint8)
    video[..., 0], video[..., 1], video[..., 2] = 200, 30, 117
    out = create_transform("aurl", train=True)(video)
    expected = (np.array([200, 30, 117]) / 255.0 - MEAN) / STD
    np.testing.assert_allclose(
        out.numpy(), np.broadcast_to(expected[:, None, None, None], out.shape), atol=1e-5
    )


def test_aurl_resize_ignores_aspect_ratio_and_averages() -> None:
    # Left half black, right half white, 4x wider than tall: a plain resize keeps the halves.
    video = torch.zeros(1, 40, 160, 3, dtype=torch.uint8)
    video[:, :, 80:] = 255
    pixels = _pixels(create_transform("aurl", train=False, size=20)(video))
    assert (pixels[0, :, :9] == 0).all() and (pixels[0, :, 11:] == 255).all()
    # Antialiasing: the two boundary columns are blends, not a copy of one source column.
    assert ((pixels[0, :, 9:11] > 0) & (pixels[0, :, 9:11] < 255)).all()


def test_short_side_resize_keeps_aspect_ratio() -> None:
    video = torch.rand(3, 2, 240, 320)
    assert resize_short_side(video, 128).shape == (3, 2, 128, 171)
    assert resize_short_side(video.transpose(-1, -2), 128).shape == (3, 2, 171, 128)
    assert resize(video, 240, 320) is video


def test_e2e_center_crop_at_test_time() -> None:
    # Short side already 128: no resampling, so the crop is an exact window.
    video = _coordinate_video(2, 128, 160)
    pixels = _pixels(create_transform("e2e", train=False)(video))
    top, left = (128 - 112) // 2, (160 - 112) // 2
    np.testing.assert_array_equal(pixels, video.numpy()[:, top : top + 112, left : left + 112])


def test_e2e_training_crops_and_flips_at_random() -> None:
    video = _coordinate_video(2, 128, 160)
    source = video.numpy().astype(np.int64)
    transform = create_transform("e2e", train=True, rng=random.Random(0))
    offsets, flips = set(), []
    for _ in range(40):
        pixels = _pixels(transform(video))
        flipped = pixels[0, 0, 0, 1] > pixels[0, 0, -1, 1]  # columns decrease left to right
        window = pixels[:, :, ::-1] if flipped else pixels
        top, left = int(window[0, 0, 0, 0]), int(window[0, 0, 0, 1])
        assert 0 <= top <= 128 - 112 and 0 <= left <= 160 - 112
        np.testing.assert_array_equal(window, source[:, top : top + 112, left : left + 112])
        offsets.add((top, left))
        flips.append(flipped)
    assert len(offsets) > 20 and 5 < sum(flips) < 35


def test_e2e_randomness_follows_the_rng() -> None:
    video = _video(2, 128, 150)
    first = create_transform("e2e", train=True, rng=random.Random(5))
    second = create_transform("e2e", train=True, rng=random.Random(5))
    outs_a = [first(video) for _ in range(5)]
    outs_b = [second(video) for _ in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(outs_a, outs_b, strict=True))
    assert not all(torch.equal(outs_a[0], o) for o in outs_a[1:])
    # A per-call rng overrides the transform's own.
    shared = create_transform("e2e", train=True)
    assert torch.equal(shared(video, random.Random(9)), shared(video, random.Random(9)))


def test_e2e_evaluation_and_aurl_are_deterministic() -> None:
    video = _video(2, 130, 150)
    for name in ("aurl", "e2e"):
        transform = create_transform(name, train=name == "aurl")
        assert torch.equal(transform(video), transform(video))


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


def test_aurl_crop_trains_on_one_random_box_per_clip_and_evaluates_the_whole_frame() -> None:
    video = _coordinate_video(3, 40, 40)
    train = create_transform("aurl_crop", train=True, size=40, scale=(0.25, 0.5))
    evaluate = create_transform("aurl_crop", train=False, size=40)
    plain = create_transform("aurl", train=False, size=40)
    assert torch.equal(evaluate(video), plain(video))
    rng = random.Random(0)
    for _ in range(20):
        top, left, height, width = train.crop_box(40, 40, random.Random(rng.random()))
        assert 0 <= top <= 40 - height and 0 <= left <= 40 - width
        assert 0.2 * 1600 <= height * width <= 0.55 * 1600  # scale, up to rounding
        assert 3 / 4 - 0.1 <= width / height <= 4 / 3 + 0.1
    box = train.crop_box(40, 40, random.Random(5))
    out = train(video, random.Random(5))  # (3, T, 40, 40)
    expected = plain(video[:, box[0] : box[0] + box[2], box[1] : box[1] + box[3]])
    assert torch.allclose(out, expected)  # the same box in every frame
    assert not torch.equal(train(video, random.Random(6)), out)


def test_aurl_crop_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="scale"):
        create_transform("aurl_crop", train=True, scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="ratio"):
        create_transform("aurl_crop", train=True, ratio=(2.0, 1.0))
