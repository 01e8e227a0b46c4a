"""The reference readers return exactly the frames a full decode gives; the reference loaders
read the clips ours reads."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from benchmarks import readers
from data_modules.clip_dataset import VideoClipDataset
from data_modules.clip_sampling import create_clip_sampler
from data_modules.transforms import KINETICS_STD, create_transform


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


def test_the_loaders_read_the_same_clips(kinetics_like_file: Path) -> None:
    everything = _decode_all(kinetics_like_file)
    sampler = create_clip_sampler("random", 16)
    paths = [str(kinetics_like_file)] * 6
    transform = create_transform("aurl", train=True, size=24)
    ours = VideoClipDataset([(p, 0) for p in paths], ["v"], sampler, transform, seed=4)
    float_pipeline = readers.FloatPipelineDataset(paths, sampler, 24, seed=4)
    raw = readers.RawDecodeDataset(paths, [45] * 6, sampler, seed=4)
    starts = set()
    for i in range(len(paths)):
        (clip,) = sampler(45, random.Random(ours.item_seed(i)))
        indices = list(clip.frame_indices)
        starts.add(indices[0])
        frames = raw[i]["video"]  # (16, 48, 64, 3) uint8
        assert np.array_equal(frames.numpy(), everything[indices])
        old = float_pipeline[i]["video"]  # (C, 16, 24, 24) float32
        assert torch.equal(old, readers.float_pipeline_resize(frames, 24))
        new = transform.to_model_input(ours[i]["video"][None])[0]  # (C, 16, 24, 24)
        # Scaled from YUV by swscale vs from RGB by torch: close, not equal. On this small,
        # noisy video about 4 grey levels on average (mostly chroma, which the float pipeline
        # upsampled at full size); the clip one frame later is about 7 levels away.
        levels = (new - old) * torch.tensor(KINETICS_STD).view(3, 1, 1, 1) * 255
        assert levels.abs().mean() < 5.0
    assert len(starts) > 1
