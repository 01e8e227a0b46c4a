"""The reference readers return exactly the frames a full decode gives."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from benchmarks import readers


def _decode_all(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.parametrize("thread_type", ["AUTO", None])
def test_raw_pyav_reader_matches_a_full_decode(kinetics_like_file: Path, thread_type) -> None:
    everything = _decode_all(kinetics_like_file)
    for start in (0, 13, 29):  # the first frame, after a keyframe, up to the last frame
        indices = list(range(start, start + 16))
        clip = readers.read_clip_raw_pyav(kinetics_like_file, indices, thread_type)
        assert np.array_equal(clip, everything[indices])


def test_without_pytorchvideo_its_reader_names_the_bench_extra(
    uninstall: Callable[[str], None],
) -> None:
    uninstall("pytorchvideo")
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'aurl[bench]'")):
        readers.encoded_video_class()


def test_pytorchvideo_reader_matches_a_full_decode(kinetics_like_file: Path) -> None:
    everything = _decode_all(kinetics_like_file)
    encoded_video = readers.encoded_video_class()
    clip = readers.Clip(kinetics_like_file, list(range(20, 36)), Fraction(30))
    for decode_audio in (False, True):
        out = readers.read_clip_pytorchvideo(encoded_video, clip, decode_audio)
        assert out.shape == (3, 16, 48, 64)
        assert np.array_equal(readers.as_thwc_uint8(out), everything[20:36])
