"""HMDB51: videos in class folders, listed by the official per-class split files."""

from __future__ import annotations

import logging
from typing import ClassVar

from data_modules.datasets.annotations import AnnotationError, _read_lines, read_class_list
from data_modules.datasets.base import (
    CLASS_LISTS,
    VIDEO_EXTENSIONS,
    CatalogListing,
    SplitListCatalog,
    _DirIndex,
    _require_dir,
    _video_files,
)

logger = logging.getLogger(__name__)


class HMDB51(SplitListCatalog):
    """HMDB51 videos at ``<root>/<class>/<video>.avi`` with the official split files.

    Split files are ``<class>_test_split<N>.txt`` with lines ``<video> <id>``: id 1 is train,
    2 is test, 0 unused in that split. Classes are those with a split file for fold N, sorted
    (all 51 for the official files); each must be an HMDB51 class. A listed ``.avi`` absent on
    disk is found under its stem with another video extension (e.g. the ``.mp4`` that ``aurl
    prepare-data`` writes).

    Args:
        root: folder of the class folders.
        split_dir: folder of the split files; None lists every video in the class folders of
            the 51 official classes (subset ``"all"`` only).
        fold: split number N (1-3 officially).
        subset: ``"all"`` (every listed video, ids 0, 1 and 2: all 6,766 videos, the zero-shot
            protocol), ``"train"`` (id 1) or ``"test"`` (id 2).
        name: catalog name.
    """

    name_style = "hmdb51"
    _SUBSET_IDS: ClassVar[dict[str, set[str]]] = {
        "all": {"0", "1", "2"},
        "train": {"1"},
        "test": {"2"},
    }

    def _list(self) -> CatalogListing:
        _require_dir(self.root, "HMDB51 root")
        official = read_class_list(CLASS_LISTS / "hmdb51_classes.txt")
        if self.split_dir is None:
            if self.subset != "all":
                raise ValueError(f"HMDB51 subset {self.subset!r} needs split_dir")
            samples = [
                (str(path), label)
                for label, class_name in enumerate(official)
                for path in _video_files(self.root / class_name, VIDEO_EXTENSIONS)
            ]
            return CatalogListing(official, samples, [])
        _require_dir(self.split_dir, "HMDB51 split folder")
        suffix = f"_test_split{self.fold}.txt"
        split_files = sorted(p for p in self.split_dir.iterdir() if p.name.endswith(suffix))
        if not split_files:
            raise FileNotFoundError(f"{self.split_dir}: no HMDB51 split files *{suffix}")
        classes = [p.name.removesuffix(suffix) for p in split_files]
        for path, class_name in zip(split_files, classes, strict=True):
            if class_name not in official:
                raise AnnotationError(path, None, f"{class_name!r} is not an HMDB51 class")
        if len(classes) != len(official):
            logger.warning(
                "%s: %d split files for fold %d in %s (HMDB51 has %d classes)",
                self.name,
                len(classes),
                self.fold,
                self.split_dir,
                len(official),
            )
        wanted = self._SUBSET_IDS[self.subset]
        files = _DirIndex()
        samples, missing = [], []
        for label, (path, class_name) in enumerate(zip(split_files, classes, strict=True)):
            for line_no, line in enumerate(_read_lines(path), start=1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise AnnotationError(
                        path, line_no, f"expected '<video> <0|1|2>', got {line.strip()!r}"
                    )
                if parts[1] not in wanted:
                    continue
                video = self.root / class_name / parts[0]
                found = files.find(video)
                (
                    samples.append((str(found), label))
                    if found is not None
                    else missing.append(str(video))
                )
        return CatalogListing(classes, samples, missing)
