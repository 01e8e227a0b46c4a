"""aurl: zero-shot video classification with AURL on PyTorch Lightning.

The public API, by concept: towers (:class:`VisualTower`, :class:`SemanticTower`), losses
(:class:`AURLLoss`, :class:`AlignOnlyLoss`, :func:`nce`), the :class:`ClassGenerator`, text
encoders (:func:`create_text_encoder`), metrics (:mod:`aurl.metrics`, pure twins in
:mod:`aurl.functional`) and the :class:`AURLModule` that wires them for Lightning.
"""

from __future__ import annotations

from aurl.backbones import create_backbone, list_backbones
from aurl.class_generator import ClassGenerator
from aurl.losses import AlignOnlyLoss, AURLLoss, nce
from aurl.metrics import Closeness, Dispersion, EmbeddingCollector, ZeroShotAccuracy
from aurl.module import AURLModule, evaluate_zero_shot
from aurl.text_encoders import ClassEmbeddingCache, create_text_encoder, list_text_encoders
from aurl.towers import SemanticTower, VisualTower

__version__ = "0.1.0"

__all__ = [
    "AURLLoss",
    "AURLModule",
    "AlignOnlyLoss",
    "ClassEmbeddingCache",
    "ClassGenerator",
    "Closeness",
    "Dispersion",
    "EmbeddingCollector",
    "SemanticTower",
    "VisualTower",
    "ZeroShotAccuracy",
    "create_backbone",
    "create_text_encoder",
    "evaluate_zero_shot",
    "list_backbones",
    "list_text_encoders",
    "nce",
]
