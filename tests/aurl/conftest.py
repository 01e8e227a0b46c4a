"""Fixtures shared by the model and text-encoder tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from tests.tiny import COLOURS, SHAPES, TEXT_DIM

# The words of a few action-class names; "table_tennis" is a joined phrase entry as GoogleNews
# has them, and "sitar", "flute", "big", ... are left out so tests can miss them.
ACTION_WORDS = [
    "playing",
    "cello",
    "violin",
    "walking",
    "dog",
    "apply",
    "eye",
    "makeup",
    "table",
    "tennis",
    "table_tennis",
    "shot",
]
ACTION_WORD_DIM = 5


@pytest.fixture(scope="module")
def word_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word2vec file: one random ``TEXT_DIM``-d vector per colour and shape word.

    The vocabulary of the colour-shape clips the model tests train on; the text-encoder tests
    use ``action_word_vectors`` instead.
    """
    rng = np.random.default_rng(0)
    words = COLOURS + SHAPES
    kv = KeyedVectors(vector_size=TEXT_DIM)
    kv.add_vectors(words, rng.normal(size=(len(words), TEXT_DIM)).astype(np.float32))
    path = tmp_path_factory.mktemp("w2v") / "tiny.kv"
    kv.save(str(path))
    return path


@pytest.fixture(scope="session")
def action_word_vectors() -> dict[str, np.ndarray]:
    """One random 5-d vector per word of ``ACTION_WORDS``, read-only.

    Norms lie far from 1, so averaging raw instead of unit word vectors (a missing per-word
    normalisation) gives another mean.
    """
    rng = np.random.default_rng(0)
    vectors = {
        word: (rng.standard_normal(ACTION_WORD_DIM) * rng.uniform(0.5, 4.0)).astype(np.float32)
        for word in ACTION_WORDS
    }
    for vector in vectors.values():
        vector.flags.writeable = False  # shared by the whole session
    return vectors


def write_text(path: Path, vectors: dict[str, np.ndarray], header: bool = True) -> Path:
    # The word2vec text format, by hand: "count dim" then "word v1 ... vD" per line.
    dim = len(next(iter(vectors.values())))
    lines = [f"{len(vectors)} {dim}"] if header else []
    lines += [f"{word} " + " ".join(repr(float(x)) for x in vec) for word, vec in vectors.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def action_word_vector_files(
    tmp_path_factory: pytest.TempPathFactory, action_word_vectors: dict[str, np.ndarray]
) -> dict[str, Path]:
    """``action_word_vectors`` in every format the word2vec encoder reads, keyed by format.

    ``"txt"``, ``"bin"``, ``"kv"``, ``"glove"`` (text without a header) and ``"txt.gz"``, plus
    ``"txt-swapped"``: another model with the cello and violin vectors swapped, written as
    ``vectors.txt`` like ``"txt"`` (same name and size, other bytes).
    """
    folder = tmp_path_factory.mktemp("action_word_vectors")
    keyed = KeyedVectors(vector_size=ACTION_WORD_DIM)
    keyed.add_vectors(list(action_word_vectors), np.stack(list(action_word_vectors.values())))
    keyed.save_word2vec_format(str(folder / "vectors.bin"), binary=True)
    keyed.save(str(folder / "vectors.kv"))
    plain = write_text(folder / "plain.txt", action_word_vectors)
    (folder / "vectors.txt.gz").write_bytes(gzip.compress(plain.read_bytes()))
    swapped = dict(
        action_word_vectors,
        cello=action_word_vectors["violin"],
        violin=action_word_vectors["cello"],
    )
    (folder / "swapped").mkdir()
    return {
        "txt": write_text(folder / "vectors.txt", action_word_vectors),
        "bin": folder / "vectors.bin",
        "kv": folder / "vectors.kv",
        "glove": write_text(folder / "glove.txt", action_word_vectors, header=False),
        "txt.gz": folder / "vectors.txt.gz",
        "txt-swapped": write_text(folder / "swapped" / "vectors.txt", swapped),
    }
