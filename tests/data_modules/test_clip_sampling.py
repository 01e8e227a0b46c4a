"""Clip samplers: ranges, segment positions, padding by repetition, determinism."""

from __future__ import annotations

import random

import pytest

from data_modules.clip_sampling import ClipInfo, create_clip_sampler


def test_random_single_clip_is_consecutive_and_in_range() -> None:
    sampler = create_clip_sampler("random", clip_len=16)
    rng = random.Random(0)
    starts = set()
    for _ in range(2000):
        (clip,) = sampler(100, rng)
        assert isinstance(clip, ClipInfo) and clip.clip_index == 0
        start = clip.frame_indices[0]
        assert clip.frame_indices == list(range(start, start + 16))
        starts.add(start)
    # Every valid start 0 .. 100 - 16 is reachable and nothing else.
    assert starts == set(range(85))


def test_random_strided_clip_fits() -> None:
    sampler = create_clip_sampler("random", clip_len=4, stride=3)  # spans 10 frames
    rng = random.Random(1)
    starts = {sampler(20, rng)[0].frame_indices[0] for _ in range(300)}
    assert starts == set(range(11))
    (clip,) = sampler(20, random.Random(2))
    start = clip.frame_indices[0]
    assert clip.frame_indices == [start, start + 3, start + 6, start + 9]


def test_random_multi_clip_starts_inside_segments() -> None:
    sampler = create_clip_sampler("random", clip_len=4, num_clips=5)
    rng = random.Random(3)
    for _ in range(100):
        clips = sampler(100, rng)
        assert [c.clip_index for c in clips] == list(range(5))
        for s, clip in enumerate(clips):
            assert 20 * s <= clip.frame_indices[0] < 20 * (s + 1)


def test_random_needs_an_explicit_rng() -> None:
    with pytest.raises(ValueError, match=r"random\.Random"):
        create_clip_sampler("random", clip_len=4)(10)


def test_random_is_deterministic_given_the_seed() -> None:
    sampler = create_clip_sampler("random", clip_len=8, num_clips=3)

    def draws(seed: int) -> list[list[ClipInfo]]:
        rng = random.Random(seed)
        return [sampler(200, rng) for _ in range(20)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_uniform_one_clip_starts_at_frame_zero() -> None:
    (clip,) = create_clip_sampler("uniform", clip_len=16)(250, random.Random(0))
    assert clip == ClipInfo(0, list(range(16)))


def test_uniform_25_clips_at_segment_starts() -> None:
    sampler = create_clip_sampler("uniform", clip_len=16, num_clips=25)
    clips = sampler(250)
    # Segment s of 250 frames starts at floor(s * 250 / 25) = 10 s; the last clips move back so
    # that they fit (last start 250 - 16 = 234).
    expected_starts = [min(10 * s, 234) for s in range(25)]
    assert [c.frame_indices[0] for c in clips] == expected_starts
    assert all(
        c.frame_indices == list(range(c.frame_indices[0], c.frame_indices[0] + 16)) for c in clips
    )
    assert [c.clip_index for c in clips] == list(range(25))


def test_uniform_segment_starts_with_uneven_division() -> None:
    clips = create_clip_sampler("uniform", clip_len=2, num_clips=25)(103)
    assert [c.frame_indices[0] for c in clips] == [s * 103 // 25 for s in range(25)]


def test_uniform_ignores_the_rng() -> None:
    sampler = create_clip_sampler("uniform", clip_len=4, num_clips=3)
    assert sampler(50, random.Random(1)) == sampler(50, random.Random(2)) == sampler(50)


@pytest.mark.parametrize("name", ["random", "uniform"])
def test_short_videos_pad_by_repetition(name: str) -> None:
    sampler = create_clip_sampler(name, clip_len=16, num_clips=3)
    for clip in sampler(5, random.Random(0)):
        assert clip.frame_indices == [0, 1, 2, 3, 4] * 3 + [0]
    (clip,) = create_clip_sampler(name, clip_len=4, stride=2)(1, random.Random(0))
    assert clip.frame_indices == [0, 0, 0, 0]
    (clip,) = create_clip_sampler(name, clip_len=4, stride=2)(5, random.Random(0))
    assert clip.frame_indices == [0, 2, 4, 1]


@pytest.mark.parametrize("name", ["random", "uniform"])
@pytest.mark.parametrize("num_frames", [1, 2, 15, 16, 17, 31, 250])
@pytest.mark.parametrize("num_clips", [1, 25])
def test_indices_always_valid(name: str, num_frames: int, num_clips: int) -> None:
    sampler = create_clip_sampler(name, clip_len=16, num_clips=num_clips, stride=2)
    clips = sampler(num_frames, random.Random(num_frames))
    assert len(clips) == num_clips
    for clip in clips:
        assert len(clip.frame_indices) == 16
        assert all(0 <= i < num_frames for i in clip.frame_indices)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        create_clip_sampler("uniform", clip_len=4)(0)
    with pytest.raises(ValueError, match="at least one frame"):
        create_clip_sampler("random", clip_len=4)(-3, random.Random(0))
    with pytest.raises(ValueError, match="clip_len"):
        create_clip_sampler("uniform", clip_len=0)
    with pytest.raises(ValueError, match="stride"):
        create_clip_sampler("random", clip_len=4, stride=0)
    with pytest.raises(KeyError, match=r"'jitter'.*random, uniform"):
        create_clip_sampler("jitter", clip_len=4)
