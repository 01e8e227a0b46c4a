"""The word2vec encoder on tiny word-vector files written in the test, in every format.

Averaging, out-of-vocabulary words and their fallback, phrases, lazy loading, cache keys, and
bad files or options. Bad class-name lists, common to every encoder, are tested in
``test_text_encoder_contract.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from aurl.text_encoders import (
    ClassEmbeddingCache,
    TextEncoder,
    Word2VecEncoder,
    create_text_encoder,
    list_text_encoders,
)


def mean_of_unit_vectors(vectors: dict[str, np.ndarray], words: list[str]) -> np.ndarray:
    unit = [vectors[word] / np.linalg.norm(vectors[word]) for word in words]
    return np.mean(unit, axis=0)


@pytest.mark.parametrize("file_format", ["txt", "bin", "kv", "glove", "txt.gz"])
def test_embedding_is_the_mean_of_unit_word_vectors(
    file_format: str,
    action_word_vector_files: dict[str, Path],
    action_word_vectors: dict[str, np.ndarray],
) -> None:
    encoder = Word2VecEncoder(action_word_vector_files[file_format])
    embeddings = encoder.encode(["playing cello", "walking with the dog", "violin"])
    expected = np.stack(
        [
            mean_of_unit_vectors(action_word_vectors, ["playing", "cello"]),
            mean_of_unit_vectors(action_word_vectors, ["walking", "dog"]),
            mean_of_unit_vectors(action_word_vectors, ["violin"]),
        ]
    )
    assert encoder.dim == len(action_word_vectors["cello"])
    assert embeddings.dtype == torch.float32
    assert embeddings.device.type == "cpu"
    assert not embeddings.requires_grad
    np.testing.assert_allclose(embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)
    # AURL keeps the mean as it is: a two-word mean of distinct unit vectors is shorter than 1.
    assert embeddings[0].norm() < 0.999


def test_normalize_mean_gives_unit_rows_in_the_same_direction(
    action_word_vector_files: dict[str, Path], action_word_vectors: dict[str, np.ndarray]
) -> None:
    embeddings = Word2VecEncoder(action_word_vector_files["txt"], normalize_mean=True).encode(
        ["playing cello", "dog"]
    )
    mean = mean_of_unit_vectors(action_word_vectors, ["playing", "cello"])
    np.testing.assert_allclose(embeddings[0].numpy(), mean / np.linalg.norm(mean), rtol=1e-5)
    np.testing.assert_allclose(embeddings.norm(dim=1).numpy(), [1.0, 1.0], rtol=1e-6)


# --- out-of-vocabulary words --------------------------------------------------------------------
def test_oov_error_names_every_class_and_its_missing_words(
    action_word_vector_files: dict[str, Path],
) -> None:
    path = action_word_vector_files["kv"]
    encoder = create_text_encoder("word2vec", path=path)
    with pytest.raises(ValueError) as info:
        encoder.encode(["playing cello", "playing sitar", "flute solo", "harp", "walking dog"])
    message = str(info.value)
    assert str(path) in message
    problems = [
        "'playing sitar': missing word(s) ['sitar']",
        "'flute solo': missing word(s) ['flute', 'solo']",
        "'harp': missing word(s) ['harp']",
    ]
    assert all(problem in message for problem in problems)
    positions = [message.index(problem) for problem in problems]
    assert positions == sorted(positions)  # in the order of the class list
    assert "playing cello" not in message and "walking dog" not in message
    assert 'oov="skip"' in message  # the error says how to fall back


def test_oov_error_leaves_no_cache_entry(
    action_word_vector_files: dict[str, Path], tmp_path: Path
) -> None:
    cache = ClassEmbeddingCache(tmp_path / "cache")
    encoder = create_text_encoder("word2vec", path=action_word_vector_files["kv"])
    with pytest.raises(ValueError, match="'sitar'"):
        cache.encode(encoder, ["playing cello", "playing sitar"])
    assert not list(tmp_path.rglob("*.pt"))


def test_oov_skip_averages_the_known_words_and_warns(
    action_word_vector_files: dict[str, Path],
    action_word_vectors: dict[str, np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    encoder = create_text_encoder("word2vec", path=action_word_vector_files["kv"], oov="skip")
    with caplog.at_level(logging.WARNING, logger="aurl.text_encoders.word2vec"):
        embeddings = encoder.encode(["playing sitar", "walking big dog"])
    expected = np.stack(
        [
            mean_of_unit_vectors(action_word_vectors, ["playing"]),
            mean_of_unit_vectors(action_word_vectors, ["walking", "dog"]),
        ]
    )  # (2, D)
    np.testing.assert_allclose(embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert "'playing sitar'" in caplog.text and "'sitar'" in caplog.text
    assert "'walking big dog'" in caplog.text and "'big'" in caplog.text


@pytest.mark.parametrize("oov", ["error", "skip"])
def test_class_without_known_words_is_an_error_in_both_modes(
    action_word_vector_files: dict[str, Path], oov: str
) -> None:
    encoder = create_text_encoder("word2vec", path=action_word_vector_files["kv"], oov=oov)
    with pytest.raises(ValueError, match=r"'sitar solo'.*'sitar', 'solo'"):
        encoder.encode(["cello", "sitar solo"])


@pytest.mark.parametrize("oov", ["error", "skip"])
def test_class_of_stop_words_only_is_named(
    action_word_vector_files: dict[str, Path], oov: str
) -> None:
    encoder = create_text_encoder("word2vec", path=action_word_vector_files["kv"], oov=oov)
    with pytest.raises(ValueError, match=r"'in the' has no content words"):
        encoder.encode(["cello", "in the"])


# --- phrases, loading, cache keys, registry, bad files ---------------------------------------
def test_phrases_use_joined_vocabulary_entries_first(
    action_word_vector_files: dict[str, Path], action_word_vectors: dict[str, np.ndarray]
) -> None:
    path = action_word_vector_files["kv"]
    plain = Word2VecEncoder(path).encode(["table tennis shot"])
    joined = Word2VecEncoder(path, phrases=True).encode(["table tennis shot"])
    np.testing.assert_allclose(
        plain[0].numpy(),
        mean_of_unit_vectors(action_word_vectors, ["table", "tennis", "shot"]),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        joined[0].numpy(),
        mean_of_unit_vectors(action_word_vectors, ["table_tennis", "shot"]),
        rtol=1e-5,
    )


class CountingLoads(Word2VecEncoder):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.loads = 0

    def _load(self) -> KeyedVectors:
        self.loads += 1
        return super()._load()


def test_vectors_are_loaded_lazily_and_once(
    action_word_vector_files: dict[str, Path], action_word_vectors: dict[str, np.ndarray]
) -> None:
    encoder = CountingLoads(action_word_vector_files["txt"])
    assert encoder.loads == 0
    assert "word2vec" in encoder.cache_key  # the key needs no loaded vectors
    assert encoder.loads == 0
    encoder.encode(["cello"])
    encoder.encode(["dog", "violin"])
    assert encoder.dim == len(action_word_vectors["cello"])
    assert encoder.loads == 1


def test_without_gensim_encoding_names_the_word2vec_extra(
    action_word_vector_files: dict[str, Path], uninstall: Callable[[str], None]
) -> None:
    encoder = Word2VecEncoder(action_word_vector_files["glove"])
    assert "word2vec" in encoder.cache_key  # a cache hit needs no gensim
    uninstall("gensim")
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'aurl[word2vec]'")):
        encoder.encode(["cello"])


def test_cache_key_is_stable_and_tracks_file_and_options(
    action_word_vector_files: dict[str, Path],
) -> None:
    path = action_word_vector_files["txt"]
    key = Word2VecEncoder(path).cache_key
    assert Word2VecEncoder(path).cache_key == key
    assert Word2VecEncoder(path, oov="skip").cache_key != key
    assert Word2VecEncoder(path, normalize_mean=True).cache_key != key
    assert Word2VecEncoder(path, phrases=True).cache_key != key
    # Same file name and size, other numbers: another model.
    other = action_word_vector_files["txt-swapped"]
    assert (other.name, other.stat().st_size) == (path.name, path.stat().st_size)
    assert Word2VecEncoder(other).cache_key != key


def test_registry_builds_the_encoder(action_word_vector_files: dict[str, Path]) -> None:
    path = action_word_vector_files["txt"]
    assert {"word2vec", "sentence-transformers", "clip"} <= set(list_text_encoders())
    encoder = create_text_encoder("word2vec", path=path, oov="skip")
    assert isinstance(encoder, Word2VecEncoder)
    assert isinstance(encoder, TextEncoder)
    assert encoder.oov == "skip"
    with pytest.raises(KeyError, match="word2vek"):
        create_text_encoder("word2vek", path=path)


def test_bad_files_and_options_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.bin"):
        Word2VecEncoder(tmp_path / "missing.bin")
    wrong_suffix = tmp_path / "vectors.npy"
    wrong_suffix.write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"vectors\.npy"):
        Word2VecEncoder(wrong_suffix)
    compressed_native = tmp_path / "vectors.kv.gz"
    compressed_native.write_bytes(b"\0")
    with pytest.raises(ValueError, match=r"vectors\.kv\.gz"):
        Word2VecEncoder(compressed_native)
    malformed = tmp_path / "malformed.txt"
    malformed.write_text("2 3\ncello 1.0 oops 2.0\n")
    with pytest.raises(ValueError, match=r"malformed\.txt"):
        Word2VecEncoder(malformed).encode(["cello"])
    with pytest.raises(ValueError, match="'ignore'"):
        Word2VecEncoder(malformed, oov="ignore")
