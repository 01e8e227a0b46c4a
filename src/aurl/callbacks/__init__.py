"""Lightning callbacks that experiments list in their config.

Reliability: :class:`NonFiniteGuard` (skip non-finite steps on every rank together),
:class:`RandomStateCheckpoint` (random states in checkpoints, for exact resumes),
:class:`ResumeSchedule` (the re-planned learning rate from the first resumed step),
:class:`SkippedVideoCounter` (unreadable videos per epoch), :class:`PreemptionCheckpoint` (a
consistent checkpoint and a requeue on SLURM's warning signal). For people: :class:`EmbeddingPlots`
and :class:`RunSummary`. Performance: :class:`TrainThroughput` (data-wait share and clips/s per
step).
"""

from __future__ import annotations

from aurl.callbacks.nonfinite_guard import NonFiniteGuard
from aurl.callbacks.plots import EmbeddingPlots
from aurl.callbacks.preemption import PreemptionCheckpoint
from aurl.callbacks.random_state import RandomStateCheckpoint
from aurl.callbacks.resume_schedule import ResumeSchedule
from aurl.callbacks.skipped_videos import SkippedVideoCounter
from aurl.callbacks.summary import RunSummary
from aurl.callbacks.throughput import TrainThroughput

__all__ = [
    "EmbeddingPlots",
    "NonFiniteGuard",
    "PreemptionCheckpoint",
    "RandomStateCheckpoint",
    "ResumeSchedule",
    "RunSummary",
    "SkippedVideoCounter",
    "TrainThroughput",
]
