"""Video transforms: pure functions on tensors, and the two clip pipelines built from them.

Decoded clips arrive as uint8 ``(T, H, W, 3)``; models take float ``(C, T, H, W)`` normalised
with the Kinetics statistics of REFERENCE. Three pipelines:

- ``"aurl"``: plain resize to ``size x size`` (aspect ratio not kept), as AURL's code;
- ``"aurl_crop"``: the same with a random resized crop in training (no flip);
- ``"e2e"``: resize the short side to ``short_side``, then a random crop and a random horizontal
  flip in training, a center crop at test time, as E2E (Brattoli et al.).

Random choices use the ``random.Random`` given to the transform (or to the call); without one,
the ``random`` module's global generator, which PyTorch's DataLoader reseeds in every worker.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from aurl.registry import Registry

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def to_float_cthw(video: torch.Tensor) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` in [0, 255] -> float32 ``(3, T, H, W)`` in [0, 1]."""
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (T, H, W, 3) video, got {video.dtype} {video.shape}")
    return video.permute(3, 0, 1, 2).float().div_(255.0)  # (C, T, H, W)


def resize(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking) of a float ``(C, T, H, W)`` video."""
    if video.shape[-2:] == (height, width):
        return video
    frames = video.permute(1, 0, 2, 3)  # (T, C, H, W): frames as the batch
    frames = F.interpolate(
        frames, size=(height, width), mode="bilinear", align_corners=False, antialias=True
    )
    return frames.permute(1, 0, 2, 3).contiguous()  # (C, T, height, width)


def resize_short_side(video: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resizes ``(C, T, H, W)`` so that ``min(H, W) == short_side``, keeping the aspect ratio."""
    height, width = video.shape[-2:]
    scale = short_side / min(height, width)
    if height <= width:
        return resize(video, short_side, max(short_side, round(width * scale)))
    return resize(video, max(short_side, round(height * scale)), short_side)


