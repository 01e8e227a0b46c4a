"""Class-name cleaning on the real shipped UCF101, HMDB51 and Kinetics class lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurl.class_names import (
    NAME_STYLES,
    STOP_WORDS,
    clean_class_name,
    clean_class_names,
    content_words,
    split_words,
)

# Read from the repository, not through `import data_modules`: with tests/ on sys.path that name
# can resolve to the tests/data_modules folder.
CLASS_LISTS = Path(__file__).resolve().parents[2] / "data_modules" / "class_lists"
# Lower-case words (letters, digits, an inner apostrophe) separated by single spaces.
PHRASE = re.compile(r"[a-z0-9']+( [a-z0-9']+)*")


def read_lines(name: str) -> list[str]:
    return (CLASS_LISTS / name).read_text().splitlines()


def ucf101_names() -> list[str]:
    # classInd.txt lines are "index Name".
    return [line.split()[1] for line in read_lines("ucf101_classInd.txt")]


def test_all_ucf101_names_clean_to_distinct_phrases() -> None:
    names = ucf101_names()
    cleaned = clean_class_names(names, "ucf101")
    assert len(names) == len(cleaned) == 101
    assert len(set(cleaned)) == 101
    for name, phrase in zip(names, cleaned, strict=True):
        assert PHRASE.fullmatch(phrase), (name, phrase)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ApplyEyeMakeup", "apply eye makeup"),
        ("YoYo", "yo yo"),
        ("CleanAndJerk", "clean and jerk"),
        ("HandstandPushups", "handstand pushups"),
        ("HandStandPushups", "handstand pushups"),
        ("WallPushups", "wall pushups"),
        ("PushUps", "pushups"),
        ("PullUps", "pullups"),
        ("PlayingDaf", "playing daf"),
        ("SkyDiving", "skydiving"),
        ("SkateBoarding", "skateboarding"),
        ("BreastStroke", "breaststroke"),
        ("Skijet", "jet skiing"),
        ("RockClimbingIndoor", "indoor rock climbing"),
        ("TaiChi", "tai chi"),
        ("WalkingWithDog", "walking with dog"),
        ("Basketball", "basketball"),
        (" BlowDryHair ", "blow dry hair"),
        ("Apply_Eye Makeup", "apply eye makeup"),
        ("TVShow3", "tv show 3"),
    ],
)
def test_ucf101_examples(name: str, expected: str) -> None:
    assert clean_class_name(name, "ucf101") == expected


def test_all_hmdb51_names_clean_to_distinct_phrases() -> None:
    names = read_lines("hmdb51_classes.txt")
    cleaned = clean_class_names(names, "hmdb51")
    assert len(set(cleaned)) == 51
    assert all(PHRASE.fullmatch(phrase) for phrase in cleaned)
    assert "_" not in "".join(cleaned)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("brush_hair", "brush hair"),
        ("climb_stairs", "climb stairs"),
        ("fall_floor", "fall on floor"),
        ("shoot_bow", "shoot bow"),
        ("cartwheel", "cartwheel"),
    ],
)
def test_hmdb51_examples(name: str, expected: str) -> None:
    assert clean_class_name(name, "hmdb51") == expected


@pytest.mark.parametrize(
    "file_name", ["kinetics400_classes.txt", "kinetics600_classes.txt", "kinetics700_classes.txt"]
)
def test_all_kinetics_names_clean_to_distinct_phrases(file_name: str) -> None:
    names = read_lines(file_name)
    cleaned = clean_class_names(names, "kinetics")
    assert len(set(cleaned)) == len(names)
    for name, phrase in zip(names, cleaned, strict=True):
        assert PHRASE.fullmatch(phrase), (name, phrase)
        assert "not" not in phrase.split(), (name, phrase)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("passing American football (not in game)", "passing american football"),
        ("passing American football (in game)", "passing american football in game"),
        ("skiing (not slalom or crosscountry)", "skiing"),
        ("throwing ball (not baseball or American football)", "throwing ball"),
        ("curling (sport)", "curling sport"),
        ("massaging person's head", "massaging person's head"),
        ("abseiling", "abseiling"),
        ("air_drumming", "air drumming"),
        ("hugging (not baby", "hugging"),
    ],
)
def test_kinetics_examples(name: str, expected: str) -> None:
    assert clean_class_name(name, "kinetics") == expected


@pytest.mark.parametrize("dataset", ["synthetic", "none"])
def test_synthetic_and_none_strip_collapse_and_lower(dataset: str) -> None:
    assert clean_class_name("  Red  Circle\tMoving_Left ", dataset) == "red circle moving_left"


@pytest.mark.parametrize("dataset", NAME_STYLES)
@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_blank_names_are_rejected_with_the_value(dataset: str, name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        clean_class_name(name, dataset)


def test_name_with_no_words_left_is_rejected() -> None:
    with pytest.raises(ValueError, match=re.escape("'(not anything)'")):
        clean_class_name("(not anything)", "kinetics")


def test_unknown_dataset_is_rejected() -> None:
    with pytest.raises(ValueError, match="'ucf'"):
        clean_class_name("Archery", "ucf")


def test_duplicates_after_cleaning_are_reported() -> None:
    with pytest.raises(ValueError, match=r"PlayingCello.*Playing_Cello.*'playing cello'"):
        clean_class_names(["PlayingCello", "Archery", "Playing_Cello"], "ucf101")
    with pytest.raises(ValueError, match=re.escape("'hugging (not baby)'] -> 'hugging'")):
        clean_class_names(["hugging", "hugging baby", "hugging (not baby)"], "kinetics")


@given(name=st.text(alphabet=st.characters(min_codepoint=9, max_codepoint=126)))
def test_cleaning_gives_a_normalised_fixed_point(name: str) -> None:
    for dataset in NAME_STYLES:
        try:
            phrase = clean_class_name(name, dataset)
        except ValueError:
            continue
        assert phrase == phrase.strip().lower()
        assert "  " not in phrase and "\t" not in phrase and "\n" not in phrase
        assert clean_class_name(phrase, dataset) == phrase


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("walking with dog", ["walking", "dog"]),
        ("pretending to be a statue", ["pretending", "statue"]),
        ("massaging person's head", ["massaging", "person", "head"]),
        ("using a paint roller", ["paint", "roller"]),
        ("Playing  Cello!", ["playing", "cello"]),
        ("in the", []),
    ],
)
def test_content_words(phrase: str, expected: list[str]) -> None:
    assert content_words(phrase) == expected


def test_split_words_keeps_stop_words() -> None:
    assert split_words("clean and jerk") == ["clean", "and", "jerk"]


def test_stop_words_are_a_lower_case_frozenset() -> None:
    assert isinstance(STOP_WORDS, frozenset)
    assert {"a", "the", "with", "of", "and"} <= STOP_WORDS
    assert all(word == word.lower() for word in STOP_WORDS)
    # Words that carry the action must never be dropped.
    assert not {"playing", "jump", "ball", "not"} & STOP_WORDS
