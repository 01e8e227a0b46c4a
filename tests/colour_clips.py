"""In-memory colour-shape clips: a tiny zero-shot task whose answer lies in the pixels.

The colour word sets one channel's mean brightness and the shape word lights up one frame, so
a tower that learns both attributes can name unseen colour-shape pairs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

COLOURS = ["red", "green", "blue", "yellow"]
SHAPES = ["square", "circle", "triangle"]
TEXT_DIM = 8  # the size of the tiny word vectors of these words


class ColourClips(Dataset):
    """``per_class`` noisy clips of shape (3, 4, size, size) for each ``"colour shape"`` name."""

    def __init__(self, class_names: list[str], per_class: int, seed: int, size: int = 16) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.items = []
        for label, name in enumerate(class_names):
            colour, shape = name.split()
            c = COLOURS.index(colour)
            for i in range(per_class):
                video = 0.3 * torch.randn(3, 4, size, size, generator=gen)  # (C, T, H, W)
                video[c % 3] += 1.0 + c // 3  # yellow: red's channel, twice as bright
                video[:, SHAPES.index(shape)] += 1.0
                self.items.append(
                    {"video": video, "label": label, "class_name": name, "path": f"{name}{i}"}
                )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.items[index]
