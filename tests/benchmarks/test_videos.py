"""The data benchmark's generated source videos: seeded, smooth, encoded like downloads."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
from av.video.frame import PictureType

from benchmarks import videos


def test_kinetics_like_frames_are_seeded_and_smooth() -> None:
    a = videos.kinetics_like_frames(3, 6, 32, 48)
    assert a.shape == (6, 32, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, videos.kinetics_like_frames(3, 6, 32, 48))
    b = videos.kinetics_like_frames(4, 6, 32, 48)
    frame_to_frame = np.abs(np.diff(a.astype(float), axis=0)).mean()
    between_videos = np.abs(a.astype(float) - b.astype(float)).mean()
    assert frame_to_frame < between_videos / 3  # natural-ish: consecutive frames are alike


def test_generated_video_has_b_frames_audio_and_keyframes(kinetics_like_file: Path) -> None:
    with av.open(str(kinetics_like_file)) as container:
        assert container.streams.video[0].frames == 45
        assert container.streams.audio[0].codec_context.name == "aac"
        types = {f.pict_type for f in container.decode(video=0)}
    assert PictureType.B in types
    keyframes = videos.keyframe_indices(kinetics_like_file)
    assert keyframes[0] == 0 and all(b - a <= 20 for a, b in itertools.pairwise(keyframes))
