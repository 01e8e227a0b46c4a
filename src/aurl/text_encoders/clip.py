"""The text tower of a CLIP model from a local folder, through ``transformers``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from aurl.paths import expand_path
from aurl.text_encoders.base import TextEncoder, fingerprint_path, register_text_encoder

if TYPE_CHECKING:
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

log = logging.getLogger(__name__)


@register_text_encoder("clip")
class ClipTextEncoder(TextEncoder):
    """Embeds texts with the text tower and projection of a CLIP model, L2-normalised.

    The folder is what ``save_pretrained`` writes for a ``CLIPModel`` or a
    ``CLIPTextModelWithProjection`` (e.g. a local copy of openai/clip-vit-base-patch32) plus its
    tokenizer files (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``). Only the text tower
    is loaded, in float32, from local files, on first use.

    Args:
        model_path: the local model folder.
        prompt_template: optional template with one ``{}`` replaced by each text, e.g.
            ``"a video of a person {}."``; ``None`` embeds the texts as given.
        device: where the model runs; embeddings are always returned on the CPU.
        batch_size: texts per forward pass.

    Raises:
        FileNotFoundError: if ``model_path`` is not a folder.
        ValueError: if ``prompt_template`` does not contain exactly one ``{}``, or
            ``batch_size`` is not positive.
    """

    def __init__(
        self,
        model_path: str | Path,
        prompt_template: str | None = None,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        self.model_path = expand_path(model_path, "clip model_path")
        if not self.model_path.is_dir():
            raise FileNotFoundError(f"CLIP model folder not found: {self.model_path}")
        if prompt_template is not None and prompt_template.count("{}") != 1:
            raise ValueError(
                f"prompt_template must contain exactly one '{{}}', got {prompt_template!r}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.prompt_template = prompt_template
        self.device = device
        self.batch_size = batch_size
        self._fingerprint = fingerprint_path(self.model_path)
        self._tokenizer: CLIPTokenizer | None = None
        self._model: CLIPTextModelWithProjection | None = None

    @property
    def model(self) -> CLIPTextModelWithProjection:
        """The text tower with its projection (loaded on first access)."""
        if self._model is None:
            self._load()
        return self._model

    @property
    def tokenizer(self) -> CLIPTokenizer:
        """The model's tokenizer (loaded on first access)."""
        if self._tokenizer is None:
            self._load()
        return self._tokenizer

    @property
    def dim(self) -> int:
        return self.model.config.projection_dim

    @property
    def cache_key(self) -> str:
        return f"clip:{self.model_path.name}:{self._fingerprint}:template={self.prompt_template!r}"

    def prompts(self, texts: list[str]) -> list[str]:
        """The strings actually tokenised: ``texts`` put into the prompt template."""
        if self.prompt_template is None:
            return list(texts)
        return [self.prompt_template.replace("{}", text) for text in texts]

    def _encode(self, texts: list[str]) -> Tensor:
        prompts = self.prompts(texts)
        # Longer prompts are cut to the positions the model has; the tokenizer keeps the end
        # token, whose hidden state CLIP pools.
        max_length = self.model.config.max_position_embeddings
        chunks = []
        for start in range(0, len(prompts), self.batch_size):
            inputs = self.tokenizer(
                prompts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(self.device)
            chunks.append(self.model(**inputs).text_embeds.cpu())  # (B, D)
        return F.normalize(torch.cat(chunks), dim=1)

    def _load(self) -> None:
        # Imported here: transformers is slow to import and a cache hit never needs it.
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        log.info("loading CLIP text tower from %s", self.model_path)
        self._tokenizer = CLIPTokenizer.from_pretrained(
            str(self.model_path), local_files_only=True
        )
        model = CLIPTextModelWithProjection.from_pretrained(
            str(self.model_path), local_files_only=True, dtype=torch.float32
        )
        self._model = model.to(self.device).eval()
