"""The readers our clip reader is timed against: raw PyAV (the limit) and pytorchvideo.

Each reads one :class:`Clip` and returns its frames; :func:`as_thwc_uint8` puts any reader's
output in one layout so that their frames can be compared with ours.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from aurl.optional import import_optional


@dataclass(frozen=True)
class Clip:
    """One clip to read: a video, its frame indices (contiguous) and its frame rate."""

    path: Path
    frame_indices: list[int]
    fps: Fraction


def read_clip_raw_pyav(
    path: str | Path, frame_indices: Sequence[int], thread_type: str | None
) -> np.ndarray:
    """The limit: one seek to the keyframe before the first wanted frame, decode to the last.

    Args:
        path: the video.
        frame_indices: wanted frames, sorted.
        thread_type: PyAV decoder threading; None keeps PyAV's default (slice threads).

    Returns:
        uint8 ``(T, H, W, 3)``.
    """
    wanted = set(frame_indices)
    first, last = frame_indices[0], frame_indices[-1]
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if thread_type is not None:
            stream.thread_type = thread_type
        fps, time_base = Fraction(stream.average_rate), Fraction(stream.time_base)
        start = stream.start_time or 0
        # Frames whose timestamp rounds to `first` start half a frame earlier.
        offset = max(0, math.floor((first - 0.5) / fps / time_base))
        container.seek(start + offset, backward=True, any_frame=False, stream=stream)
        for frame in container.decode(stream):
            index = round((frame.pts - start) * time_base * fps)
            if index in wanted:
                frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
            if index >= last:
                break
    return np.stack(frames)  # (T, H, W, 3)


def encoded_video_class() -> type:
    """pytorchvideo's ``EncodedVideo``, importable on torchvision versions that renamed a module.

    pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, which torchvision
    0.17 renamed ``_functional_tensor``; the alias is set here only, for this benchmark.

    Raises:
        ModuleNotFoundError: pytorchvideo is not installed (``pip install 'aurl[bench]'``).
    """
    module = "pytorchvideo.data.encoded_video"
    try:
        encoded_video = import_optional(module, extra="bench")
    except ModuleNotFoundError as error:
        if error.name != "torchvision.transforms.functional_tensor":
            raise
        import torchvision.transforms._functional_tensor as functional_tensor

        sys.modules["torchvision.transforms.functional_tensor"] = functional_tensor
        encoded_video = import_optional(module, extra="bench")
    return encoded_video.EncodedVideo


def read_clip_pytorchvideo(
    encoded_video: type, clip: Clip, decode_audio: bool = False
) -> torch.Tensor:
    """A clip through ``EncodedVideo``, frames ``[first / fps, (last + 1) / fps)``.

    Returns:
        float32 ``(C, T, H, W)`` in [0, 255] (pytorchvideo's output).
    """
    video = encoded_video.from_path(str(clip.path), decode_audio=decode_audio)
    try:
        first, last = clip.frame_indices[0], clip.frame_indices[-1]
        out = video.get_clip(Fraction(first) / clip.fps, Fraction(last + 1) / clip.fps)
    finally:
        video.close()
    return out["video"]


def as_thwc_uint8(frames: Any) -> np.ndarray:
    """Any method's output as uint8 ``(T, H, W, 3)`` (pytorchvideo's is float ``(C, T, H, W)``)."""
    if isinstance(frames, torch.Tensor) and frames.is_floating_point():
        return frames.permute(1, 2, 3, 0).round().to(torch.uint8).numpy()
    return np.asarray(frames)
