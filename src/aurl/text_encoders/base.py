"""The text-encoder contract, its name-keyed registry, and a cheap model-folder fingerprint."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from aurl.registry import Registry

# Bytes read from the start, middle and end of each file by `fingerprint_path`.
_CHUNK = 1 << 16


class TextEncoder(ABC):
    """Maps class names to fixed embeddings: ``encode(list[str]) -> Tensor (N, D)``.

    Subclasses implement :meth:`_encode`, :attr:`dim` and :attr:`cache_key`; :meth:`encode`
    checks the input and returns float32 CPU tensors without autograd history, so callers can
    cache and reuse them freely.
    """

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embeds each text.

        Args:
            texts: non-empty, distinct, non-blank strings (usually cleaned class names).

        Returns:
            Float32 CPU tensor (N, dim), row i embedding ``texts[i]``.

        Raises:
            TypeError: if ``texts`` is a single string or holds a non-string.
            ValueError: if ``texts`` is empty, holds blank strings or duplicates (named).
        """
        texts = check_texts(texts)
        with torch.no_grad():
            embeddings = self._encode(texts)
        if embeddings.shape != (len(texts), self.dim):
            raise RuntimeError(
                f"{type(self).__name__} returned shape {tuple(embeddings.shape)}, "
                f"expected {(len(texts), self.dim)}"
            )
        return embeddings.detach().to(device="cpu", dtype=torch.float32)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding size D."""

    @property
    @abstractmethod
    def cache_key(self) -> str:
        """A string that is equal for two encoders iff they give the same embeddings.

        Stable across processes and machines: encoder kind, model identity (name and content
        fingerprint) and every option that changes the output.
        """

    @abstractmethod
    def _encode(self, texts: list[str]) -> Tensor:
        """Embeds already checked texts; runs under ``torch.no_grad``. Returns (N, dim)."""


TEXT_ENCODERS: Registry[TextEncoder] = Registry("text encoder")


def check_texts(texts: Sequence[str]) -> list[str]:
    """Returns ``texts`` as a list after checking it is a usable list of class names.

    Raises:
        TypeError: if ``texts`` is a single string or holds a non-string.
        ValueError: if ``texts`` is empty, holds blank strings or duplicates (named).
    """
    if isinstance(texts, str):
        raise TypeError(f"expected a list of texts, got the single string {texts!r}")
    texts = list(texts)
    if not texts:
        raise ValueError("expected at least one text to encode, got an empty list")
    not_strings = [text for text in texts if not isinstance(text, str)]
    if not_strings:
        raise TypeError(f"texts must be strings, got {not_strings!r}")
    blank = [index for index, text in enumerate(texts) if not text.strip()]
    if blank:
        raise ValueError(f"texts at positions {blank} are empty or whitespace only")
    duplicates = sorted(text for text, count in Counter(texts).items() if count > 1)
    if duplicates:
        raise ValueError(f"texts must be distinct; duplicated: {duplicates}")
    return texts


def register_text_encoder(
    name: str,
) -> Callable[[Callable[..., TextEncoder]], Callable[..., TextEncoder]]:
    """Decorator registering a text-encoder class (or factory) under ``name``."""
    return TEXT_ENCODERS.register(name)


def create_text_encoder(name: str, **kwargs: Any) -> TextEncoder:
    """Builds the text encoder registered as ``name`` (see :func:`list_text_encoders`)."""
    return TEXT_ENCODERS.create(name, **kwargs)


def list_text_encoders() -> list[str]:
    """Names accepted by :func:`create_text_encoder`, sorted."""
    return TEXT_ENCODERS.names()


def fingerprint_path(path: str | Path) -> str:
    """A sha256 hex digest identifying the content of a file or a model folder.

    Each file contributes its relative path, its size and its bytes; for files larger than
    three 64 KiB chunks only the first, middle and last chunk are read, so a multi-GB checkpoint
    is fingerprinted in milliseconds while two models that differ in config or weights (a
    fine-tune changes the last layers) still get different digests. Hidden files and folders
    (``.git``, ``.cache``) are skipped.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cannot fingerprint {path}: no such file or folder")
    if path.is_file():
        files = [path]
    else:
        files = sorted(
            file
            for file in path.rglob("*")
            if file.is_file()
            and not any(part.startswith(".") for part in file.relative_to(path).parts)
        )
    digest = hashlib.sha256()
    for file in files:
        relative = file.name if file == path else file.relative_to(path).as_posix()
        size = file.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        with file.open("rb") as handle:
            if size <= 3 * _CHUNK:
                digest.update(handle.read())
                continue
            for offset in (0, size // 2 - _CHUNK // 2, size - _CHUNK):
                handle.seek(offset)
                digest.update(handle.read(_CHUNK))
    return digest.hexdigest()
