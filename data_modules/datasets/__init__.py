"""Video catalogs: labelled lists of ``(path, label)`` samples, one dataset layout a module.

A *catalog* (``VideoFolder``, ``Kinetics700``, ``UCF101``, ``HMDB51``, ``SyntheticActions``)
only lists files: it never decodes, so building one is cheap and it can be pickled or shared
between ranks. Listing is lazy (on first access to ``samples`` or ``class_names``), so a
LightningDataModule can build catalogs in ``__init__`` and list them in ``setup``. Every catalog
exposes:

- ``name``: a short name, used as the metric prefix of its evaluation set;
- ``raw_class_names``: the labels as the dataset spells them (folder names, CSV labels);
- ``class_names``: the same classes cleaned by :func:`aurl.class_names.clean_class_name`, the
  phrases that text encoders embed; labels index both lists;
- ``samples``: ``list[(path, label)]`` in a deterministic order;
- ``missing``: files named by the annotations but absent on disk;
- ``layout()``: the files under ``root`` that listing reads (what ``aurl prepare-data`` copies).

Missing files are dropped when listing, with one warning that gives their count and the first
few paths (all of them are in ``missing``): keeping them would only turn into a warning per file
and epoch at read time, and uneven batches. Files that exist but cannot be decoded (zero bytes,
truncated, not a video) are found at read time by
:class:`data_modules.clip_dataset.VideoClipDataset`, which skips them.
A missing root or annotation file, or a malformed line, raises an error naming the file and line.
"""

from __future__ import annotations

from data_modules.datasets.annotations import AnnotationError, read_class_list
from data_modules.datasets.base import (
    CLASS_LISTS,
    VIDEO_EXTENSIONS,
    CatalogLayout,
    CatalogListing,
    VideoCatalog,
)
from data_modules.datasets.hmdb51 import HMDB51
from data_modules.datasets.kinetics import Kinetics700
from data_modules.datasets.streaming_shards import StreamingShards
from data_modules.datasets.synthetic_actions import SyntheticActions
from data_modules.datasets.ucf101 import UCF101
from data_modules.datasets.video_folder import VideoFolder

__all__ = [
    "CLASS_LISTS",
    "HMDB51",
    "UCF101",
    "VIDEO_EXTENSIONS",
    "AnnotationError",
    "CatalogLayout",
    "CatalogListing",
    "Kinetics700",
    "StreamingShards",
    "SyntheticActions",
    "VideoCatalog",
    "VideoFolder",
    "read_class_list",
]
