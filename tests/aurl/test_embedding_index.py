"""The embedding index: saving, loading, resuming and ranking classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aurl.embedding_index import EmbeddingIndex, rank_classes


def _index() -> EmbeddingIndex:
    index = EmbeddingIndex(model="abc123")
    index.add(["a.mp4", "b.mp4"], torch.tensor([[3.0, 4.0], [0.0, -2.0]]), [1, 5])
    index.failed["c.mp4"] = "not a video"
    return index


def test_rows_are_normalised_and_the_index_round_trips(tmp_path: Path) -> None:
    index = _index()
    np.testing.assert_allclose(index.embeddings, [[0.6, 0.8], [0.0, -1.0]], rtol=1e-6)
    loaded = EmbeddingIndex.load(index.save(tmp_path / "index.npz"))
    assert loaded.model == "abc123" and loaded.paths == ["a.mp4", "b.mp4"]
    assert np.array_equal(loaded.embeddings, index.embeddings)
    assert loaded.num_clips.tolist() == [1, 5] and loaded.failed == {"c.mp4": "not a video"}
    assert loaded.done() == {"a.mp4", "b.mp4", "c.mp4"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    loaded = EmbeddingIndex.load(EmbeddingIndex(model="m").save(tmp_path / "empty.npz"))
    assert len(loaded) == 0 and loaded.done() == set()


def test_a_failed_save_keeps_the_previous_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _index().save(tmp_path / "index.npz")
    before = path.read_bytes()
    grown = _index()
    grown.add(["d.mp4"], torch.ones(1, 2), [1])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space left"):
        grown.save(path)
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


def test_bad_input_is_named(tmp_path: Path) -> None:
    index = _index()
    with pytest.raises(ValueError, match="3-d embeddings for an index of 2-d ones"):
        index.add(["d.mp4"], torch.ones(1, 3), [1])
    with pytest.raises(ValueError, match="2 paths, 1 embeddings"):
        index.add(["d.mp4", "e.mp4"], torch.ones(1, 2), [1, 1])
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz"):
        EmbeddingIndex.load(tmp_path / "nowhere.npz")
    other = tmp_path / "other.npz"
    np.savez(other, paths=np.asarray(["a"]))
    with pytest.raises(ValueError, match=r"other.npz is not an aurl embedding index: no \['embed"):
        EmbeddingIndex.load(other)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz is not a readable embedding index"):
        EmbeddingIndex.load(junk)


def test_rank_classes_matches_a_direct_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    videos = torch.nn.functional.normalize(torch.randn(20, 6, generator=gen), dim=1)
    classes = torch.nn.functional.normalize(torch.randn(7, 6, generator=gen), dim=1)
    idx, cos, prob = rank_classes(videos, classes, top_k=3, scale=10.0)
    sims = (videos @ classes.T).numpy()  # (20, 7)
    expected = np.argsort(-sims, axis=1)[:, :3]
    assert np.array_equal(idx.numpy(), expected)
    np.testing.assert_allclose(cos.numpy(), np.take_along_axis(sims, expected, 1), rtol=1e-6)
    full = np.exp(10 * sims) / np.exp(10 * sims).sum(1, keepdims=True)
    np.testing.assert_allclose(prob.numpy(), np.take_along_axis(full, expected, 1), rtol=1e-5)
    assert rank_classes(videos, classes, top_k=50)[0].shape == (20, 7)
    with pytest.raises(ValueError, match="videos are 6-d but classes 5-d"):
        rank_classes(videos, classes[:, :5])
