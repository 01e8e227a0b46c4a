"""LightningDataModules that stream clips from video files for zero-shot training and testing."""

from __future__ import annotations

from data_modules.clip_dataset import VideoClipDataset, collate_skip
from data_modules.datamodule import ZeroShotDataModule
from data_modules.datasets import (
    HMDB51,
    UCF101,
    Kinetics700,
    SyntheticActions,
    VideoCatalog,
    VideoFolder,
)
from data_modules.protocol import half_class_splits, remove_overlap

__all__ = [
    "HMDB51",
    "UCF101",
    "Kinetics700",
    "SyntheticActions",
    "VideoCatalog",
    "VideoClipDataset",
    "VideoFolder",
    "ZeroShotDataModule",
    "collate_skip",
    "half_class_splits",
    "remove_overlap",
]
