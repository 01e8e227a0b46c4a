"""Kinetics700: clips listed by an official Kinetics-700 annotation CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from aurl.paths import expand_path
from data_modules.datasets.annotations import AnnotationError, _require_file, read_class_list
from data_modules.datasets.base import (
    CLASS_LISTS,
    CatalogListing,
    VideoCatalog,
    _DirIndex,
    _require_dir,
)


class Kinetics700(VideoCatalog):
    """Kinetics-700 clips listed by an official annotation CSV.

    The CSV has a header with (at least) the columns ``label,youtube_id,time_start,time_end,
    split``; rows whose ``split`` is not ``split`` are ignored. Clips are at
    ``<root>/<split>/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` (or the same stem
    with another video extension: ``.mkv``, ``.webm``, ``.avi``). Classes are the
    official 700, in the order of ``class_list`` (sorted), even those without clips. Labels match
    the class list exactly, else case-insensitively (Kinetics releases differ in the case of
    "American").

    Args:
        root: folder holding ``train/`` and ``validate/``.
        annotation_file: ``train.csv`` or ``validate.csv``.
        split: ``"train"`` or ``"validate"``.
        class_list: one class per line (default: the shipped ``kinetics700_classes.txt``).
        name: catalog name.
    """

    name_style = "kinetics"
    COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")

    def __init__(
        self,
        root: str | Path,
        annotation_file: str | Path,
        split: Literal["train", "validate"] = "train",
        class_list: str | Path | None = None,
        name: str = "kinetics700",
    ) -> None:
        if split not in ("train", "validate"):
            raise ValueError(f"Kinetics700 split must be 'train' or 'validate', got {split!r}")
        self.root = expand_path(root, "Kinetics700.root")
        self.annotation_file = expand_path(annotation_file, "Kinetics700.annotation_file")
        self.split = split
        self.class_list = expand_path(
            class_list or CLASS_LISTS / "kinetics700_classes.txt", "Kinetics700.class_list"
        )
        self.name = name

    def _list(self) -> CatalogListing:
        classes = read_class_list(self.class_list)
        exact = {c: i for i, c in enumerate(classes)}
        folded = {c.casefold(): i for i, c in enumerate(classes)}
        _require_dir(self.root, "Kinetics700 root")
        _require_dir(self.root / self.split, f"Kinetics700 {self.split} folder")
        path = _require_file(self.annotation_file, "Kinetics700 annotation file")
        files = _DirIndex()
        samples, missing = [], []
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            absent = [c for c in self.COLUMNS if c not in header]
            if absent:
                raise AnnotationError(
                    path, 1, f"missing column(s) {absent}; header is {header or 'empty'}"
                )
            col = {c: header.index(c) for c in self.COLUMNS}
            other_splits: set[str] = set()
            for row in reader:
                line = reader.line_num
                if not any(field.strip() for field in row):
                    continue
                if len(row) != len(header):
                    raise AnnotationError(
                        path, line, f"expected {len(header)} fields, got {len(row)}: {row}"
                    )
                label, youtube_id, split = (
                    row[col[c]].strip() for c in ("label", "youtube_id", "split")
                )
                if split != self.split:
                    other_splits.add(split)
                    continue
                index = exact.get(label, folded.get(label.casefold()))
                if index is None:
                    raise AnnotationError(
                        path, line, f"unknown label {label!r} (not in {self.class_list})"
                    )
                if not youtube_id:
                    raise AnnotationError(path, line, "empty youtube_id")
                start = _parse_seconds(row[col["time_start"]], path, line, "time_start")
                end = _parse_seconds(row[col["time_end"]], path, line, "time_end")
                if end <= start:
                    raise AnnotationError(path, line, f"time_end {end} <= time_start {start}")
                clip = self.root / self.split / label / f"{youtube_id}_{start:06d}_{end:06d}.mp4"
                found = files.find(clip)
                if found is not None:
                    samples.append((str(found), index))
                else:
                    missing.append(str(clip))
        if not samples and not missing:
            raise AnnotationError(
                path, None, f"no rows with split {self.split!r} (found {sorted(other_splits)})"
            )
        return CatalogListing(classes, samples, missing)


def _parse_seconds(text: str, path: Path, line: int, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, line, f"{column} {text!r} is not a number") from None
    if value < 0 or not value.is_integer():
        raise AnnotationError(
            path, line, f"{column} {text!r} is not a whole number of seconds >= 0"
        )
    return int(value)
