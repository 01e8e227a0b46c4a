"""Video datasets: catalogs that list ``(path, label)`` samples, and the Dataset that reads clips.

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
- ``missing``: files named by the annotations but absent on disk.

Missing files are dropped when listing, with one warning that gives their count and the first
few paths (all of them are in ``missing``): keeping them would only turn into a warning per file
and epoch at read time, and uneven batches. Files that exist but cannot be decoded (zero bytes,
truncated, not a video) are found at read time by :class:`VideoClipDataset`, which skips them.
A missing root or annotation file, or a malformed line, raises an error naming the file and line.
"""

from __future__ import annotations

import csv
import logging
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, default_collate

from aurl.class_names import clean_class_names
from aurl.paths import expand_path
from data_modules.synthetic import (
    DEFAULT_COLOURS,
    DEFAULT_MOTIONS,
    DEFAULT_NUM_FRAMES,
    DEFAULT_SHAPES,
    DEFAULT_VIDEOS_PER_CLASS,
    MIRRORED_MOTIONS,
    SyntheticManifest,
    generate_synthetic_actions,
    parse_class_name,
)
from data_modules.video_reader import VideoDecodeError, read_sampled_clips

logger = logging.getLogger(__name__)

CLASS_LISTS = Path(__file__).resolve().parent / "class_lists"
VIDEO_EXTENSIONS = ("mp4", "avi", "mkv", "webm")
# How many missing paths the summary warning quotes; the full list is `catalog.missing`.
_QUOTED_MISSING = 5
# Words whose meaning a left-right mirror changes (see VideoCatalog.mirror_class_name).
_HANDED_WORDS = frozenset(
    {"left", "right", "leftward", "rightward", "clockwise", "anticlockwise", "counterclockwise"}
)
# Stands in for the path of a skipped item when the batch did not come through __getitems__.
UNKNOWN_PATH = "<unknown>"


class AnnotationError(ValueError):
    """A malformed annotation, split or class-list file.

    Attributes:
        path: the file.
        line: 1-based line number, or None when the problem is the file as a whole.
    """

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class CatalogListing:
    """What a catalog's ``_list`` returns: raw class names, samples and missing files."""

    raw_class_names: list[str]
    samples: list[tuple[str, int]]
    missing: list[str]


