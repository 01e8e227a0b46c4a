"""VideoFolder: videos laid out as ``root/<class name>/<video>.<ext>``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from aurl.paths import expand_path
from data_modules.datasets.base import (
    _QUOTED_PATHS,
    VIDEO_EXTENSIONS,
    CatalogLayout,
    CatalogListing,
    VideoCatalog,
    _require_dir,
    _video_entries,
)

logger = logging.getLogger(__name__)


class VideoFolder(VideoCatalog):
    """Videos laid out as ``root/<class name>/<video>.<ext>``.

    Classes are the sorted sub-folder names (hidden ones skipped); videos of a class are its
    files with a video extension (case-insensitive), sorted by name. Nested folders are not
    searched. Entries that cannot be read (dangling links, unreadable files, folders with a
    video extension) are skipped with one warning per catalog naming them.

    Args:
        root: the dataset folder.
        name_style: class-name cleaning style of :func:`aurl.class_names.clean_class_name`
            (``"none"``: lower-case and collapse spaces; ``"ucf101"`` for CamelCase folders).
        extensions: video file extensions, without dots.
        name: catalog name (default: the folder's name).
    """

    def __init__(
        self,
        root: str | Path,
        name_style: str = "none",
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        name: str | None = None,
    ) -> None:
        self.root = expand_path(root, "VideoFolder.root")
        self.name_style = name_style
        self.extensions = tuple(e.lower().lstrip(".") for e in extensions)
        self.name = name or self.root.name

    def layout(self) -> CatalogLayout:
        """The videos and every class folder (an empty one is still a class)."""
        folders = [self.root / class_name for class_name in self.raw_class_names]
        return CatalogLayout(self.root, [Path(path) for path, _ in self.samples], folders, [])

    def _list(self) -> CatalogListing:
        _require_dir(self.root, "dataset root")
        entries = sorted(d for d in self.root.iterdir() if not d.name.startswith("."))
        classes = [d.name for d in entries if d.is_dir()]
        # A dangling link at the root may be a class folder that went away.
        unreadable = [f"{d} (dangling link)" for d in entries if d.is_symlink() and not d.exists()]
        if not classes:
            raise FileNotFoundError(f"{self.root}: no class folders (expected root/<class>/)")
        samples = []
        for label, class_name in enumerate(classes):
            videos, skipped = _video_entries(self.root / class_name, self.extensions)
            unreadable += skipped
            if not videos:
                logger.warning("%s: class folder %s has no videos", self.name, class_name)
            samples.extend((str(path), label) for path in videos)
        if unreadable:
            logger.warning(
                "%s: skipped %d unreadable entries (e.g. %s)",
                self.name,
                len(unreadable),
                ", ".join(unreadable[:_QUOTED_PATHS]),
            )
        return CatalogListing(classes, samples, [])
