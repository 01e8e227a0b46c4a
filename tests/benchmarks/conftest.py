"""Fixtures of the benchmark tests: a small generated video like the data benchmark's sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import videos


@pytest.fixture(scope="session")
def kinetics_like_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """45 frames of generated footage at 30 fps, a keyframe at most every 20 frames, with audio."""
    frames = videos.kinetics_like_frames(0, 45, 48, 64)
    path = tmp_path_factory.mktemp("videos") / "clip.mp4"
    return videos.encode_kinetics_like(path, frames, fps=30, gop_size=20)
