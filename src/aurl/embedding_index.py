"""An embedding index: one L2-normalised embedding per video, classified against any class list.

Taxonomies change often (ads, search, channels) while the videos stay: embed the videos once
(``aurl embed``), then rank them against each new list of class names (``aurl classify``) with a
matrix product and no decoding. The index is one ``.npz`` file:

- ``paths`` ``(N,)`` str: the video files, in the order they were embedded;
- ``embeddings`` ``(N, D)`` float32, L2-normalised;
- ``num_clips`` ``(N,)`` int64: clips averaged into each embedding;
- ``failed_paths`` / ``failed_reasons`` ``(F,)`` str: videos that could not be read (kept, so a
  resumed ``aurl embed`` does not retry them);
- ``model`` str: the fingerprint of the model that embedded the videos; classifying needs the
  class embeddings of the same model.

Writes are atomic (a temp file in the same folder, then a rename), so an index interrupted while
saving keeps its previous content and a resumed run continues from it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from aurl.paths import write_atomically

_KEYS = ("paths", "embeddings", "num_clips", "failed_paths", "failed_reasons", "model")


@dataclass
class EmbeddingIndex:
    """Video embeddings with their paths, built incrementally and saved as one ``.npz``.

    Attributes:
        model: fingerprint of the model that made the embeddings.
        paths: the embedded videos, in order.
        embeddings: ``(N, D)`` float32, L2-normalised rows.
        num_clips: ``(N,)`` clips averaged per video.
        failed: unreadable videos and why.
    """

    model: str
    paths: list[str] = field(default_factory=list)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    num_clips: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    failed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.paths)
        if self.embeddings.shape[0] != n or self.num_clips.shape != (n,):
            raise ValueError(
                f"index: {n} paths but embeddings {self.embeddings.shape} and num_clips "
                f"{self.num_clips.shape}"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def done(self) -> set[str]:
        """Paths already embedded or known to be unreadable (what a resumed run skips)."""
        return set(self.paths) | set(self.failed)

    def add(self, paths: Sequence[str], embeddings: Tensor, num_clips: Sequence[int]) -> None:
        """Appends videos: ``embeddings`` ``(B, D)`` are L2-normalised here."""
        if len(paths) != embeddings.shape[0] or len(paths) != len(num_clips):
            raise ValueError(
                f"add: {len(paths)} paths, {embeddings.shape[0]} embeddings, "
                f"{len(num_clips)} clip counts"
            )
        rows = torch.nn.functional.normalize(embeddings.detach().float(), dim=1).cpu().numpy()
        if len(self) and rows.shape[1] != self.embeddings.shape[1]:
            raise ValueError(
                f"add: {rows.shape[1]}-d embeddings for an index of "
                f"{self.embeddings.shape[1]}-d ones"
            )
        self.embeddings = rows if not len(self) else np.concatenate([self.embeddings, rows])
        self.paths.extend(paths)
        self.num_clips = np.concatenate([self.num_clips, np.asarray(num_clips, np.int64)])

    def save(self, path: str | Path) -> Path:
        """Writes the index to ``path`` atomically."""
        return write_atomically(
            path,
            lambda handle: np.savez(
                handle,
                paths=np.asarray(self.paths, dtype=str),
                embeddings=self.embeddings.astype(np.float32),
                num_clips=self.num_clips,
                failed_paths=np.asarray(list(self.failed), dtype=str),
                failed_reasons=np.asarray(list(self.failed.values()), dtype=str),
                model=np.asarray(self.model),
            ),
        )

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingIndex:
        """Reads an index written by :meth:`save`.

        Raises:
            FileNotFoundError: if ``path`` does not exist.
            ValueError: if the file is not an index (names the file and the missing arrays).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"embedding index {path} not found")
        if not zipfile.is_zipfile(path):  # np.load would try to unpickle it
            raise ValueError(f"{path} is not a readable embedding index (not an .npz archive)")
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in _KEYS if key not in data.files]
            if missing:
                raise ValueError(f"{path} is not an aurl embedding index: no {missing}")
            arrays = {key: data[key] for key in _KEYS}
        return cls(
            model=str(arrays["model"]),
            paths=[str(p) for p in arrays["paths"]],
            embeddings=arrays["embeddings"].astype(np.float32),
            num_clips=arrays["num_clips"].astype(np.int64),
            failed=dict(
                zip(
                    (str(p) for p in arrays["failed_paths"]),
                    (str(r) for r in arrays["failed_reasons"]),
                    strict=True,
                )
            ),
        )


def rank_classes(
    video_embeddings: Tensor, class_embeddings: Tensor, top_k: int = 5, scale: float = 10.0
) -> tuple[Tensor, Tensor, Tensor]:
    """The ``top_k`` classes of every video by cosine similarity.

    Args:
        video_embeddings: ``(N, D)`` L2-normalised.
        class_embeddings: ``(C, D)`` L2-normalised.
        top_k: classes kept per video (at most C).
        scale: the model's inverse temperature; probabilities are ``softmax(scale * cos)``
            over all C classes.

    Returns:
        ``(indices (N, k), cosines (N, k), probabilities (N, k))``, best first.
    """
    if video_embeddings.shape[1] != class_embeddings.shape[1]:
        raise ValueError(
            f"videos are {video_embeddings.shape[1]}-d but classes "
            f"{class_embeddings.shape[1]}-d: were they embedded by the same model?"
        )
    k = min(top_k, class_embeddings.shape[0])
    cosines = video_embeddings.float() @ class_embeddings.float().T  # (N, C)
    probabilities = torch.softmax(scale * cosines, dim=1)  # (N, C)
    top_cos, top_idx = cosines.topk(k, dim=1)  # (N, k)
    return top_idx, top_cos, probabilities.gather(1, top_idx)
