"""What every text encoder promises about the class names it is given.

Input checks (empty list, blank or duplicate names, a single string or a non-string) must run
before any model or vector file is loaded, so a typo in a class list fails in milliseconds
instead of after loading a model. Each encoder's own errors (a word2vec vocabulary missing a
word, a bad model folder) are tested in its own file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aurl.text_encoders import (
    ClassEmbeddingCache,
    SentenceTransformerEncoder,
    TextEncoder,
    Word2VecEncoder,
    create_text_encoder,
)


def unloaded_encoder(kind: str, action_word_vector_files: dict[str, Path]) -> TextEncoder:
    # Building an encoder only fingerprints its file or folder (milliseconds); it loads lazily.
    if kind == "word2vec":
        return create_text_encoder("word2vec", path=action_word_vector_files["kv"])
    return create_text_encoder(kind)


def is_loaded(encoder: TextEncoder) -> bool:
    if isinstance(encoder, Word2VecEncoder):
        return encoder._vectors is not None
    assert isinstance(encoder, SentenceTransformerEncoder)
    return encoder._model is not None


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
    action_word_vector_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    encoder = unloaded_encoder(kind, action_word_vector_files)
    with pytest.raises(error, match=pattern):
        encoder.encode(texts)
    with pytest.raises(error, match=pattern):
        ClassEmbeddingCache(tmp_path / "cache").encode(encoder, texts)
    assert not is_loaded(encoder)
    assert not (tmp_path / "cache").exists()
