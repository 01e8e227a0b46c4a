"""Bad class names meet the text encoders: clear errors naming them, or the documented fallback.

Input checks (empty list, blank or duplicate names) must run before any model or vector file is
loaded, so a typo in a class list fails in milliseconds instead of after loading a model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from aurl.text_encoders import (
    ClassEmbeddingCache,
    SentenceTransformerEncoder,
    TextEncoder,
    Word2VecEncoder,
    create_text_encoder,
)

DIM = 6
WORDS = ["playing", "cello", "violin", "walking", "dog"]


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    # Norms far from 1, so averaging raw instead of unit vectors would give another answer.
    return {
        w: (rng.standard_normal(DIM) * rng.uniform(0.5, 4.0)).astype(np.float32) for w in WORDS
    }


@pytest.fixture(scope="module")
def vector_file(tmp_path_factory: pytest.TempPathFactory, vectors: dict[str, np.ndarray]) -> Path:
    keyed = KeyedVectors(vector_size=DIM)
    keyed.add_vectors(list(vectors), np.stack(list(vectors.values())))
    path = tmp_path_factory.mktemp("w2v") / "tiny.kv"
    keyed.save(str(path))
    return path


def unit_mean(vectors: dict[str, np.ndarray], words: list[str]) -> np.ndarray:
    return np.mean([vectors[w] / np.linalg.norm(vectors[w]) for w in words], axis=0)


def unloaded_encoder(kind: str, vector_file: Path) -> TextEncoder:
    # Building an encoder only fingerprints its file or folder (milliseconds); it loads lazily.
    if kind == "word2vec":
        return create_text_encoder("word2vec", path=vector_file)
    return create_text_encoder(kind)


def is_loaded(encoder: TextEncoder) -> bool:
    if isinstance(encoder, Word2VecEncoder):
        return encoder._vectors is not None
    assert isinstance(encoder, SentenceTransformerEncoder)
    return encoder._model is not None


# --- word2vec: out-of-vocabulary words ---------------------------------------------------------
def test_oov_error_names_every_class_and_its_missing_words(vector_file: Path) -> None:
    encoder = create_text_encoder("word2vec", path=vector_file)
    with pytest.raises(ValueError) as info:
        encoder.encode(["playing cello", "playing sitar", "flute solo", "walking dog"])
    message = str(info.value)
    assert str(vector_file) in message
    assert "'playing sitar': missing word(s) ['sitar']" in message
    assert "'flute solo': missing word(s) ['flute', 'solo']" in message
    assert "playing cello" not in message and "walking dog" not in message
    assert 'oov="skip"' in message  # the error says how to fall back


def test_oov_error_leaves_no_cache_entry(vector_file: Path, tmp_path: Path) -> None:
    cache = ClassEmbeddingCache(tmp_path / "cache")
    encoder = create_text_encoder("word2vec", path=vector_file)
    with pytest.raises(ValueError, match="'sitar'"):
        cache.encode(encoder, ["playing cello", "playing sitar"])
    assert not list(tmp_path.rglob("*.pt"))


def test_oov_skip_averages_the_known_words_and_warns(
    vector_file: Path, vectors: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    encoder = create_text_encoder("word2vec", path=vector_file, oov="skip")
    with caplog.at_level(logging.WARNING, logger="aurl.text_encoders.word2vec"):
        embeddings = encoder.encode(["playing sitar", "walking big dog"])
    expected = np.stack(
        [unit_mean(vectors, ["playing"]), unit_mean(vectors, ["walking", "dog"])]
    )  # (2, DIM)
    np.testing.assert_allclose(embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert "'playing sitar'" in caplog.text and "'sitar'" in caplog.text
    assert "'walking big dog'" in caplog.text and "'big'" in caplog.text


@pytest.mark.parametrize("oov", ["error", "skip"])
def test_class_without_known_words_is_an_error_in_both_modes(vector_file: Path, oov: str) -> None:
    encoder = create_text_encoder("word2vec", path=vector_file, oov=oov)
    with pytest.raises(ValueError, match=r"'sitar solo'.*'sitar', 'solo'"):
        encoder.encode(["cello", "sitar solo"])


@pytest.mark.parametrize("oov", ["error", "skip"])
def test_class_of_stop_words_only_is_named(vector_file: Path, oov: str) -> None:
    encoder = create_text_encoder("word2vec", path=vector_file, oov=oov)
    with pytest.raises(ValueError, match=r"'in the' has no content words"):
        encoder.encode(["cello", "in the"])


def test_unknown_oov_mode_is_rejected(vector_file: Path) -> None:
    with pytest.raises(ValueError, match="'ignore'"):
        create_text_encoder("word2vec", path=vector_file, oov="ignore")


# --- every encoder: empty, blank and duplicate names, checked before loading -------------------
@pytest.mark.parametrize("kind", ["word2vec", "sentence-transformers"])
@pytest.mark.parametrize(
    ("texts", "error", "pattern"),
    [
        ([], ValueError, "empty list"),
        (["cello", ""], ValueError, r"positions \[1\]"),
        (["  ", "cello", "\t\n"], ValueError, r"positions \[0, 2\]"),
        (
            ["cello", "dog", "cello", "dog", "violin"],
            ValueError,
            r"duplicated: \['cello', 'dog'\]",
        ),
        ("playing cello", TypeError, "single string 'playing cello'"),
        (["cello", None], TypeError, r"\[None\]"),
    ],
    ids=["empty", "blank", "whitespace", "duplicates", "single-string", "not-a-string"],
)
def test_bad_name_lists_fail_before_loading(
    kind: str,
    texts: object,
    error: type[Exception],
    pattern: str,
    vector_file: Path,
    tmp_path: Path,
) -> None:
    encoder = unloaded_encoder(kind, vector_file)
    with pytest.raises(error, match=pattern):
        encoder.encode(texts)
    with pytest.raises(error, match=pattern):
        ClassEmbeddingCache(tmp_path / "cache").encode(encoder, texts)
    assert not is_loaded(encoder)
    assert not (tmp_path / "cache").exists()
