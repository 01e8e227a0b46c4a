"""The readers our clip reader is timed against: raw PyAV (the limit) and pytorchvideo; and the
loaders the DataLoader benchmark compares ours with.

Each reader reads one :class:`Clip` and returns its frames; :func:`as_thwc_uint8` puts any
reader's output in one layout so that their frames can be compared with ours. The loaders are
datasets over the same items as :class:`~data_modules.clip_dataset.VideoClipDataset`:
:class:`FloatPipelineDataset` is the loader before resize in decode (full-size RGB frames,
float32 on the host, torch's antialiased resize, normalisation), kept here as the reference;
:class:`RawDecodeDataset` only decodes frames, the limit of any loader of these files.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from aurl.optional import import_optional
from data_modules.transforms import KINETICS_MEAN, KINETICS_STD
from data_modules.video_reader import read_sampled_clips


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


# --- loaders ---------------------------------------------------------------------------------
def float_pipeline_resize(
    video: torch.Tensor,
    size: int,
    mean: Sequence[float] = KINETICS_MEAN,
    std: Sequence[float] = KINETICS_STD,
) -> torch.Tensor:
    """The ``"aurl"`` transform before resize in decode, on the host: uint8 ``(T, H, W, 3)`` ->
    float32 ``(C, T, size, size)``, converted at full size, resized (bilinear, antialiased) and
    normalised."""
    video = video.permute(3, 0, 1, 2).float().div_(255.0)  # (C, T, H, W)
    if video.shape[-2:] != (size, size):
        frames = video.permute(1, 0, 2, 3)  # (T, C, H, W): frames as the batch
        frames = F.interpolate(
            frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        video = frames.permute(1, 0, 2, 3).contiguous()  # (C, T, size, size)
    mean_t = torch.tensor(mean, dtype=video.dtype).view(-1, 1, 1, 1)  # (C, 1, 1, 1)
    std_t = torch.tensor(std, dtype=video.dtype).view(-1, 1, 1, 1)  # (C, 1, 1, 1)
    return (video - mean_t) / std_t


def item_rng(seed: int, index: int, epoch: int = 0) -> random.Random:
    """Item ``index``'s generator, seeded as ``VideoClipDataset.item_seed`` seeds it."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)
    return random.Random(int(state[0]))


class FloatPipelineDataset(Dataset):
    """The loader before resize in decode: one clip per item, full-size RGB frames from
    :func:`~data_modules.video_reader.read_sampled_clips`, then :func:`float_pipeline_resize`
    on the host. Items ``{"video": float32 (C, T, size, size), "label", "path"}``, the same
    clips as a ``VideoClipDataset`` with the same ``seed`` and clip sampler.

    Args:
        paths: one video per item.
        clip_sampler: ``(num_frames, rng) -> [ClipInfo]`` (one clip).
        size: output side.
        seed: base seed of the per-item generators.
    """

    def __init__(
        self,
        paths: Sequence[str],
        clip_sampler: Callable[[int, random.Random], Sequence[Any]],
        size: int,
        seed: int,
    ) -> None:
        self.paths = list(paths)
        self.clip_sampler = clip_sampler
        self.size = size
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = item_rng(self.seed, index)
        (frames,) = read_sampled_clips(
            self.paths[index],
            lambda info: [c.frame_indices for c in self.clip_sampler(info.num_frames, rng)],
            None,
        )
        video = float_pipeline_resize(frames, self.size)  # (C, T, size, size)
        return {"video": video, "label": 0, "path": self.paths[index]}


class RawDecodeDataset(Dataset):
    """Decoding only: one clip per item read by :func:`read_clip_raw_pyav` (full-size uint8
    ``(T, H, W, 3)``, no resize), the same clips as a ``VideoClipDataset`` with the same
    ``seed`` and clip sampler.

    Args:
        paths: one video per item.
        num_frames: each item's frame count (probed beforehand, outside the timing).
        clip_sampler: ``(num_frames, rng) -> [ClipInfo]`` (one clip).
        seed: base seed of the per-item generators.
    """

    def __init__(
        self,
        paths: Sequence[str],
        num_frames: Sequence[int],
        clip_sampler: Callable[[int, random.Random], Sequence[Any]],
        seed: int,
    ) -> None:
        self.paths = list(paths)
        self.num_frames = list(num_frames)
        self.clip_sampler = clip_sampler
        self.seed = seed

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = item_rng(self.seed, index)
        (clip,) = self.clip_sampler(self.num_frames[index], rng)
        frames = read_clip_raw_pyav(self.paths[index], list(clip.frame_indices), None)
        return {"video": torch.from_numpy(frames), "label": 0, "path": self.paths[index]}


def collate_list(items: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Items as lists per key, unstacked (frames of different sizes; see RawDecodeDataset)."""
    return {key: [item[key] for item in items] for key in items[0]}
