"""Video transforms: a spatial plan per clip for the reader, and the normalisation on the device.

A transform no longer touches pixels on the host. Before a clip is decoded, its transform plans
it from the source size: :meth:`VideoTransform.plan` gives a
:class:`~data_modules.video_reader.ResizeCrop` (scale the whole frame, cut a ``size x size``
window, maybe mirror it), which the reader applies with FFmpeg's scaler while converting to RGB.
Clips stay uint8 ``(T, size, size, 3)`` through the DataLoader (a quarter of float32's bytes to
copy to the GPU); :func:`to_model_input` turns a batch of them into the float
``(B, C, T, H, W)`` a model takes, normalised with the Kinetics statistics of REFERENCE, on the
device (``ZeroShotDataModule.on_after_batch_transfer``, ``ZeroShotClassifier.encode_videos``).

Three pipelines:

- ``"aurl"``: plain resize to ``size x size`` (aspect ratio not kept), as AURL's code;
- ``"aurl_crop"``: the same with a random resized crop in training (no flip);
- ``"e2e"``: resize the short side to ``short_side``, then a random crop and a random horizontal
  flip in training, a center crop at test time, as E2E (Brattoli et al.).

Random choices use the ``random.Random`` given to the transform (or to the call); without one,
the ``random`` module's global generator, which PyTorch's DataLoader reseeds in every worker.
The draws (their order and values) are those of the float pipeline they replace, so a seed
picks the same crops and flips as before.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from aurl.registry import Registry
from data_modules.video_reader import ResizeCrop, shape_frames

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def to_model_input(
    video: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 clips ``(..., T, H, W, 3)`` -> float32 ``(..., C, T, H, W)``, ``(x / 255 - mean) /
    std`` per channel, on the clips' device.

    Args:
        video: uint8 ``(B, T, H, W, 3)`` or ``(B, K, T, H, W, 3)`` (any leading dimensions),
            or an empty batch of shape ``(0,)`` (every video of it unreadable).
        mean: per-channel mean of [0, 1] pixels.
        std: per-channel standard deviation.

    Returns:
        float32 ``(B, C, T, H, W)`` or ``(B, K, C, T, H, W)``; an empty float32 ``(0,)`` for an
        empty batch.

    Raises:
        ValueError: ``video`` is not uint8 with 3 channels last and at least 4 dimensions.
    """
    if video.dim() == 1 and video.shape[0] == 0:
        return video.float()
    if video.dtype != torch.uint8 or video.dim() < 4 or video.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 clips (..., T, H, W, 3), got {video.dtype} {tuple(video.shape)}"
        )
    scale = torch.tensor(std, dtype=torch.float32, device=video.device) * 255.0  # (C,)
    shift = torch.tensor(mean, dtype=torch.float32, device=video.device) * 255.0  # (C,)
    # (x / 255 - mean) / std == (x - 255 mean) / (255 std), on channels-last values.
    out = (video.float() - shift) / scale  # (..., T, H, W, C)
    return out.movedim(-1, -4).contiguous()  # (..., C, T, H, W)


def short_side_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(height, width)`` scaled so that the short side is ``short_side`` (aspect kept)."""
    scale = short_side / min(height, width)
    if height <= width:
        return short_side, max(short_side, round(width * scale))
    return max(short_side, round(height * scale)), short_side


class VideoTransform(ABC):
    """Base of the clip pipelines: a plan per clip, applied by the reader, and normalisation.

    Args:
        train: training (random augmentation) or evaluation (deterministic).
        size: output height and width.
        mean: per-channel mean of [0, 1] pixels (:func:`to_model_input`).
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
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.train = train
        self.size = size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.rng = rng

    def plan(self, height: int, width: int, rng: random.Random | None = None) -> ResizeCrop:
        """The scale, window and flip of one clip of a ``height x width`` video.

        Args:
            height: source frame height.
            width: source frame width.
            rng: overrides the transform's own random source for this clip.

        Returns:
            A :class:`~data_modules.video_reader.ResizeCrop` with a ``size x size`` window.
        """
        # The random module's functions are its global Random's methods: same interface.
        return self._plan(height, width, rng or self.rng or random)

    @abstractmethod
    def _plan(self, height: int, width: int, rng: random.Random) -> ResizeCrop:
        """The plan of one clip, drawing from ``rng``."""

    def __call__(self, video: torch.Tensor, rng: random.Random | None = None) -> torch.Tensor:
        """Shapes frames held in memory like the reader shapes decoded ones.

        Args:
            video: uint8 ``(T, H, W, 3)``.
            rng: overrides the transform's own random source.

        Returns:
            uint8 ``(T, size, size, 3)``.

        Raises:
            ValueError: ``video`` is not uint8 ``(T, H, W, 3)``.
        """
        if video.dtype != torch.uint8 or video.dim() != 4 or video.shape[-1] != 3:
            raise ValueError(
                f"expected a uint8 (T, H, W, 3) video, got {video.dtype} {tuple(video.shape)}"
            )
        return shape_frames(video, self.plan(video.shape[1], video.shape[2], rng))

    def to_model_input(self, video: torch.Tensor) -> torch.Tensor:
        """:func:`to_model_input` with this transform's mean and std."""
        return to_model_input(video, self.mean, self.std)


