"""The catalog contract: :class:`VideoCatalog` and what every catalog shares.

A catalog only lists ``(path, label)`` samples; see :mod:`data_modules.datasets` for the contract.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from aurl.class_names import clean_class_names
from aurl.paths import expand_path

logger = logging.getLogger(__name__)

# The shipped class lists (data_modules/class_lists), package data of data_modules.
CLASS_LISTS = Path(__file__).resolve().parent.parent / "class_lists"
VIDEO_EXTENSIONS = ("mp4", "avi", "mkv", "webm")
# How many paths a summary warning quotes (every missing one is in `catalog.missing`).
_QUOTED_PATHS = 5
# Words whose meaning a left-right mirror changes (see VideoCatalog.mirror_class_name).
_HANDED_WORDS = frozenset(
    {"left", "right", "leftward", "rightward", "clockwise", "anticlockwise", "counterclockwise"}
)


@dataclass(frozen=True)
class CatalogLayout:
    """The files under a catalog's root that listing it reads.

    A copy of ``videos`` (transcoded, maybe renamed to another video extension: catalogs find a
    listed file by its stem), ``folders`` and ``files`` at the same relative paths under another
    folder lists the same samples when the catalog's ``root`` names that folder; ``aurl
    prepare-data`` relies on it.

    Attributes:
        root: the folder that the catalog's ``root`` argument names.
        videos: every video under ``root`` that listing may read (the samples, or for a
            generated dataset every video its manifest names).
        folders: folders under ``root`` that listing reads even when empty (class folders).
        files: other files under ``root`` that listing reads (a generated dataset's manifest).
    """

    root: Path
    videos: list[Path]
    folders: list[Path]
    files: list[Path]


@dataclass(frozen=True)
class CatalogListing:
    """What a catalog's ``_list`` returns: raw class names, samples and missing files."""

    raw_class_names: list[str]
    samples: list[tuple[str, int]]
    missing: list[str]


class VideoCatalog(ABC):
    """A labelled list of video files; see the module docstring.

    Subclasses set ``name`` and ``name_style`` (how to clean their class names) and implement
    :meth:`_list`; they may override :meth:`prepare` for one-off work such as generation.
    """

    name: str
    name_style: str

    def prepare(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Makes the files available (nothing for datasets already on disk)."""

    def class_attributes(self, class_names: Sequence[str]) -> dict[str, list[str]] | None:
        """Each named attribute's value for each class, when classes are compositions of
        attributes (e.g. colour, shape, motion); None (the default) when they are not."""
        return None

    def mirror_class_name(self, class_name: str) -> str | None:
        """The class of a left-right mirrored video of ``class_name`` (a cleaned name).

        The default: a class is its own mirror unless its name has a handed word ("left",
        "right", "clockwise", ...), which mirroring would make false; then None (do not
        flip it). Catalogs that know their classes' mirrors override this.
        """
        words = set(class_name.lower().replace("-", " ").split())
        return None if words & _HANDED_WORDS else class_name

    def layout(self) -> CatalogLayout:
        """The files under the catalog's ``root`` that listing reads (see :class:`CatalogLayout`).

        The default: the sample videos under ``self.root``; catalogs that also read folders or
        other files override it.

        Raises:
            TypeError: the catalog has no ``root`` folder.
        """
        root = getattr(self, "root", None)
        if root is None:
            raise TypeError(f"{self.name}: {type(self).__name__} has no root folder of videos")
        return CatalogLayout(Path(root), [Path(path) for path, _ in self.samples], [], [])

    @abstractmethod
    def _list(self) -> CatalogListing:
        """Lists the classes and samples; called once, on first access."""

    @cached_property
    def _listing(self) -> tuple[CatalogListing, list[str]]:
        listing = self._list()
        cleaned = clean_class_names(listing.raw_class_names, self.name_style)
        if listing.missing:
            logger.warning(
                "%s: %d of %d listed videos are missing on disk and were dropped (e.g. %s)",
                self.name,
                len(listing.missing),
                len(listing.missing) + len(listing.samples),
                ", ".join(listing.missing[:_QUOTED_PATHS]),
            )
        if not listing.samples:
            raise FileNotFoundError(
                f"{self.name}: no videos found ({len(listing.missing)} listed, all missing)"
            )
        logger.info("%s: %d videos of %d classes", self.name, len(listing.samples), len(cleaned))
        return listing, cleaned

    @property
    def raw_class_names(self) -> list[str]:
        """Class labels as the dataset spells them; labels index this list."""
        return self._listing[0].raw_class_names

    @property
    def class_names(self) -> list[str]:
        """Cleaned class names (text-encoder input), aligned with ``raw_class_names``."""
        return self._listing[1]

    @property
    def samples(self) -> list[tuple[str, int]]:
        """``(path, label)`` of every video found on disk."""
        return self._listing[0].samples

    @property
    def missing(self) -> list[str]:
        """Paths named by the annotations but absent on disk (dropped from ``samples``)."""
        return self._listing[0].missing

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a folder")
    return path


def _video_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Sorted non-hidden files of ``folder`` with one of ``extensions`` (none if no folder)."""
    return _video_entries(folder, extensions)[0]


def _video_entries(folder: Path, extensions: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The non-hidden entries of ``folder`` with one of ``extensions``, sorted.

    Returns:
        ``(readable files, unreadable entries)``; each unreadable entry is described as
        ``"<path> (<why>)"``: a dangling link, not a file, or not readable. Both are empty if
        ``folder`` is not a folder.
    """
    if not folder.is_dir():
        return [], []
    files, unreadable = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower().lstrip(".") not in extensions:
            continue
        why = _unreadable_reason(path)
        if why is None:
            files.append(path)
        else:
            unreadable.append(f"{path} ({why})")
    return files, unreadable


def _unreadable_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None when it can."""
    if path.is_symlink() and not path.exists():
        return "dangling link"
    if not path.is_file():
        return "not a file"
    if not os.access(path, os.R_OK):
        return "not readable"
    return None


class _DirIndex:
    """Finds listed files with one directory listing per folder (fast on NFS).

    A listed video that is absent under its own name is found under the same stem with another
    video extension (:data:`VIDEO_EXTENSIONS`, in that order): ``aurl prepare-data`` writes an
    ``.avi`` or ``.webm`` video as ``.mp4``, and split lists keep naming the ``.avi``.
    """

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}

    def _listing(self, folder: Path) -> frozenset[str]:
        names = self._names.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            self._names[folder] = names
        return names

    def find(self, path: Path) -> Path | None:
        """``path`` if it exists, else its stem with another video extension, else None."""
        names = self._listing(path.parent)
        if path.name in names:
            return path
        for extension in VIDEO_EXTENSIONS:
            candidate = f"{path.stem}.{extension}"
            if candidate in names:
                return path.with_name(candidate)
        return None


class SplitListCatalog(VideoCatalog):
    """A catalog whose official split lists choose the videos of a fold (UCF101, HMDB51).

    Args:
        root: folder of the class folders.
        split_dir: folder of the official split files; None lists every video in the class
            folders (subset ``"all"`` only).
        fold: split number N (1-3 officially).
        subset: ``"all"``, ``"train"`` or ``"test"`` (see each dataset).
        name: catalog name; None: the dataset's (``name_style``, e.g. ``"ucf101"``).
    """

    def __init__(
        self,
        root: str | Path,
        split_dir: str | Path | None = None,
        fold: int = 1,
        subset: Literal["all", "train", "test"] = "all",
        name: str | None = None,
    ) -> None:
        dataset = type(self).__name__
        if subset not in ("all", "train", "test"):
            raise ValueError(f"{dataset} subset must be 'all', 'train' or 'test', got {subset!r}")
        if fold < 1:
            raise ValueError(f"{dataset} fold must be >= 1, got {fold}")
        self.root = expand_path(root, f"{dataset}.root")
        self.split_dir = None if split_dir is None else expand_path(split_dir, "split_dir")
        self.fold = fold
        self.subset = subset
        self.name = name or self.name_style
