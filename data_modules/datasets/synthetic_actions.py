"""SyntheticActions: the embedded benchmark (:mod:`data_modules.synthetic`) as a catalog."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

from aurl.paths import expand_path
from data_modules.datasets.base import CatalogLayout, CatalogListing, VideoCatalog
from data_modules.synthetic import (
    MANIFEST_NAME,
    MIRRORED_MOTIONS,
    SyntheticManifest,
    SyntheticSpec,
    generate_synthetic_actions,
    parse_class_name,
)

# The benchmark; every default below is one of its fields.
_DEFAULT = SyntheticSpec()


class SyntheticActions(VideoCatalog):
    """The embedded benchmark (``data_modules.synthetic``), generated once and cached.

    Generation happens in :meth:`prepare` (a LightningDataModule calls it from ``prepare_data``,
    on one process) or on first listing; a cached folder is only checked. The arguments from
    ``colours`` to ``split_seed`` are the fields of :class:`data_modules.synthetic.SyntheticSpec`
    (kept in ``spec``); their defaults are the benchmark's.

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

    name_style = "synthetic"

    def __init__(
        self,
        root: str | Path | None = None,
        part: Literal["seen", "unseen", "all"] = "seen",
        colours: Sequence[str] = _DEFAULT.colours,
        shapes: Sequence[str] = _DEFAULT.shapes,
        motions: Sequence[str] = _DEFAULT.motions,
        videos_per_class: int = _DEFAULT.videos_per_class,
        num_frames: int = _DEFAULT.num_frames,
        size: int = _DEFAULT.size,
        fps: int = _DEFAULT.fps,
        crf: int = _DEFAULT.crf,
        seed: int = _DEFAULT.seed,
        num_unseen: int = _DEFAULT.num_unseen,
        split_seed: int = _DEFAULT.split_seed,
        num_workers: int = 2,
        name: str | None = None,
    ) -> None:
        if part not in ("seen", "unseen", "all"):
            raise ValueError(f"SyntheticActions part must be seen, unseen or all, got {part!r}")
        self.root = None if root is None else expand_path(root, "SyntheticActions.root")
        self.part = part
        self.name = name or f"synthetic_{part}"
        self.num_workers = num_workers
        self.spec = SyntheticSpec(
            colours=tuple(colours),
            shapes=tuple(shapes),
            motions=tuple(motions),
            videos_per_class=videos_per_class,
            num_frames=num_frames,
            size=size,
            fps=fps,
            crf=crf,
            seed=seed,
            num_unseen=num_unseen,
            split_seed=split_seed,
        )

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
            self.root, self.spec, num_workers=self.num_workers, progress=progress
        )

    def prepare(self) -> None:
        """Generates the videos (or checks the cached folder) and keeps the manifest."""
        self.manifest = self._generate(progress=True)

    @cached_property
    def manifest(self) -> SyntheticManifest:
        """The generated folder's manifest: the one :meth:`prepare` kept, else generated now."""
        return self._generate(progress=False)

    def layout(self) -> CatalogLayout:
        """Every video of the generated folder and its manifest, under the cache folder.

        A copy lists as this catalog does for every ``part``: listing checks (and would render)
        every video the manifest names, not only this part's.
        """
        manifest = self.manifest
        videos = [path for path, _ in manifest.video_paths()]
        return CatalogLayout(manifest.root.parent, videos, [], [manifest.root / MANIFEST_NAME])

    def _list(self) -> CatalogListing:
        manifest = self.manifest
        classes = {"seen": manifest.seen, "unseen": manifest.unseen}.get(
            self.part, manifest.class_names
        )
        index = {c: i for i, c in enumerate(classes)}
        samples = [(str(path), index[c]) for path, c in manifest.video_paths(classes)]
        return CatalogListing(list(classes), samples, [])