class VideoCatalog(ABC):
    """A labelled list of video files; see the module docstring.

    Subclasses set ``name`` and ``dataset`` (the class-name cleaning mode) and implement
    :meth:`_list`; they may override :meth:`prepare` for one-off work such as generation.
    """

    name: str
    dataset: str

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

    @abstractmethod
    def _list(self) -> CatalogListing:
        """Lists the classes and samples; called once, on first access."""

    @cached_property
    def _listing(self) -> tuple[CatalogListing, list[str]]:
        listing = self._list()
        cleaned = clean_class_names(listing.raw_class_names, self.dataset)
        if listing.missing:
            logger.warning(
                "%s: %d of %d listed videos are missing on disk and were dropped (e.g. %s)",
                self.name,
                len(listing.missing),
                len(listing.missing) + len(listing.samples),
                ", ".join(listing.missing[:_QUOTED_MISSING]),
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


class VideoFolder(VideoCatalog):
    """Videos laid out as ``root/<class name>/<video>.<ext>``.

    Classes are the sorted sub-folder names (hidden ones skipped); videos of a class are its
    files with a video extension (case-insensitive), sorted by name. Nested folders are not
    searched.

    Args:
        root: the dataset folder.
        dataset: class-name cleaning mode of :func:`aurl.class_names.clean_class_name`
            (``"none"``: lower-case and collapse spaces; ``"ucf101"`` for CamelCase folders).
        extensions: video file extensions, without dots.
        name: catalog name (default: the folder's name).
    """

    def __init__(
        self,
        root: str | Path,
        dataset: str = "none",
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        name: str | None = None,
    ) -> None:
        self.root = expand_path(root, "VideoFolder.root")
        self.dataset = dataset
        self.extensions = tuple(e.lower().lstrip(".") for e in extensions)
        self.name = name or self.root.name

    def _list(self) -> CatalogListing:
        _require_dir(self.root, "dataset root")
        classes = sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        if not classes:
            raise FileNotFoundError(f"{self.root}: no class folders (expected root/<class>/)")
        samples = []
        for label, class_name in enumerate(classes):
            videos = _video_files(self.root / class_name, self.extensions)
            if not videos:
                logger.warning("%s: class folder %s has no videos", self.name, class_name)
            samples.extend((str(path), label) for path in videos)
        return CatalogListing(classes, samples, [])


class Kinetics700(VideoCatalog):
    """Kinetics-700 clips listed by an official annotation CSV.

    The CSV has a header with (at least) the columns ``label,youtube_id,time_start,time_end,
    split``; rows whose ``split`` is not ``split`` are ignored. Clips are at
    ``<root>/<split>/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``. Classes are the
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

    dataset = "kinetics"
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
                if files.exists(clip):
                    samples.append((str(clip), index))
                else:
                    missing.append(str(clip))
        if not samples and not missing:
            raise AnnotationError(
                path, None, f"no rows with split {self.split!r} (found {sorted(other_splits)})"
            )
        return CatalogListing(classes, samples, missing)


class UCF101(VideoCatalog):
    """UCF101 videos at ``<root>/<ClassName>/v_<ClassName>_gXX_cYY.avi`` with the official lists.

    Classes come from ``classInd.txt`` (``<index> <ClassName>``, indices 1..N in order). The
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

    dataset = "ucf101"

    def __init__(
        self,
        root: str | Path,
        split_dir: str | Path | None = None,
        fold: int = 1,
        subset: Literal["all", "train", "test"] = "all",
        name: str = "ucf101",
    ) -> None:
        if subset not in ("all", "train", "test"):
            raise ValueError(f"UCF101 subset must be 'all', 'train' or 'test', got {subset!r}")
        if fold < 1:
            raise ValueError(f"UCF101 fold must be >= 1, got {fold}")
        self.root = expand_path(root, "UCF101.root")
        self.split_dir = None if split_dir is None else expand_path(split_dir, "split_dir")
        self.fold = fold
        self.subset = subset
        self.name = name

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
            (
                samples.append((str(path), label))
                if files.exists(path)
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


class HMDB51(VideoCatalog):
    """HMDB51 videos at ``<root>/<class>/<video>.avi`` with the official split files.

    Split files are ``<class>_test_split<N>.txt`` with lines ``<video> <id>``: id 1 is train,
    2 is test, 0 unused in that split. Classes are those with a split file for fold N, sorted
    (all 51 for the official files); each must be an HMDB51 class.

    Args:
        root: folder of the class folders.
        split_dir: folder of the split files; None lists every video in the class folders of
            the 51 official classes (subset ``"all"`` only).
        fold: split number N (1-3 officially).
        subset: ``"all"`` (every listed video, ids 0, 1 and 2: all 6,766 videos, the zero-shot
            protocol), ``"train"`` (id 1) or ``"test"`` (id 2).
        name: catalog name.
    """

    dataset = "hmdb51"
    _SUBSET_IDS: ClassVar[dict[str, set[str]]] = {
        "all": {"0", "1", "2"},
        "train": {"1"},
        "test": {"2"},
    }

    def __init__(
        self,
        root: str | Path,
        split_dir: str | Path | None = None,
        fold: int = 1,
        subset: Literal["all", "train", "test"] = "all",
        name: str = "hmdb51",
    ) -> None:
        if subset not in self._SUBSET_IDS:
            raise ValueError(f"HMDB51 subset must be 'all', 'train' or 'test', got {subset!r}")
        if fold < 1:
            raise ValueError(f"HMDB51 fold must be >= 1, got {fold}")
        self.root = expand_path(root, "HMDB51.root")
        self.split_dir = None if split_dir is None else expand_path(split_dir, "split_dir")
        self.fold = fold
        self.subset = subset
        self.name = name

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
                (
                    samples.append((str(video), label))
                    if files.exists(video)
                    else missing.append(str(video))
                )
        return CatalogListing(classes, samples, missing)


class SyntheticActions(VideoCatalog):
    """The embedded benchmark (``data_modules.synthetic``), generated once and cached.

    Generation happens in :meth:`prepare` (a LightningDataModule calls it from ``prepare_data``,
    on one process) or on first listing; a cached folder is only checked.

    Args:
        root: cache folder (None: ``data_modules.synthetic.default_cache_dir()``, i.e.
            ``$AURL_CACHE_DIR/synthetic`` or ``~/.cache/aurl/synthetic``).
        part: ``"seen"`` (training classes), ``"unseen"`` (held-out classes) or ``"all"``.
        colours: colour vocabulary.
        shapes: shape vocabulary.
        motions: motion vocabulary.
        videos_per_class: videos per class.
        num_frames: frames per video.
        size: frame side in pixels.
        fps: frame rate of the files.
        crf: H.264 quality.
        seed: rendering seed.
        num_unseen: number of unseen classes.
        split_seed: seed of the seen/unseen split.
        num_workers: generation processes.
        name: catalog name (default ``synthetic_<part>``).
    """

    dataset = "synthetic"

    def __init__(
        self,
        root: str | Path | None = None,
        part: Literal["seen", "unseen", "all"] = "seen",
        colours: Sequence[str] = DEFAULT_COLOURS,
        shapes: Sequence[str] = DEFAULT_SHAPES,
        motions: Sequence[str] = DEFAULT_MOTIONS,
        videos_per_class: int = DEFAULT_VIDEOS_PER_CLASS,
        num_frames: int = DEFAULT_NUM_FRAMES,
        size: int = 32,
        fps: int = 8,
        crf: int = 20,
        seed: int = 0,
        num_unseen: int = 30,
        split_seed: int = 0,
        num_workers: int = 2,
        name: str | None = None,
    ) -> None:
        if part not in ("seen", "unseen", "all"):
            raise ValueError(f"SyntheticActions part must be seen, unseen or all, got {part!r}")
        self.root = None if root is None else expand_path(root, "SyntheticActions.root")
        self.part = part
        self.name = name or f"synthetic_{part}"
        self.num_workers = num_workers
        self._params: dict[str, Any] = {
            "colours": list(colours),
            "shapes": list(shapes),
            "motions": list(motions),
            "videos_per_class": videos_per_class,
            "num_frames": num_frames,
            "size": size,
            "fps": fps,
            "crf": crf,
            "seed": seed,
            "num_unseen": num_unseen,
            "split_seed": split_seed,
        }

    def class_attributes(self, class_names: Sequence[str]) -> dict[str, list[str]]:
        """The colour, shape and motion of each class."""
        parsed = [parse_class_name(name) for name in class_names]
        return {
            attribute: [p[k] for p in parsed]
            for k, attribute in enumerate(("colour", "shape", "motion"))
        }

    def mirror_class_name(self, class_name: str) -> str:
        """Mirroring swaps "left" and "right" and the two senses of rotation."""
        colour, shape, motion = parse_class_name(class_name)
        return f"{colour} {shape} {MIRRORED_MOTIONS.get(motion, motion)}"

    def _generate(self, progress: bool) -> SyntheticManifest:
        return generate_synthetic_actions(
            self.root, num_workers=self.num_workers, progress=progress, **self._params
        )

    def prepare(self) -> None:
        """Generates the videos (or checks the cached folder) and keeps the manifest."""
        self.manifest = self._generate(progress=True)

    @cached_property
    def manifest(self) -> SyntheticManifest:
        """The generated folder's manifest: the one :meth:`prepare` kept, else generated now."""
        return self._generate(progress=False)

    def _list(self) -> CatalogListing:
        manifest = self.manifest
        classes = {"seen": manifest.seen, "unseen": manifest.unseen}.get(
            self.part, manifest.class_names
        )
        index = {c: i for i, c in enumerate(classes)}
        samples = [(str(path), index[c]) for path, c in manifest.video_paths(classes)]
        return CatalogListing(list(classes), samples, [])


class VideoClipDataset(Dataset):
    """Reads clips of listed videos: items ``{"video", "label", "class_name", "path"}``.

    Each item opens its file (inside the DataLoader worker), probes the frame count, asks the
    clip sampler for K clips and decodes them. ``video`` is float ``(C, T, H, W)`` for K = 1 and
    ``(K, C, T, H, W)`` otherwise. Randomness (clip start, crop, flip) comes from a generator
    seeded by ``(seed, epoch, index)``: a run is reproducible whatever the number of workers,
    items differ between workers and ranks, and ``set_epoch`` changes them every epoch (the
    epoch lives in shared memory, so persistent workers see it too).

    A video that cannot be decoded gives ``None`` after a warning naming the file and the reason
    and is counted in ``num_skipped`` (per process); :func:`collate_skip` drops it and reports
    its path in the batch's ``"skipped"``. The warning comes once per file and dataset: the
    "warned" flags live in shared memory, so all DataLoader workers (persistent or not) share
    them; each DDP rank has its own dataset, so a file may be reported once per rank.

    Args:
        samples: ``(path, label)`` pairs.
        class_names: names that labels index (``item["class_name"]``).
        clip_sampler: ``(num_frames, rng: random.Random) -> list[ClipInfo]``.
        transform: ``(uint8 (T, H, W, 3), rng: random.Random) -> float (C, T, H, W)``, e.g.
            ``data_modules.transforms.make_transform``.
        seed: base seed of the per-item generators.
        thread_type: decoder threading for ``read_sampled_clips`` (None: one thread; DataLoader
            workers supply the parallelism).
        flip_labels: enables random left-right flips (probability 0.5): ``flip_labels[y]`` is
            the label of a mirrored video of class ``y`` (``y`` itself for a symmetric class,
            another label where mirroring swaps the class), or -1 where the mirror is not a
            class of this dataset (never flipped). None: no flips.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]],
        class_names: Sequence[str],
        clip_sampler: Callable[[int, random.Random], Sequence[Any]],
        transform: Callable[[Tensor, random.Random], Tensor],
        seed: int = 0,
        thread_type: str | None = None,
        flip_labels: Sequence[int] | None = None,
    ) -> None:
        samples = [(str(p), int(y)) for p, y in samples]
        self.class_names = list(class_names)
        _check_labels(samples, len(self.class_names), "VideoClipDataset")
        if flip_labels is not None:
            flip_labels = [int(y) for y in flip_labels]
            if len(flip_labels) != len(self.class_names) or not all(
                -1 <= y < len(self.class_names) for y in flip_labels
            ):
                raise ValueError(
                    f"flip_labels needs one label in [-1, {len(self.class_names)}) per class, "
                    f"got {flip_labels}"
                )
        self.flip_labels = flip_labels
        # numpy arrays, not a list of tuples: reading Python objects in forked workers touches
        # their reference counts and copies the pages, which grows by GBs on Kinetics.
        self._paths = np.array([p.encode() for p, _ in samples], dtype=np.bytes_)
        self._labels = np.array([y for _, y in samples], dtype=np.int64)
        self.clip_sampler = clip_sampler
        self.transform = transform
        self.seed = seed
        self.thread_type = thread_type
        self.num_skipped = 0
        # One byte per item, shared with the workers like the epoch.
        self._warned = torch.zeros(len(samples), dtype=torch.bool).share_memory_()
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def samples(self) -> list[tuple[str, int]]:
        """``(path, label)`` of every item, in index order."""
        return [(self._path(i), int(y)) for i, y in enumerate(self._labels)]

    @property
    def epoch(self) -> int:
        """The epoch that seeds per-item randomness."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch that seeds per-item randomness (called by the training sampler)."""
        self._epoch.fill_(epoch)

    def item_seed(self, index: int) -> int:
        """The 64-bit seed of item ``index`` in the current epoch."""
        state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1, np.uint64)
        return int(state[0])

    def __len__(self) -> int:
        return len(self._labels)

    def _path(self, index: int) -> str:
        return self._paths[index].decode()

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path, label = self._path(index), int(self._labels[index])
        # One generator per item drives the clip starts, then the crop and flip.
        rng = random.Random(self.item_seed(index))
        try:
            frames = read_sampled_clips(
                path,
                lambda info: [c.frame_indices for c in self.clip_sampler(info.num_frames, rng)],
                self.thread_type,
            )
        except VideoDecodeError as error:
            self._skip(index, path, error.reason)
            return None
        videos = [self.transform(clip, rng) for clip in frames]  # K x (C, T, H, W)
        video = videos[0] if len(videos) == 1 else torch.stack(videos)  # (K, C, T, H, W)
        if self.flip_labels is not None and rng.random() < 0.5 and self.flip_labels[label] >= 0:
            video, label = video.flip(-1), self.flip_labels[label]  # mirrored W axis
        return {
            "video": video,
            "label": label,
            "class_name": self.class_names[label],
            "path": path,
        }

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any] | None]:
        # DataLoader fetches a batch through this method, so the paths of skipped items reach
        # collate_skip (in the same worker) although __getitem__ returns a bare None for them.
        items = _Items(self[i] for i in indices)
        items.skipped = [
            self._path(i) for i, item in zip(indices, items, strict=True) if item is None
        ]
        return items

    def _skip(self, index: int, path: str, reason: str) -> None:
        self.num_skipped += 1
        # No lock: two workers read one item at once only when a DDP sampler pads an epoch with
        # repeated items, and then the cost is a second warning.
        if not self._warned[index]:
            self._warned[index] = True
            logger.warning("skipping unreadable video %s: %s", path, reason)


