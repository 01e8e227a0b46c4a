"""Fixtures shared by the model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from tests.tiny import COLOURS, SHAPES, TEXT_DIM


@pytest.fixture(scope="module")
def word_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny word2vec file: one random ``TEXT_DIM``-d vector per colour and shape word."""
    rng = np.random.default_rng(0)
    words = COLOURS + SHAPES
    kv = KeyedVectors(vector_size=TEXT_DIM)
    kv.add_vectors(words, rng.normal(size=(len(words), TEXT_DIM)).astype(np.float32))
    path = tmp_path_factory.mktemp("w2v") / "tiny.kv"
    kv.save(str(path))
    return path
