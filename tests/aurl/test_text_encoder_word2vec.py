"""The word2vec encoder on tiny word-vector files written in the test, in every format."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from gensim.models import KeyedVectors

from aurl.text_encoders import (
    TextEncoder,
    Word2VecEncoder,
    create_text_encoder,
    list_text_encoders,
)

DIM = 5
WORDS = ["playing", "cello", "violin", "walking", "dog", "table", "tennis", "table_tennis", "shot"]


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    # Norms far from 1, so a missing per-word normalisation changes the mean.
    return {
        word: (rng.standard_normal(DIM) * rng.uniform(0.5, 4.0)).astype(np.float32)
        for word in WORDS
    }


def write_text(path: Path, vectors: dict[str, np.ndarray], header: bool = True) -> Path:
    # The word2vec text format, by hand: "count dim" then "word v1 ... vD" per line.
    lines = [f"{len(vectors)} {DIM}"] if header else []
    lines += [f"{word} " + " ".join(repr(float(x)) for x in vec) for word, vec in vectors.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def gzip_copy(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


def to_keyed_vectors(vectors: dict[str, np.ndarray]) -> KeyedVectors:
    keyed = KeyedVectors(vector_size=DIM)
    keyed.add_vectors(list(vectors), np.stack(list(vectors.values())))
    return keyed


@pytest.fixture(scope="module")
def vector_files(
    tmp_path_factory: pytest.TempPathFactory, vectors: dict[str, np.ndarray]
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("word_vectors")
    keyed = to_keyed_vectors(vectors)
    keyed.save_word2vec_format(str(folder / "vectors.bin"), binary=True)
    keyed.save(str(folder / "vectors.kv"))
    return {
        "txt": write_text(folder / "vectors.txt", vectors),
        "bin": folder / "vectors.bin",
        "kv": folder / "vectors.kv",
        "glove": write_text(folder / "glove.txt", vectors, header=False),
        "txt.gz": gzip_copy(write_text(folder / "plain.txt", vectors), folder / "vectors.txt.gz"),
    }


def mean_of_unit_vectors(vectors: dict[str, np.ndarray], words: list[str]) -> np.ndarray:
    unit = [vectors[word] / np.linalg.norm(vectors[word]) for word in words]
    return np.mean(unit, axis=0)


@pytest.mark.parametrize("file_format", ["txt", "bin", "kv", "glove", "txt.gz"])
def test_embedding_is_the_mean_of_unit_word_vectors(
    file_format: str, vector_files: dict[str, Path], vectors: dict[str, np.ndarray]
) -> None:
    encoder = Word2VecEncoder(vector_files[file_format])
    embeddings = encoder.encode(["playing cello", "walking with the dog", "violin"])
    expected = np.stack(
        [
            mean_of_unit_vectors(vectors, ["playing", "cello"]),
            mean_of_unit_vectors(vectors, ["walking", "dog"]),
            mean_of_unit_vectors(vectors, ["violin"]),
        ]
    )
    assert encoder.dim == DIM
    assert embeddings.dtype == torch.float32
    assert embeddings.device.type == "cpu"
    assert not embeddings.requires_grad
    np.testing.assert_allclose(embeddings.numpy(), expected, rtol=1e-5, atol=1e-6)
    # AURL keeps the mean as it is: a two-word mean of distinct unit vectors is shorter than 1.
    assert embeddings[0].norm() < 0.999


def test_normalize_mean_gives_unit_rows_in_the_same_direction(
    vector_files: dict[str, Path], vectors: dict[str, np.ndarray]
) -> None:
    embeddings = Word2VecEncoder(vector_files["txt"], normalize_mean=True).encode(
        ["playing cello", "dog"]
    )
    mean = mean_of_unit_vectors(vectors, ["playing", "cello"])
    np.testing.assert_allclose(embeddings[0].numpy(), mean / np.linalg.norm(mean), rtol=1e-5)
    np.testing.assert_allclose(embeddings.norm(dim=1).numpy(), [1.0, 1.0], rtol=1e-6)


def test_oov_error_names_the_class_and_the_word(vector_files: dict[str, Path]) -> None:
    encoder = Word2VecEncoder(vector_files["txt"])
    with pytest.raises(ValueError, match=r"'playing sitar'.*'sitar'.*'flute'.*'flute'"):
        encoder.encode(["playing cello", "playing sitar", "flute"])


def test_oov_skip_drops_unknown_words(
    vector_files: dict[str, Path], vectors: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    encoder = Word2VecEncoder(vector_files["bin"], oov="skip")
    embeddings = encoder.encode(["playing sitar", "cello"])
    np.testing.assert_allclose(
        embeddings.numpy(),
        np.stack(
            [mean_of_unit_vectors(vectors, ["playing"]), mean_of_unit_vectors(vectors, ["cello"])]
        ),
        rtol=1e-5,
    )
    assert "sitar" in caplog.text


def test_oov_skip_still_rejects_a_class_without_known_words(vector_files: dict[str, Path]) -> None:
    encoder = Word2VecEncoder(vector_files["txt"], oov="skip")
    with pytest.raises(ValueError, match=r"'sitar solo'.*'sitar'"):
        encoder.encode(["cello", "sitar solo"])


def test_class_of_stop_words_only_is_rejected(vector_files: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="'with the'"):
        Word2VecEncoder(vector_files["txt"]).encode(["cello", "with the"])


def test_phrases_use_joined_vocabulary_entries_first(
    vector_files: dict[str, Path], vectors: dict[str, np.ndarray]
) -> None:
    plain = Word2VecEncoder(vector_files["kv"]).encode(["table tennis shot"])
    joined = Word2VecEncoder(vector_files["kv"], phrases=True).encode(["table tennis shot"])
    np.testing.assert_allclose(
        plain[0].numpy(), mean_of_unit_vectors(vectors, ["table", "tennis", "shot"]), rtol=1e-5
    )
    np.testing.assert_allclose(
        joined[0].numpy(), mean_of_unit_vectors(vectors, ["table_tennis", "shot"]), rtol=1e-5
    )


class CountingLoads(Word2VecEncoder):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.loads = 0

    def _load(self) -> KeyedVectors:
        self.loads += 1
        return super()._load()


def test_vectors_are_loaded_lazily_and_once(vector_files: dict[str, Path]) -> None:
    encoder = CountingLoads(vector_files["txt"])
    assert encoder.loads == 0
    assert "word2vec" in encoder.cache_key  # the key needs no loaded vectors
    assert encoder.loads == 0
    encoder.encode(["cello"])
    encoder.encode(["dog", "violin"])
    assert encoder.dim == DIM
    assert encoder.loads == 1


def test_cache_key_is_stable_and_tracks_file_and_options(
    vector_files: dict[str, Path], vectors: dict[str, np.ndarray], tmp_path: Path
) -> None:
    path = vector_files["txt"]
    key = Word2VecEncoder(path).cache_key
    assert Word2VecEncoder(path).cache_key == key
    assert Word2VecEncoder(path, oov="skip").cache_key != key
    assert Word2VecEncoder(path, normalize_mean=True).cache_key != key
    assert Word2VecEncoder(path, phrases=True).cache_key != key
    # Same file name and size, other numbers: another model.
    changed = dict(vectors, cello=-vectors["cello"])
    other = write_text(tmp_path / "vectors.txt", changed)
    assert Word2VecEncoder(other).cache_key != key


def test_registry_builds_the_encoder(vector_files: dict[str, Path]) -> None:
    assert {"word2vec", "sentence-transformers", "clip"} <= set(list_text_encoders())
    encoder = create_text_encoder("word2vec", path=vector_files["txt"], oov="skip")
    assert isinstance(encoder, Word2VecEncoder)
    assert isinstance(encoder, TextEncoder)
    assert encoder.oov == "skip"
    with pytest.raises(KeyError, match="word2vek"):
        create_text_encoder("word2vek", path=vector_files["txt"])


def test_encode_validates_its_input(vector_files: dict[str, Path]) -> None:
    encoder = Word2VecEncoder(vector_files["txt"])
    with pytest.raises(ValueError, match="empty list"):
        encoder.encode([])
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        encoder.encode(["cello", "  "])
    with pytest.raises(ValueError, match=r"duplicated: \['cello'\]"):
        encoder.encode(["cello", "dog", "cello"])
    with pytest.raises(TypeError, match="'cello'"):
        encoder.encode("cello")


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
