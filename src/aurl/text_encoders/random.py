"""Random class embeddings: the control that shows whether text semantics carry the transfer."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import Tensor

from aurl.text_encoders.base import TextEncoder, register_text_encoder


@register_text_encoder("random")
class RandomTextEncoder(TextEncoder):
    """Gives every text a fixed random unit vector that ignores its words.

    The vector is drawn from a generator seeded by ``sha256(seed, text)``, so one name always
    maps to one vector, on any machine and process, while related names are unrelated vectors.
    Zero-shot transfer with this encoder should fall to chance.

    Args:
        dim: embedding size.
        seed: changes every vector.
    """

    def __init__(self, dim: int = 384, seed: int = 0) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self._dim = dim
        self.seed = seed

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def cache_key(self) -> str:
        return f"random:dim={self._dim}:seed={self.seed}"

    def _encode(self, texts: list[str]) -> Tensor:
        rows = []
        for text in texts:
            digest = hashlib.sha256(f"{self.seed}\0{text}".encode()).digest()
            gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
            rows.append(torch.randn(self._dim, generator=gen))
        return F.normalize(torch.stack(rows), dim=1)  # (N, dim)
