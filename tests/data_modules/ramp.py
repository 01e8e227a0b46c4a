"""Tiny ramp videos whose decoded pixels name their frame, for the catalog and clip tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from data_modules.video_writer import write_video

NUM_FRAMES = 8
# Frame t of the ramp video is a flat grey of level 30 * t, so a decoded pixel names its frame.
LEVEL_STEP = 30


def write_ramp_videos(folder: Path) -> dict[str, Path]:
    """One tiny mp4 (H.264) and one avi (MPEG-4) of 8 frames of 32x32; layouts copy them."""
    frames = np.zeros((NUM_FRAMES, 32, 32, 3), np.uint8)
    for t in range(NUM_FRAMES):
        frames[t] = LEVEL_STEP * t
    return {
        "mp4": write_video(folder / "ramp.mp4", frames, fps=8),
        "avi": write_video(folder / "ramp.avi", frames, fps=8, codec="mpeg4"),
    }


def place(source: Path, path: Path) -> str:
    """Copies ``source`` to ``path`` (making its folders) and returns the path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    return str(path)


def frame_index(video: torch.Tensor) -> list[int]:
    """Recovers the ramp frame index of every frame of a uint8 (T, H, W, 3) clip."""
    level = video[:, video.shape[1] // 2, video.shape[2] // 2, 0].float()  # (T,)
    return [round(v / LEVEL_STEP) for v in level.tolist()]
