"""aurl: zero-shot video classification with AURL on PyTorch Lightning.

The public API, by concept: towers (:class:`VisualTower`, :class:`SemanticTower`), losses
(:class:`AURLLoss`, :class:`AlignOnlyLoss`, :func:`nce`), the :class:`ClassGenerator`, text
encoders (:func:`create_text_encoder`), metrics (:mod:`aurl.metrics`, pure twins in
:mod:`aurl.functional`), the :class:`ClassSpace` a datamodule hands over, the
:class:`AURLModule` that wires them for Lightning and the callbacks experiments list
(:mod:`aurl.callbacks`), and the :class:`ZeroShotClassifier` that ranks class names for videos
with a trained model.
"""

from __future__ import annotations

from aurl.backbones import create_backbone, list_backbones
from aurl.class_generator import ClassGenerator
from aurl.class_space import ClassSpace, EvalSet
from aurl.functional import evaluate_zero_shot
from aurl.losses import AlignOnlyLoss, AURLLoss, ZeroShotLoss, nce
from aurl.metrics import Closeness, Dispersion, ZeroShotAccuracy
from aurl.module import AURLModule
from aurl.text_encoders import ClassEmbeddingCache, create_text_encoder, list_text_encoders
from aurl.towers import SemanticTower, VisualTower
from aurl.zero_shot import Prediction, Preprocessing, ZeroShotClassifier

__version__ = "0.1.0"

__all__ = [
    "AURLLoss",
    "AURLModule",
    "AlignOnlyLoss",
    "ClassEmbeddingCache",
    "ClassGenerator",
    "ClassSpace",
    "Closeness",
    "Dispersion",
    "EvalSet",
    "Prediction",
    "Preprocessing",
    "SemanticTower",
    "VisualTower",
    "ZeroShotAccuracy",
    "ZeroShotClassifier",
    "ZeroShotLoss",
    "create_backbone",
    "create_text_encoder",
    "evaluate_zero_shot",
    "list_backbones",
    "list_text_encoders",
    "nce",
]
