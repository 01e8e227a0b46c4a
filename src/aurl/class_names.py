"""Turns dataset class labels into the natural phrases that text encoders embed.

Each dataset spells its labels differently: UCF101 uses CamelCase (``ApplyEyeMakeup``), HMDB51
snake_case (``brush_hair``) and Kinetics lower-case phrases with parenthetical notes
(``passing American football (not in game)``). :func:`clean_class_name` maps all of them to a
lower-case, single-space separated phrase (``apply eye makeup``, ``brush hair``,
``passing american football``); datasets store these cleaned names and hand them to the text
encoders. :func:`content_words` then gives the words that a word-vector encoder averages.

Differences from the original AURL/E2E code (``auxiliary_word2vec.py``), on purpose:

- The original replaced some names by other words so that every word was in the GoogleNews
  vocabulary (``CleanAndJerk`` -> ``weight lift``, ``TaiChi`` -> ``taichi``, ``YoYo`` -> ``yoyo``).
  Here the phrase stays faithful to the label (``clean and jerk``, ``tai chi``, ``yo yo``), because
  the same phrase also feeds sentence and CLIP encoders; a word2vec model that lacks a word
  reports it by name (see ``aurl.text_encoders.word2vec``).
- No lemmatisation. The original lemmatised verbs with WordNet (``playing`` -> ``play``); WordNet
  data cannot be fetched here, a hand-made rule table would mangle nouns ending in ``-ing``
  (``boxing``, ``bowling``, ``skiing``), and GoogleNews holds the inflected forms, so every word
  is kept as written.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

NAME_STYLES = ("ucf101", "hmdb51", "kinetics", "synthetic", "none")

# Words dropped before averaging word vectors: the list the original code used for Kinetics
# ("a the of and at on in an or do using with") plus a few more function words that appear in
# Kinetics/HMDB names ("to", "be", "into", "for", "from", "by", "onto").
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "at",
        "be",
        "by",
        "do",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "onto",
        "or",
        "the",
        "to",
        "using",
        "with",
    }
)

# UCF101 labels whose CamelCase split reads badly; every other label splits correctly
# (``CleanAndJerk`` -> ``clean and jerk``, ``YoYo`` -> ``yo yo``, ``HandstandPushups`` ->
# ``handstand pushups``, ``PlayingDaf`` -> ``playing daf``).
UCF101_OVERRIDES = {
    # The video files spell the class ``v_HandStandPushups_*``; the official list does not.
    "HandStandPushups": "handstand pushups",
    # One word, as in ``HandstandPushups`` and ``WallPushups`` (and in the original code).
    "PushUps": "pushups",
    "PullUps": "pullups",
    # Single English words that the split would break in two.
    "SkateBoarding": "skateboarding",
    "SkyDiving": "skydiving",
    "BreastStroke": "breaststroke",
    # "Skijet" is a brand name for a jet ski; the videos show people riding jet skis.
    "Skijet": "jet skiing",
    "RockClimbingIndoor": "indoor rock climbing",
}

# HMDB51 folder names whose underscore split reads badly (the videos show people falling down).
HMDB51_OVERRIDES = {
    "fall_floor": "fall on floor",
}

_WHITESPACE = re.compile(r"\s+")
# CamelCase pieces: an acronym before a capitalised word ("TVShow" -> "TV", "Show"), a
# capitalised or lower-case word, a trailing acronym, or a number.
_CAMEL_PIECE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Kinetics "(not ...)" notes say what a class excludes, so they carry no words of the class.
_NOT_NOTE = re.compile(r"\(\s*not\b[^)]*(?:\)|$)")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")


def clean_class_name(name: str, style: str) -> str:
    """Cleans one class label into a lower-case, single-space separated phrase.

    Args:
        name: the label as the dataset spells it (``"ApplyEyeMakeup"``, ``"brush_hair"``,
            ``"passing American football (not in game)"``).
        style: how to read the label (a catalog's ``name_style``):
            ``"ucf101"``: split CamelCase into words, with the overrides in
            :data:`UCF101_OVERRIDES`;
            ``"hmdb51"``: ``_`` to space, with the overrides in :data:`HMDB51_OVERRIDES`;
            ``"kinetics"``: lower-case, drop ``(not ...)`` notes, keep the words of other
            parenthetical notes (``curling (sport)`` -> ``curling sport``, which keeps
            ``passing american football in game`` apart from its ``(not in game)`` twin),
            ``_`` to space;
            ``"synthetic"`` and ``"none"``: strip, collapse whitespace, lower-case.

    Returns:
        The cleaned phrase, e.g. ``"apply eye makeup"``.

    Raises:
        ValueError: if ``name`` is empty or whitespace only, if it cleans to nothing, or if
            ``style`` is unknown.
    """
    if style not in NAME_STYLES:
        raise ValueError(f"unknown class-name style {style!r}; use one of {NAME_STYLES}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"class name must be a non-empty string, got {name!r}")
    stripped = name.strip()
    if style == "ucf101":
        cleaned = UCF101_OVERRIDES.get(stripped) or _split_camel_case(stripped)
    elif style == "hmdb51":
        cleaned = HMDB51_OVERRIDES.get(stripped) or stripped.replace("_", " ")
    elif style == "kinetics":
        cleaned = _NOT_NOTE.sub(" ", stripped.replace("_", " "))
        cleaned = cleaned.replace("(", " ").replace(")", " ")
    else:
        cleaned = stripped
    cleaned = _WHITESPACE.sub(" ", cleaned).strip().lower()
    if not cleaned:
        raise ValueError(f"{style} class name {name!r} has no words left after cleaning")
    return cleaned


def clean_class_names(names: Iterable[str], style: str) -> list[str]:
    """Cleans a list of labels with :func:`clean_class_name` and checks they stay distinct.

    Raises:
        ValueError: if a label is invalid (see :func:`clean_class_name`), or if two different
            labels clean to the same phrase; the message names every such group.
    """
    names = list(names)
    cleaned = [clean_class_name(name, style) for name in names]
    sources: dict[str, list[str]] = defaultdict(list)
    for name, phrase in zip(names, cleaned, strict=True):
        sources[phrase].append(name)
    clashes = {phrase: labels for phrase, labels in sources.items() if len(labels) > 1}
    if clashes:
        listed = "; ".join(f"{labels} -> {phrase!r}" for phrase, labels in clashes.items())
        raise ValueError(f"{style} class names collide after cleaning: {listed}")
    return cleaned


def split_words(phrase: str) -> list[str]:
    """Splits a phrase into lower-case words, dropping punctuation and possessive ``'s``.

    ``"massaging person's head"`` -> ``["massaging", "person", "head"]``.
    """
    words = _WORD.findall(phrase.lower())
    return [word.removesuffix("'s") for word in words]


def content_words(phrase: str) -> list[str]:
    """The words of ``phrase`` (see :func:`split_words`) that are not in :data:`STOP_WORDS`.

    ``"walking with dog"`` -> ``["walking", "dog"]``. May be empty (``"in the"`` -> ``[]``).
    """
    return [word for word in split_words(phrase) if word not in STOP_WORDS]


def _split_camel_case(name: str) -> str:
    # Separators that are already there ("Apply_Eye Makeup") count as word breaks too.
    pieces = re.split(r"[^A-Za-z0-9]+", name)
    return " ".join(word for piece in pieces for word in _CAMEL_PIECE.findall(piece))
