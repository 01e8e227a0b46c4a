"""Clip samplers: which frame indices of a video make up each clip.

A sampler maps a video's frame count to a list of :class:`ClipInfo`. Samplers hold no random
state: the caller passes a ``random.Random`` per call, so DataLoader workers and DDP ranks are
seeded by whoever owns the seed.

Both samplers split the video into ``num_clips`` equal segments (segment ``s`` starts at frame
``floor(s * n / num_clips)``), as the original code does: ``random`` starts each clip at a random
frame inside its segment (training, usually one clip, so the segment is the whole video),
``uniform`` at the segment's first frame (testing, 1 or 25 clips). A clip spans
``(clip_len - 1) * stride + 1`` frames and is moved back to fit inside the video; a video shorter
than that is padded by repetition: the clip loops over frames ``0 .. n - 1``.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import NamedTuple

from aurl.registry import Registry


class ClipInfo(NamedTuple):
    """One clip of a video.

    Attributes:
        clip_index: position of the clip among the video's clips (0-based).
        frame_indices: ``clip_len`` frame indices, each in ``[0, num_frames)``.
    """

    clip_index: int
    frame_indices: list[int]


class ClipSampler(ABC):
    """Picks ``num_clips`` clips of ``clip_len`` frames, ``stride`` frames apart.

    Args:
        clip_len: frames per clip.
        num_clips: clips per video (one per segment).
        stride: step between consecutive frames of a clip.
    """

    def __init__(self, clip_len: int, num_clips: int = 1, stride: int = 1) -> None:
        for name, value in (("clip_len", clip_len), ("num_clips", num_clips), ("stride", stride)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.clip_len = clip_len
        self.num_clips = num_clips
        self.stride = stride

    @property
    def span(self) -> int:
        """Frames covered by one clip, first to last."""
        return (self.clip_len - 1) * self.stride + 1

    def __call__(self, num_frames: int, rng: random.Random | None = None) -> list[ClipInfo]:
        """Samples the clips of a video with ``num_frames`` frames.

        Args:
            num_frames: the video's frame count (> 0).
            rng: the random source (required by samplers that draw).

        Returns:
            ``num_clips`` clips in segment order.
        """
        if num_frames <= 0:
            raise ValueError(f"a video needs at least one frame to sample clips, got {num_frames}")
        clips = []
        for s in range(self.num_clips):
            seg_start = s * num_frames // self.num_clips
            seg_end = (s + 1) * num_frames // self.num_clips  # exclusive
            start = self._start(seg_start, seg_end, num_frames, rng)
            indices = [(start + j * self.stride) % num_frames for j in range(self.clip_len)]
            clips.append(ClipInfo(s, indices))
        return clips

    def _last_start(self, num_frames: int) -> int:
        """The last start frame whose clip fits; 0 for videos shorter than a clip (they loop)."""
        return max(0, num_frames - self.span)

    @abstractmethod
    def _start(
        self, seg_start: int, seg_end: int, num_frames: int, rng: random.Random | None
    ) -> int:
        """The first frame of the clip of segment ``[seg_start, seg_end)``."""


CLIP_SAMPLERS: Registry[ClipSampler] = Registry("clip sampler")


@CLIP_SAMPLERS.register("random")
class RandomClipSampler(ClipSampler):
    """Training: each clip starts at a uniformly random frame of its segment that lets it fit.

    With one clip the start is uniform in ``[0, n - span]``. A segment lying wholly past the last
    fitting start (many clips, short video) puts its clip at that last start.
    """

    def _start(
        self, seg_start: int, seg_end: int, num_frames: int, rng: random.Random | None
    ) -> int:
        if rng is None:
            raise ValueError("the random clip sampler needs an explicit random.Random (rng)")
        last = self._last_start(num_frames)
        low = min(seg_start, last)
        high = max(low, min(seg_end - 1, last))
        return rng.randint(low, high)


@CLIP_SAMPLERS.register("uniform")
class UniformClipSampler(ClipSampler):
    """Testing: each clip starts at its segment's first frame (moved back to fit); no draws."""

    def _start(
        self, seg_start: int, seg_end: int, num_frames: int, rng: random.Random | None
    ) -> int:
        return min(seg_start, self._last_start(num_frames))


def create_clip_sampler(
    name: str, clip_len: int, num_clips: int = 1, stride: int = 1
) -> ClipSampler:
    """Builds a clip sampler by name.

    Args:
        name: ``"random"`` (training) or ``"uniform"`` (testing).
        clip_len: frames per clip (16 in the paper).
        num_clips: clips per video (1 for training; 1 or 25 for testing).
        stride: step between consecutive frames of a clip (1: consecutive frames).

    Returns:
        The sampler, called as ``sampler(num_frames, rng) -> list[ClipInfo]``.
    """
    return CLIP_SAMPLERS.create(name, clip_len=clip_len, num_clips=num_clips, stride=stride)
