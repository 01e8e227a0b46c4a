"""UCF101: videos in class folders, listed by the official ``classInd`` and split lists."""

from __future__ import annotations

from pathlib import Path

from data_modules.datasets.annotations import AnnotationError, _read_lines, _require_file
from data_modules.datasets.base import (
    CLASS_LISTS,
    VIDEO_EXTENSIONS,
    CatalogListing,
    SplitListCatalog,
    _DirIndex,
    _require_dir,
    _video_files,
)


class UCF101(SplitListCatalog):
    """UCF101 videos at ``<root>/<ClassName>/v_<ClassName>_gXX_cYY.avi`` with the official lists.

    Classes come from ``classInd.txt`` (``<index> <ClassName>``, indices 1..N in order). The
    lists name ``.avi`` files; a listed file absent under its name is found under its stem with
    another video extension (e.g. the ``.mp4`` that ``aurl prepare-data`` writes). The
    subsets read ``trainlist0N.txt`` (``<ClassName>/<file> <index>``) and/or
    ``testlist0N.txt`` (``<ClassName>/<file>``); the class is the folder part of each line
    (the files spell one class ``v_HandStandPushups_*`` in folder ``HandstandPushups``).

    Args:
        root: folder of the class folders.
        split_dir: folder with ``classInd.txt`` and the split lists; None uses the shipped
            ``classInd`` and lists the videos from the class folders (subset ``"all"`` only).
        fold: split number N (1-3 officially).
        subset: ``"all"`` (train + test lists of the fold, i.e. all 13,320 videos: the
            zero-shot protocol; the class folders when ``split_dir`` has no lists), ``"train"``
            or ``"test"``.
        name: catalog name.
    """

    name_style = "ucf101"

    def _list(self) -> CatalogListing:
        _require_dir(self.root, "UCF101 root")
        if self.split_dir is None:
            class_ind = CLASS_LISTS / "ucf101_classInd.txt"
        else:
            _require_dir(self.split_dir, "UCF101 split folder")
            class_ind = self.split_dir / "classInd.txt"
        classes = _read_class_ind(_require_file(class_ind, "UCF101 classInd"))
        index = {c: i for i, c in enumerate(classes)}
        lists = {
            kind: None
            if self.split_dir is None
            else self.split_dir / f"{kind}list{self.fold:02d}.txt"
            for kind in ("train", "test")
        }
        if self.subset == "all" and not any(p is not None and p.is_file() for p in lists.values()):
            return self._list_folders(classes)
        wanted = ("train", "test") if self.subset == "all" else (self.subset,)
        entries: dict[str, int] = {}
        for kind in wanted:
            if lists[kind] is None:
                raise ValueError(f"UCF101 subset {self.subset!r} needs split_dir with the lists")
            path = _require_file(lists[kind], f"UCF101 {kind} list")
            for rel, label in _read_ucf_list(path, index, with_label=kind == "train"):
                entries.setdefault(rel, label)
        files = _DirIndex()
        samples, missing = [], []
        for rel, label in sorted(entries.items(), key=lambda e: (e[1], e[0])):
            path = self.root / rel
            found = files.find(path)
            (
                samples.append((str(found), label))
                if found is not None
                else missing.append(str(path))
            )
        return CatalogListing(classes, samples, missing)

    def _list_folders(self, classes: list[str]) -> CatalogListing:
        samples = [
            (str(path), label)
            for label, class_name in enumerate(classes)
            for path in _video_files(self.root / class_name, VIDEO_EXTENSIONS)
        ]
        return CatalogListing(classes, samples, [])


def _read_class_ind(path: Path) -> list[str]:
    """Reads UCF101 ``classInd.txt``: ``<index> <ClassName>`` with indices 1..N in order."""
    classes: list[str] = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(
                path, line_no, f"expected '<index> <ClassName>', got {line.strip()!r}"
            )
        if int(parts[0]) != len(classes) + 1:
            raise AnnotationError(
                path, line_no, f"index {parts[0]} out of order (expected {len(classes) + 1})"
            )
        if parts[1] in classes:
            raise AnnotationError(path, line_no, f"duplicate class {parts[1]!r}")
        classes.append(parts[1])
    if not classes:
        raise AnnotationError(path, None, "empty class list")
    return classes


def _read_ucf_list(path: Path, index: dict[str, int], with_label: bool) -> list[tuple[str, int]]:
    """Reads a UCF101 train/test list into ``(relative path, label)`` pairs."""
    entries = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > (2 if with_label else 1) or "/" not in parts[0].replace("\\", "/"):
            expected = "<ClassName>/<file> <index>" if with_label else "<ClassName>/<file>"
            raise AnnotationError(path, line_no, f"expected '{expected}', got {line.strip()!r}")
        rel = parts[0].replace("\\", "/")
        class_name = rel.split("/", 1)[0]
        if class_name not in index:
            raise AnnotationError(path, line_no, f"unknown class {class_name!r} (not in classInd)")
        label = index[class_name]
        if len(parts) == 2 and parts[1] != str(label + 1):
            raise AnnotationError(
                path,
                line_no,
                f"class index {parts[1]} disagrees with classInd ({class_name} is {label + 1})",
            )
        entries.append((rel, label))
    return entries
