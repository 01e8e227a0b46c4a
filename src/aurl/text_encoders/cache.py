"""An on-disk cache of class embeddings, so a class list is encoded once per encoder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from aurl.text_encoders.base import TextEncoder, check_texts

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "AURL_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("~/.cache/aurl/class_embeddings")


class ClassEmbeddingCache:
    """Caches ``encoder.encode(class_names)`` in memory and as ``<cache_dir>/<key>.pt`` files.

    The key is the sha256 of the encoder's ``cache_key`` and the ordered class list, so a
    different encoder, model, option or class order is a different entry. Files are written
    atomically (temp file + ``os.replace``), which makes concurrent writers (DDP ranks) safe, and
    read with ``torch.load(weights_only=True)``. An unreadable or mismatching file is re-encoded
    with a warning. A cache folder that cannot be written only costs the on-disk copy.

    Args:
        cache_dir: where the files live; ``None`` uses ``$AURL_CACHE_DIR`` if set, else
            ``~/.cache/aurl/class_embeddings``.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        if cache_dir is None:
            cache_dir = os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR
        self.cache_dir = Path(cache_dir).expanduser()
        self._memory: dict[str, Tensor] = {}

    @staticmethod
    def key(encoder: TextEncoder, class_names: Sequence[str]) -> str:
        """The cache key (sha256 hex) of ``encoder`` applied to ``class_names``."""
        payload = json.dumps({"encoder": encoder.cache_key, "class_names": list(class_names)})
        return hashlib.sha256(payload.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """The file that holds the entry ``key``."""
        return self.cache_dir / f"{key}.pt"

    def encode(self, encoder: TextEncoder, class_names: Sequence[str]) -> Tensor:
        """Returns ``encoder.encode(class_names)``, from the cache when possible.

        Returns:
            Float32 CPU tensor (N, D); a fresh copy, so callers may modify it.

        Raises:
            Whatever ``encoder.encode`` raises for bad class names (see ``TextEncoder.encode``).
        """
        class_names = check_texts(class_names)
        key = self.key(encoder, class_names)
        embeddings = self._memory.get(key)
        if embeddings is None:
            embeddings = self._read(key, encoder.cache_key, class_names)
        if embeddings is None:
            log.info("encoding %d class names with %s", len(class_names), type(encoder).__name__)
            embeddings = encoder.encode(class_names).contiguous()
            self._write(key, encoder.cache_key, class_names, embeddings)
        self._memory[key] = embeddings
        return embeddings.clone()

    def _read(self, key: str, encoder_key: str, class_names: list[str]) -> Tensor | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            embeddings = entry["embeddings"]
            if (
                entry["encoder"] != encoder_key
                or entry["class_names"] != class_names
                or not isinstance(embeddings, Tensor)
                or embeddings.ndim != 2
                or embeddings.shape[0] != len(class_names)
            ):
                raise ValueError("its content does not match the key")
        # torch.load raises many types for a damaged file (pickle, zip, runtime, key errors);
        # whatever the cause, the entry is unusable and is simply rebuilt.
        except Exception as error:
            log.warning("ignoring unreadable class-embedding cache file %s (%s)", path, error)
            return None
        return embeddings.float()

    def _write(
        self, key: str, encoder_key: str, class_names: list[str], embeddings: Tensor
    ) -> None:
        entry = {"encoder": encoder_key, "class_names": class_names, "embeddings": embeddings}
        temp_name = None
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=self.cache_dir, prefix=f".{key}.", suffix=".tmp", delete=False
            ) as handle:
                temp_name = handle.name
                torch.save(entry, handle)
            os.replace(temp_name, self.path(key))
        except OSError as error:
            log.warning("cannot write class-embedding cache to %s (%s)", self.cache_dir, error)
            if temp_name is not None:
                Path(temp_name).unlink(missing_ok=True)
