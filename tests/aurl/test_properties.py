"""Property tests (hypothesis): class-name cleaning, class splits and clip sampling.

Each property is checked against a rule written here from the documented behaviour, over random
inputs: CamelCase, snake_case and Kinetics-like labels; class lists; video lengths and clip
settings.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from aurl.class_names import (
    HMDB51_OVERRIDES,
    NAME_STYLES,
    UCF101_OVERRIDES,
    clean_class_name,
)
from data_modules.clip_sampling import create_clip_sampler
from data_modules.protocol import half_class_split_indices, half_class_splits
from data_modules.synthetic import COLOURS, MOTIONS, SHAPES, split_unseen

# derandomize: the same examples on every machine and run (a CI failure reproduces).
FAST = settings(max_examples=80, deadline=None, derandomize=True)

# Lower-case ASCII words of at least two letters: CamelCase keeps them apart unambiguously
# (runs of one-letter words read as an acronym: "ABCd" -> "ab cd").
words = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8), min_size=1, max_size=5
)
# Case variations of a word, for the datasets that lower-case.
cased_word = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1, max_size=8
)
whitespace = st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000"), min_size=1, max_size=4)
any_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


def assert_normalised(phrase: str) -> None:
    assert phrase, "empty phrase"
    assert phrase == phrase.lower()
    assert phrase == phrase.strip()
    assert "  " not in phrase
    assert all(c == " " or not c.isspace() for c in phrase), repr(phrase)


# --- class-name cleaning -----------------------------------------------------------------------
@FAST
@given(words=words)
def test_camel_case_splits_into_its_words(words: list[str]) -> None:
    label = "".join(word.capitalize() for word in words)
    assume(label not in UCF101_OVERRIDES)
    assert clean_class_name(label, "ucf101") == " ".join(words)


@FAST
@given(words=st.lists(cased_word, min_size=1, max_size=5), pad=st.sampled_from(["", " ", "  "]))
def test_snake_case_splits_at_underscores(words: list[str], pad: str) -> None:
    label = pad + "_".join(words) + pad
    assume(label.strip() not in HMDB51_OVERRIDES)
    assert clean_class_name(label, "hmdb51") == " ".join(words).lower()


@FAST
@given(
    words=st.lists(cased_word, min_size=1, max_size=5),
    note=st.lists(cased_word, min_size=0, max_size=3),
    excluded=st.lists(cased_word, min_size=0, max_size=3),
    gaps=st.lists(st.sampled_from([" ", "  ", " _ "]), min_size=8, max_size=8),
)
def test_kinetics_drops_not_notes_and_keeps_other_notes(
    words: list[str], note: list[str], excluded: list[str], gaps: list[str]
) -> None:
    label = gaps[0].join(words)
    if note:
        label += f"{gaps[1]}({' '.join(note)})"
    # "(not ...)": what the class excludes, so none of its words belong to the class.
    label += f"{gaps[2]}(not {' '.join(excluded)})"
    assert clean_class_name(label, "kinetics") == " ".join(words + note).lower()


def has_words(label: str, dataset: str) -> bool:
    """Whether the documented rules leave any word of ``label`` for ``dataset``."""
    if dataset == "ucf101":  # splits ASCII letters and digits only
        return any(c.isascii() and c.isalnum() for c in label)
    if dataset == "hmdb51":
        return bool(label.replace("_", " ").strip())
    if dataset == "kinetics":  # "(not ...)" notes go, as do "_" and brackets
        return bool(re.sub(r"\(\s*not\b[^)]*(\)|$)|[_()]", " ", label).strip())
    return bool(label.strip())


@FAST
@given(label=any_text, dataset=st.sampled_from(NAME_STYLES))
@example(label="__", dataset="hmdb51")
@example(label="_(not here)", dataset="kinetics")
@example(label="Ég", dataset="ucf101")
@example(label="TVShow_2Go", dataset="ucf101")
def test_cleaning_is_normalised_and_idempotent(label: str, dataset: str) -> None:
    if not has_words(label, dataset):
        with pytest.raises(ValueError, match=r"non-empty|no words left"):
            clean_class_name(label, dataset)
        return
    phrase = clean_class_name(label, dataset)
    assert_normalised(phrase)
    assert clean_class_name(phrase, dataset) == phrase


@FAST
@given(label=st.text(st.characters(categories=["Lu", "Ll", "Lt", "Lo"]), min_size=1, max_size=20))
def test_alphabetic_labels_never_clean_to_nothing(label: str) -> None:
    for dataset in NAME_STYLES:
        if dataset == "ucf101" and not label.isascii():
            continue  # its CamelCase split reads ASCII letters only
        assert_normalised(clean_class_name(label, dataset))


@FAST
@given(label=st.one_of(st.just(""), whitespace), dataset=st.sampled_from(NAME_STYLES))
def test_blank_labels_are_rejected(label: str, dataset: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        clean_class_name(label, dataset)


# --- split generation --------------------------------------------------------------------------
def literal_half_splits(names: list[str], n_splits: int) -> list[list[str]]:
    """The original recipe verbatim: global numpy seed, then a permutation (state restored)."""
    ordered = sorted(names)
    state = np.random.get_state()
    try:
        splits = []
        for s in range(n_splits):
            np.random.seed(s)
            splits.append(
                [ordered[i] for i in np.random.permutation(len(ordered))[: len(ordered) // 2]]
            )
        return splits
    finally:
        np.random.set_state(state)


class_lists = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz _()", min_size=1, max_size=12),
    min_size=1,
    max_size=60,
    unique=True,
)


@FAST
@given(names=class_lists, n_splits=st.integers(1, 12), shuffle_seed=st.integers(0, 2**16))
def test_half_splits_follow_the_seeded_recipe(
    names: list[str], n_splits: int, shuffle_seed: int
) -> None:
    splits = half_class_splits(names, n_splits)
    assert len(splits) == n_splits
    for split in splits:
        assert len(split) == len(names) // 2
        assert len(set(split)) == len(split)
        assert set(split) <= set(names)
    assert splits == literal_half_splits(names, n_splits)
    shuffled = random.Random(shuffle_seed).sample(names, len(names))
    assert half_class_splits(shuffled, n_splits) == splits  # any input order, same splits
    assert half_class_splits(names, n_splits) == splits  # deterministic
    indices = half_class_split_indices(shuffled, n_splits)
    assert [[shuffled[i] for i in split] for split in indices] == splits


@FAST
@given(names=class_lists)
def test_default_is_ten_splits(names: list[str]) -> None:
    assert half_class_splits(names) == literal_half_splits(names, 10)


@st.composite
def synthetic_vocabulary(draw: st.DrawFn) -> tuple[list[tuple[str, str, str]], int, int]:
    colours = draw(st.lists(st.sampled_from(sorted(COLOURS)), min_size=1, max_size=5, unique=True))
    shapes = draw(st.lists(st.sampled_from(SHAPES), min_size=1, max_size=4, unique=True))
    motions = draw(st.lists(st.sampled_from(MOTIONS), min_size=1, max_size=6, unique=True))
    classes = [(c, s, m) for c in colours for s in shapes for m in motions]
    classes = draw(st.permutations(classes))
    needed = max(len(colours), len(shapes), len(motions))
    # Up to half of the classes that are free to go: a valid split is then found quickly.
    num_unseen = draw(st.integers(0, (len(classes) - needed) // 2))
    return classes, num_unseen, draw(st.integers(0, 2**31 - 1))


@FAST
@given(vocabulary=synthetic_vocabulary())
def test_split_unseen_keeps_every_attribute_seen(
    vocabulary: tuple[list[tuple[str, str, str]], int, int],
) -> None:
    classes, num_unseen, seed = vocabulary
    names = [" ".join(c) for c in classes]
    seen, unseen = split_unseen(names, num_unseen, seed)
    assert len(unseen) == num_unseen
    assert len(seen) == len(names) - num_unseen
    assert set(seen) | set(unseen) == set(names)
    assert not set(seen) & set(unseen)
    # Both keep the input order.
    assert seen == [n for n in names if n in set(seen)]
    assert unseen == [n for n in names if n in set(unseen)]
    for k in range(3):
        assert {c[k] for c in classes} == {c[k] for c in classes if " ".join(c) in set(seen)}
    assert split_unseen(names, num_unseen, seed) == (seen, unseen)
    assert split_unseen(classes, num_unseen, seed) == (seen, unseen)


# --- clip sampling -----------------------------------------------------------------------------
clip_settings = {
    "num_frames": st.integers(1, 400),
    "clip_len": st.integers(1, 32),
    "num_clips": st.integers(1, 30),
    "stride": st.integers(1, 8),
    "seed": st.integers(0, 2**32 - 1),
}


def check_clip(indices: list[int], num_frames: int, clip_len: int, stride: int) -> int:
    """Checks one clip's frames and returns its first frame."""
    assert len(indices) == clip_len
    assert all(0 <= i < num_frames for i in indices)
    span = (clip_len - 1) * stride + 1
    if span <= num_frames:
        # It fits: consecutive frames ``stride`` apart, no wrap-around.
        assert indices == list(range(indices[0], indices[0] + span, stride))
    else:
        # Longer than the video: loops over the video from frame 0.
        assert indices == [(j * stride) % num_frames for j in range(clip_len)]
    return indices[0]