TRANSFORMS: Registry[VideoTransform] = Registry("video transform")


@TRANSFORMS.register("aurl")
class ResizeTransform(VideoTransform):
    """AURL: plain resize to ``size x size``; no augmentation in training either."""

    def _plan(self, height: int, width: int, rng: random.Random) -> ResizeCrop:
        return ResizeCrop(self.size, self.size, 0, 0, self.size)


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

    def _plan(self, height: int, width: int, rng: random.Random) -> ResizeCrop:
        scaled_h, scaled_w = short_side_shape(height, width, self.short_side)
        if not self.train:
            top, left = (scaled_h - self.size) // 2, (scaled_w - self.size) // 2
            return ResizeCrop(scaled_h, scaled_w, top, left, self.size)
        # Drawn in this order (row, column, flip) by the float pipeline this replaces.
        top = rng.randint(0, scaled_h - self.size)
        left = rng.randint(0, scaled_w - self.size)
        return ResizeCrop(scaled_h, scaled_w, top, left, self.size, rng.random() < 0.5)


@TRANSFORMS.register("aurl_crop")
class RandomResizedCropTransform(VideoTransform):
    """AURL's resize with a random resized crop in training (scale and translation jitter).

    Training draws one box per clip (the same for every frame, so motion is kept): an area of
    ``scale`` times the frame's and an aspect ratio in ``ratio``, at a uniform position, that is
    resized to ``size x size``. The reader does this as one scale of the whole frame (by
    ``size / box_w`` across and ``size / box_h`` down) and the ``size x size`` window at the
    box's scaled position: equal to cutting the box and resizing it, up to rounding the scaled
    size and offset to whole pixels. Evaluation resizes the whole frame, as ``"aurl"``. There is
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

    def _plan(self, height: int, width: int, rng: random.Random) -> ResizeCrop:
        if not self.train:
            return ResizeCrop(self.size, self.size, 0, 0, self.size)
        return _box_plan(height, width, *self.crop_box(height, width, rng), self.size)


def _box_plan(
    height: int, width: int, top: int, left: int, box_h: int, box_w: int, size: int
) -> ResizeCrop:
    """The plan that resizes the box ``(top, left, box_h, box_w)`` of a ``height x width``
    frame to ``size x size``: the whole frame scaled by ``size / box_h`` down and ``size /
    box_w`` across, and the window at the box's scaled corner (rounding may push it one pixel
    past the edge: it is clamped)."""
    scaled_h, scaled_w = round(height * size / box_h), round(width * size / box_w)  # >= size
    top = min(round(top * size / box_h), scaled_h - size)
    left = min(round(left * size / box_w), scaled_w - size)
    return ResizeCrop(scaled_h, scaled_w, top, left, size)


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
        A :class:`VideoTransform`: ``plan(height, width, rng)`` for the reader, ``__call__``
        on uint8 frames in memory, ``to_model_input`` on batches on the device.

    Raises:
        KeyError: no transform is registered as ``name``.
        TypeError: the transform takes no such argument (the message names the transform).
    """
    try:
        return TRANSFORMS.create(name, train=train, **kwargs)
    except TypeError as error:
        raise TypeError(f"video transform {name!r}: {error}") from error