def crop(video: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The ``height x width`` window of ``(C, T, H, W)`` at ``(top, left)``."""
    if top < 0 or left < 0 or top + height > video.shape[-2] or left + width > video.shape[-1]:
        raise ValueError(
            f"crop {height}x{width} at ({top}, {left}) outside a {tuple(video.shape[-2:])} frame"
        )
    return video[..., top : top + height, left : left + width]  # (C, T, height, width)


def center_crop(video: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` window of ``(C, T, H, W)``."""
    height, width = video.shape[-2:]
    return crop(video, (height - size) // 2, (width - size) // 2, size, size)


def random_crop(video: torch.Tensor, size: int, rng: random.Random) -> torch.Tensor:
    """A ``size x size`` window of ``(C, T, H, W)`` at a uniform random position."""
    height, width = video.shape[-2:]
    if size > min(height, width):
        raise ValueError(f"crop {size}x{size} larger than a {height}x{width} frame")
    return crop(video, rng.randint(0, height - size), rng.randint(0, width - size), size, size)


def horizontal_flip(video: torch.Tensor) -> torch.Tensor:
    """Mirrors ``(C, T, H, W)`` left-right."""
    return video.flip(-1)


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(video - mean) / std`` per channel of a float ``(C, T, H, W)`` video."""
    mean_t = torch.tensor(mean, dtype=video.dtype).view(-1, 1, 1, 1)  # (C, 1, 1, 1)
    std_t = torch.tensor(std, dtype=video.dtype).view(-1, 1, 1, 1)  # (C, 1, 1, 1)
    return (video - mean_t) / std_t


class VideoTransform(ABC):
    """Base of the clip pipelines: uint8 ``(T, H, W, 3)`` -> normalised float ``(C, T, H, W)``.

    Args:
        train: training (random augmentation) or evaluation (deterministic).
        size: output height and width.
        mean: per-channel mean of [0, 1] pixels.
        std: per-channel standard deviation.
        rng: random source; None uses the ``random`` module (reseeded per DataLoader worker).
    """

    def __init__(
        self,
        train: bool,
        size: int = 112,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        rng: random.Random | None = None,
    ) -> None:
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), got {mean} and {std}")
        self.train = train
        self.size = size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.rng = rng

    def __call__(self, video: torch.Tensor, rng: random.Random | None = None) -> torch.Tensor:
        """Transforms one clip; ``rng`` overrides the transform's own random source."""
        # The random module's functions are its global Random's methods: same interface.
        generator = rng or self.rng or random
        video = self._spatial(to_float_cthw(video), generator)  # (C, T, size, size)
        return normalize(video, self.mean, self.std)

    @abstractmethod
    def _spatial(self, video: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """Float ``(C, T, H, W)`` -> ``(C, T, size, size)``."""


TRANSFORMS: Registry[VideoTransform] = Registry("video transform")


@TRANSFORMS.register("aurl")
class ResizeTransform(VideoTransform):
    """AURL: plain resize to ``size x size``; no augmentation in training either."""

    def _spatial(self, video: torch.Tensor, rng: random.Random) -> torch.Tensor:
        return resize(video, self.size, self.size)


@TRANSFORMS.register("e2e")
class ShortSideCropTransform(VideoTransform):
    """E2E: short side to ``short_side``; random crop + flip (train) or center crop (test).

    Args:
        train: training (random crop and flip) or evaluation (center crop).
        size: output height and width.
        short_side: length of the short side after the resize (>= ``size``).
        mean: per-channel mean of [0, 1] pixels.
        std: per-channel standard deviation.
        rng: random source, as :class:`VideoTransform`.
    """

    def __init__(
        self,
        train: bool,
        size: int = 112,
        short_side: int = 128,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(train, size, mean, std, rng)
        if short_side < size:
            raise ValueError(f"short_side ({short_side}) must be >= size ({self.size})")
        self.short_side = short_side

    def _spatial(self, video: torch.Tensor, rng: random.Random) -> torch.Tensor:
        video = resize_short_side(video, self.short_side)
        if not self.train:
            return center_crop(video, self.size)
        video = random_crop(video, self.size, rng)
        return horizontal_flip(video) if rng.random() < 0.5 else video


@TRANSFORMS.register("aurl_crop")
class RandomResizedCropTransform(VideoTransform):
    """AURL's resize with a random resized crop in training (scale and translation jitter).

    Training draws one box per clip (the same for every frame, so motion is kept): an area of
    ``scale`` times the frame's and an aspect ratio in ``ratio``, at a uniform position, then
    resizes it to ``size x size``. Evaluation resizes the whole frame, as ``"aurl"``. There is
    no flip here: mirroring can change a class (``"moving left"``), so it is the dataset's
    decision (:class:`~data_modules.clip_dataset.VideoClipDataset`'s ``flip_labels``).

    Args:
        train: training (random box) or evaluation (whole frame).
        size: output height and width.
        scale: ``(low, high)`` fraction of the frame area that the box covers, ``0 < low <=
            high <= 1``.
        ratio: ``(low, high)`` width / height range of the box.
        mean: per-channel mean of [0, 1] pixels.
        std: per-channel standard deviation.
        rng: random source, as :class:`VideoTransform`.
    """

    def __init__(
        self,
        train: bool,
        size: int = 112,
        scale: tuple[float, float] = (0.6, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(train, size, mean, std, rng)
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1, got {scale}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must be (low, high) with 0 < low <= high, got {ratio}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))

    def crop_box(self, height: int, width: int, rng: random.Random) -> tuple[int, int, int, int]:
        """A random ``(top, left, box_height, box_width)`` inside a ``height x width`` frame."""
        area = rng.uniform(*self.scale) * height * width
        log_low, log_high = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = math.exp(rng.uniform(log_low, log_high))  # width / height
        box_w = min(width, max(1, round(math.sqrt(area * aspect))))
        box_h = min(height, max(1, round(math.sqrt(area / aspect))))
        return rng.randint(0, height - box_h), rng.randint(0, width - box_w), box_h, box_w

    def _spatial(self, video: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.train:
            video = crop(video, *self.crop_box(*video.shape[-2:], rng))
        return resize(video, self.size, self.size)


def create_transform(name: str, train: bool, **kwargs: Any) -> VideoTransform:
    """Builds a registered clip transform by name.

    Args:
        name: ``"aurl"`` (:class:`ResizeTransform`), ``"aurl_crop"``
            (:class:`RandomResizedCropTransform`) or ``"e2e"`` (:class:`ShortSideCropTransform`).
        train: training (random crop and flip for ``"e2e"``) or evaluation.
        **kwargs: the transform's other arguments: ``size`` (112 in the paper), ``mean``,
            ``std`` and ``rng`` (see :class:`VideoTransform`), ``short_side`` for ``"e2e"``,
            ``scale`` and ``ratio`` for ``"aurl_crop"``.

    Returns:
        A callable uint8 ``(T, H, W, 3)`` -> float32 ``(C, T, size, size)``.

    Raises:
        KeyError: no transform is registered as ``name``.
        TypeError: the transform takes no such argument (the message names the transform).
    """
    try:
        return TRANSFORMS.create(name, train=train, **kwargs)
    except TypeError as error:
        raise TypeError(f"video transform {name!r}: {error}") from error