@FAST
@given(**clip_settings)
def test_uniform_clips_start_at_their_segment(
    num_frames: int, clip_len: int, num_clips: int, stride: int, seed: int
) -> None:
    sampler = create_clip_sampler("uniform", clip_len, num_clips, stride)
    clips = sampler(num_frames, random.Random(seed))
    assert [clip.clip_index for clip in clips] == list(range(num_clips))
    last_fitting = max(0, num_frames - (clip_len - 1) * stride - 1)
    for s, clip in enumerate(clips):
        start = check_clip(clip.frame_indices, num_frames, clip_len, stride)
        assert start == min(s * num_frames // num_clips, last_fitting)
    # Deterministic: no randomness, whatever the generator.
    assert sampler(num_frames, random.Random(seed + 1)) == clips
    assert sampler(num_frames) == clips


@FAST
@given(**clip_settings)
def test_random_clips_stay_in_their_segment(
    num_frames: int, clip_len: int, num_clips: int, stride: int, seed: int
) -> None:
    sampler = create_clip_sampler("random", clip_len, num_clips, stride)
    clips = sampler(num_frames, random.Random(seed))
    assert [clip.clip_index for clip in clips] == list(range(num_clips))
    last_fitting = max(0, num_frames - (clip_len - 1) * stride - 1)
    for s, clip in enumerate(clips):
        start = check_clip(clip.frame_indices, num_frames, clip_len, stride)
        segment = range(s * num_frames // num_clips, (s + 1) * num_frames // num_clips)
        allowed = [f for f in segment if f <= last_fitting]
        # A segment with no fitting start (or no frame at all) puts its clip as late as it can.
        assert start in allowed if allowed else start == min(segment.start, last_fitting)
    assert sampler(num_frames, random.Random(seed)) == clips  # same seed, same clips