class _Items(list):
    """A fetched batch that also carries the paths of its skipped items."""

    skipped: list[str]


def collate_skip(batch: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Collates dataset items, dropping the ``None`` of unreadable videos.

    Returns:
        The default-collated dict (``video`` (B, C, T, H, W) or (B, K, C, T, H, W), ``label``
        (B,) long, ``class_name`` and ``path`` lists) plus ``skipped``: the paths of the dropped
        items (``"<unknown>"`` for items that did not come through
        ``VideoClipDataset.__getitems__``). When every item was dropped, ``video`` is an empty
        tensor (``video.shape[0] == 0``) and ``label`` an empty long tensor.
    """
    skipped = list(getattr(batch, "skipped", []))
    num_none = sum(item is None for item in batch)
    skipped += [UNKNOWN_PATH] * (num_none - len(skipped))
    items = [item for item in batch if item is not None]
    if not items:
        return {
            "video": torch.empty(0),
            "label": torch.empty(0, dtype=torch.long),
            "class_name": [],
            "path": [],
            "skipped": skipped,
        }
    collated = default_collate(items)
    collated["skipped"] = skipped
    return collated


def read_class_list(path: str | Path) -> list[str]:
    """Reads a class list (one name per line; blank lines ignored).

    Raises:
        FileNotFoundError: no such file.
        AnnotationError: duplicate names or an empty list, naming the file and line.
    """
    path = _require_file(Path(path), "class list")
    classes: list[str] = []
    first_line: dict[str, int] = {}
    for line_no, line in enumerate(_read_lines(path), start=1):
        name = line.strip()
        if not name:
            continue
        if name in first_line:
            raise AnnotationError(
                path, line_no, f"duplicate class {name!r} (first on line {first_line[name]})"
            )
        first_line[name] = line_no
        classes.append(name)
    if not classes:
        raise AnnotationError(path, None, "empty class list")
    return classes


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


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise AnnotationError(path, None, f"not UTF-8 text ({error})") from error


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a folder")
    return path


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist or is not a file")
    return path


def _video_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Sorted non-hidden files of ``folder`` with one of ``extensions`` (none if no folder)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.suffix.lower().lstrip(".") in extensions
    )


def _check_labels(samples: Sequence[tuple[str, int]], num_classes: int, where: str) -> None:
    bad = next(((p, y) for p, y in samples if not 0 <= y < num_classes), None)
    if bad is not None:
        raise ValueError(f"{where}: label {bad[1]} of {bad[0]} outside [0, {num_classes})")


class _DirIndex:
    """Answers "does this file exist?" with one directory listing per folder (fast on NFS)."""

    def __init__(self) -> None:
        self._names: dict[Path, frozenset[str]] = {}

    def exists(self, path: Path) -> bool:
        names = self._names.get(path.parent)
        if names is None:
            try:
                names = frozenset(os.listdir(path.parent))
            except OSError:
                names = frozenset()
            self._names[path.parent] = names
        return path.name in names
