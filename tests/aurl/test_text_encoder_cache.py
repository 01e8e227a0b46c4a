"""ClassEmbeddingCache with a real (tiny word2vec) encoder that counts its encode calls."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import Tensor

from aurl.text_encoders import ClassEmbeddingCache, Word2VecEncoder


class CountingEncoder(Word2VecEncoder):
    """The real word2vec encoder, counting how often it actually encodes."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    def _encode(self, texts: list[str]) -> Tensor:
        self.calls += 1
        return super()._encode(texts)


@pytest.fixture
def vectors_path(action_word_vector_files: dict[str, Path]) -> Path:
    """The model the cache tests encode with; ``"txt-swapped"`` is another of the same name."""
    return action_word_vector_files["txt"]


NAMES = ["playing cello", "playing violin", "apply eye makeup"]


def test_hit_does_not_re_encode(tmp_path: Path, vectors_path: Path) -> None:
    encoder = CountingEncoder(vectors_path)
    cache = ClassEmbeddingCache(tmp_path / "cache")
    first = cache.encode(encoder, NAMES)
    assert encoder.calls == 1
    second = cache.encode(encoder, NAMES)
    assert encoder.calls == 1
    torch.testing.assert_close(second, first)
    torch.testing.assert_close(first, Word2VecEncoder(vectors_path).encode(NAMES))
    # A fresh cache object (another process) reads the file instead of encoding.
    fresh_encoder = CountingEncoder(vectors_path)
    from_disk = ClassEmbeddingCache(tmp_path / "cache").encode(fresh_encoder, NAMES)
    assert fresh_encoder.calls == 0
    torch.testing.assert_close(from_disk, first)
    assert from_disk.dtype == torch.float32


def test_returned_tensors_are_copies(tmp_path: Path, vectors_path: Path) -> None:
    encoder = CountingEncoder(vectors_path)
    cache = ClassEmbeddingCache(tmp_path)
    first = cache.encode(encoder, NAMES)
    expected = first.clone()
    first.zero_()
    torch.testing.assert_close(cache.encode(encoder, NAMES), expected)


def test_one_atomic_file_per_entry(tmp_path: Path, vectors_path: Path) -> None:
    encoder = CountingEncoder(vectors_path)
    cache = ClassEmbeddingCache(tmp_path / "cache")
    embeddings = cache.encode(encoder, NAMES)
    files = sorted((tmp_path / "cache").iterdir())
    assert files == [cache.path(cache.key(encoder, NAMES))]
    entry = torch.load(files[0], weights_only=True)
    assert entry["class_names"] == NAMES
    assert entry["encoder"] == encoder.cache_key
    torch.testing.assert_close(entry["embeddings"], embeddings)


def test_keys_differ_for_class_lists_and_encoders(
    tmp_path: Path, vectors_path: Path, action_word_vector_files: dict[str, Path]
) -> None:
    encoder = CountingEncoder(vectors_path)
    key = ClassEmbeddingCache.key(encoder, NAMES)
    assert len(key) == 64 and int(key, 16) >= 0  # a sha256 hex digest
    assert ClassEmbeddingCache.key(CountingEncoder(vectors_path), NAMES) == key
    assert ClassEmbeddingCache.key(encoder, NAMES[:2]) != key
    assert ClassEmbeddingCache.key(encoder, list(reversed(NAMES))) != key
    assert ClassEmbeddingCache.key(CountingEncoder(vectors_path, oov="skip"), NAMES) != key
    # Another model in a file of the same name and size.
    other_model = action_word_vector_files["txt-swapped"]
    assert ClassEmbeddingCache.key(CountingEncoder(other_model), NAMES) != key

    cache = ClassEmbeddingCache(tmp_path / "cache")
    first = cache.encode(encoder, NAMES)
    cache.encode(encoder, NAMES[:2])
    assert encoder.calls == 2
    other = CountingEncoder(other_model)
    other_embeddings = cache.encode(other, NAMES)
    assert other.calls == 1
    torch.testing.assert_close(other_embeddings, Word2VecEncoder(other_model).encode(NAMES))
    assert not torch.allclose(other_embeddings, first)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_names"])
def test_corrupt_file_is_re_encoded_with_a_warning(
    tmp_path: Path, vectors_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "cache"
    expected = ClassEmbeddingCache(cache_dir).encode(CountingEncoder(vectors_path), NAMES)
    path = next(cache_dir.iterdir())
    if damage == "garbage":
        path.write_bytes(b"this is not a torch file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    else:
        torch.save({"encoder": "x", "class_names": ["x"], "embeddings": torch.zeros(1, 4)}, path)

    encoder = CountingEncoder(vectors_path)
    with caplog.at_level(logging.WARNING):
        embeddings = ClassEmbeddingCache(cache_dir).encode(encoder, NAMES)
    assert encoder.calls == 1
    torch.testing.assert_close(embeddings, expected)
    assert path.name in caplog.text
    # The rewritten file is good again.
    again = CountingEncoder(vectors_path)
    ClassEmbeddingCache(cache_dir).encode(again, NAMES)
    assert again.calls == 0


def test_unwritable_cache_dir_still_returns_embeddings(
    tmp_path: Path, vectors_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    encoder = CountingEncoder(vectors_path)
    cache = ClassEmbeddingCache(blocker)
    with caplog.at_level(logging.WARNING):
        embeddings = cache.encode(encoder, NAMES)
    assert embeddings.shape == (3, encoder.dim)
    assert "cannot write" in caplog.text
    cache.encode(encoder, NAMES)
    assert encoder.calls == 1  # the in-memory copy still serves hits


def test_default_dir_comes_from_env_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURL_CACHE_DIR", str(tmp_path / "env_cache"))
    assert ClassEmbeddingCache().cache_dir == tmp_path / "env_cache"
    monkeypatch.delenv("AURL_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".cache" / "aurl" / "class_embeddings"
    assert ClassEmbeddingCache().cache_dir == expected
    assert ClassEmbeddingCache(str(tmp_path / "given")).cache_dir == tmp_path / "given"
