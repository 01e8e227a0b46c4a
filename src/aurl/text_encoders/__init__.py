"""Text encoders that turn class names into fixed embeddings, picked by name.

Example::

    encoder = create_text_encoder("sentence-transformers")  # the shipped all-MiniLM-L6-v2
    embeddings = ClassEmbeddingCache().encode(encoder, ["apply eye makeup", "archery"])  # (2, 384)
"""

from __future__ import annotations

from aurl.text_encoders.base import (
    TEXT_ENCODERS,
    TextEncoder,
    check_texts,
    create_text_encoder,
    fingerprint_path,
    list_text_encoders,
    register_text_encoder,
)
from aurl.text_encoders.cache import ClassEmbeddingCache
from aurl.text_encoders.clip import ClipTextEncoder
from aurl.text_encoders.random import RandomTextEncoder
from aurl.text_encoders.sentence_transformers import SentenceTransformerEncoder
from aurl.text_encoders.word2vec import Word2VecEncoder

__all__ = [
    "TEXT_ENCODERS",
    "ClassEmbeddingCache",
    "ClipTextEncoder",
    "RandomTextEncoder",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "Word2VecEncoder",
    "check_texts",
    "create_text_encoder",
    "fingerprint_path",
    "list_text_encoders",
    "register_text_encoder",
]
