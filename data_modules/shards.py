"""litdata shards of encoded videos: :func:`write_shards` and the sidecar :class:`ShardIndex`.

A shard folder (local, or ``s3://bucket/prefix``) holds litdata's chunks and ``index.json``,
written by :func:`litdata.optimize`, where item ``i`` is ``{"video": bytes, "label": int,
"path": str}`` (the encoded file as it would lie on disk, its source label and its path relative
to the catalog root), plus ``aurl_shards.json`` (:class:`ShardIndex`): the class space, every
item's label and path in item order, the inputs that could not be encoded and the encoder's
settings. A reader knows the classes and each item's label from the sidecar alone, so it can
split classes and choose items before it downloads a chunk.

Item order is the input order without the failed inputs: :func:`litdata.optimize` runs with
``keep_data_ordered=True`` and ``reorder_files=False``, so each worker encodes a contiguous
slice in order and the merged index lists the workers' chunks by rank. The readers check each
item's ``path`` against the sidecar's, so a different order fails loudly, never silently.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurl.paths import write_atomically

if TYPE_CHECKING:
    from data_modules.datasets.base import VideoCatalog

logger = logging.getLogger(__name__)

SIDECAR_NAME = "aurl_shards.json"
SHARD_FORMAT_VERSION = 1
# litdata's own index of the chunks, next to the sidecar.
_LITDATA_INDEX = "index.json"


def read_file_bytes(path: str) -> bytes:
    """The default ``encode`` of :func:`write_shards`: the file's bytes, unchanged."""
    return Path(path).read_bytes()


@dataclass(frozen=True)
class ShardIndex:
    """The sidecar ``aurl_shards.json`` of a shard folder.

    Attributes:
        catalog_name: the source catalog's name (metric prefix of its evaluation sets).
        raw_class_names: class labels as the dataset spells them; labels index this list.
        class_names: cleaned class names (text-encoder input), aligned with ``raw_class_names``.
        paths: each item's source path relative to the catalog root, in item order.
        labels: each item's label, in item order.
        failed: ``[relative path, reason]`` of each input that ``encode`` could not read.
        encode: the encoder's settings as given to :func:`write_shards` (None: file bytes).
        class_attributes: the catalog's ``class_attributes(class_names)``, if any.
        mirror_class_names: each class's mirror (``VideoCatalog.mirror_class_name``), if known.
        version: the sidecar format version.
    """

    catalog_name: str
    raw_class_names: list[str]
    class_names: list[str]
    paths: list[str]
    labels: list[int]
    failed: list[list[str]] = field(default_factory=list)
    encode: dict[str, Any] | None = None
    class_attributes: dict[str, list[str]] | None = None
    mirror_class_names: list[str | None] | None = None
    version: int = SHARD_FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.paths) != len(self.labels):
            raise ValueError(
                f"{SIDECAR_NAME}: {len(self.paths)} paths but {len(self.labels)} labels"
            )
        if len(self.class_names) != len(self.raw_class_names):
            raise ValueError(
                f"{SIDECAR_NAME}: {len(self.class_names)} class_names but "
                f"{len(self.raw_class_names)} raw_class_names"
            )
        bad = next((y for y in self.labels if not 0 <= y < len(self.class_names)), None)
        if bad is not None:
            raise ValueError(f"{SIDECAR_NAME}: label {bad} outside [0, {len(self.class_names)})")

    def to_json(self) -> str:
        """The sidecar's text."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> ShardIndex:
        """Parses a sidecar's text; ``where`` names it in errors.

        Raises:
            ValueError: the text is not a sidecar of a supported version.
        """
        try:
            data = json.loads(text)
            version = data.get("version")
            if version != SHARD_FORMAT_VERSION:
                raise ValueError(f"version {version!r}, expected {SHARD_FORMAT_VERSION}")
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"{where}: not a valid {SIDECAR_NAME}: {error}") from error


def is_remote(location: str | Path) -> bool:
    """Whether ``location`` is an object-store URL (``s3://...``) rather than a local path."""
    return "://" in str(location)


def allow_plain_http(storage_options: dict[str, Any] | None) -> None:
    """Lets litdata reach an ``http://`` endpoint (e.g. MinIO without TLS, a local test server).

    litdata moves chunks with obstore, whose client refuses plain-http URLs unless its client
    options allow them, and litdata gives it fixed options without that flag (litdata 0.2.76):
    every transfer then fails with "builder error". This adds the flag to those options in this
    process (forked workers inherit it) when ``storage_options["endpoint_url"]`` is plain
    http; HTTPS endpoints and AWS need nothing.

    Args:
        storage_options: the boto3 client options of the store.
    """
    endpoint = str((storage_options or {}).get("endpoint_url", ""))
    if not endpoint.startswith("http://"):
        return
    from litdata.streaming import downloader

    options = getattr(downloader, "_OBSTORE_CLIENT_OPTIONS", None)
    if isinstance(options, dict):
        options["allow_http"] = "true"


def read_shard_index(
    input_dir: str | Path, storage_options: dict[str, Any] | None = None
) -> ShardIndex:
    """Reads the sidecar of a shard folder.

    Args:
        input_dir: the shard folder, local or ``s3://bucket/prefix``.
        storage_options: boto3 client options for a remote folder (e.g. ``endpoint_url``).

    Returns:
        The :class:`ShardIndex`.

    Raises:
        FileNotFoundError: the folder has no sidecar.
        ValueError: the sidecar is malformed.
    """
    where = _join(input_dir, SIDECAR_NAME)
    return ShardIndex.from_json(_read_text(where, storage_options), where)


def write_shards(
    samples: Sequence[tuple[str | Path, int]],
    class_names: Sequence[str],
    output_dir: str | Path,
    *,
    raw_class_names: Sequence[str] | None = None,
    catalog_name: str = "shards",
    root: str | Path | None = None,
    encode: Callable[[str], bytes] = read_file_bytes,
    encode_settings: dict[str, Any] | None = None,
    class_attributes: dict[str, list[str]] | None = None,
    mirror_class_names: Sequence[str | None] | None = None,
    num_workers: int = 1,
    chunk_bytes: int | str = "64MB",
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    start_method: str | None = None,
    verbose: bool = False,
) -> ShardIndex:
    """Encodes videos into litdata shards with :func:`litdata.optimize`, plus the sidecar.

    An input whose ``encode`` raises is skipped, with its reason in the sidecar's ``failed``
    and one warning; the write goes on. The sidecar is written last: a folder that has one is
    complete.

    Args:
        samples: ``(path, label)`` of every video, e.g. a catalog's ``samples``.
        class_names: cleaned class names that labels index.
        output_dir: a local folder or ``s3://bucket/prefix`` (must not hold shards yet unless
            ``overwrite``).
        raw_class_names: class labels as the dataset spells them (default ``class_names``).
        catalog_name: the catalog name that :class:`~data_modules.datasets.StreamingShards`
            reports.
        root: folder that item paths are stored relative to (default: the samples' common
            folder).
        encode: ``path -> bytes`` of the file to store (default: the file's bytes; e.g.
            ``partial(transcode_video, settings=...)``); must pickle (a module-level function
            or a ``functools.partial`` of one), since litdata's workers run it.
        encode_settings: what ``encode`` does, recorded in the sidecar (e.g. the transcode
            settings as a dict).
        class_attributes: the catalog's ``class_attributes(class_names)``, if any.
        mirror_class_names: each class's mirrored class (``VideoCatalog.mirror_class_name``).
        num_workers: litdata worker processes encoding in parallel.
        chunk_bytes: target chunk size (litdata's ``chunk_bytes``, e.g. ``"64MB"``).
        storage_options: boto3 client options of a remote ``output_dir`` (``endpoint_url``,
            ``aws_access_key_id``, ...); None uses the usual AWS environment.
        overwrite: replace shards already in ``output_dir``.
        start_method: multiprocessing start method of litdata's workers (None: litdata's);
            ``"fork"`` for a plain-http endpoint (see :func:`allow_plain_http`).
        verbose: show litdata's progress (items done, ETA).

    Returns:
        The sidecar written next to the shards.

    Raises:
        ValueError: no samples, a label outside ``class_names``, a path outside ``root``, or
            every input failed.
        RuntimeError: ``output_dir`` already holds shards (without ``overwrite``), or litdata
            wrote another number of items than encoded.
    """
    if not samples:
        raise ValueError("write_shards: no samples to write")
    names = list(class_names)
    raw = list(raw_class_names) if raw_class_names is not None else names
    # Absolute, not resolved: item paths keep the catalog's layout even through symlinks.
    files = [os.path.abspath(p) for p, _ in samples]
    labels = [int(y) for _, y in samples]
    bad = next((i for i, y in enumerate(labels) if not 0 <= y < len(names)), None)
    if bad is not None:
        raise ValueError(f"write_shards: label {labels[bad]} of {files[bad]} outside classes")
    base = Path(os.path.abspath(root) if root is not None else os.path.commonpath(files))
    if len(files) == 1 and root is None:
        base = Path(files[0]).parent
    outside = next((f for f in files if not Path(f).is_relative_to(base)), None)
    if outside is not None:
        raise ValueError(f"write_shards: {outside} is not inside root {base}")
    relative = [Path(f).relative_to(base).as_posix() for f in files]
    output = str(output_dir) if is_remote(output_dir) else str(Path(output_dir).resolve())
    allow_plain_http(storage_options)
    # litdata's workers cannot return anything but items: each failure leaves a file here.
    with tempfile.TemporaryDirectory(prefix="aurl_shards_failed_") as failed_dir:
        _optimize(
            _EncodeItem(encode, failed_dir),
            list(zip(range(len(files)), files, relative, labels, strict=True)),
            output,
            num_workers=num_workers,
            chunk_bytes=chunk_bytes,
            storage_options=storage_options,
            overwrite=overwrite,
            start_method=start_method,
            verbose=verbose,
        )
        failed = {int(name): Path(failed_dir, name).read_text() for name in os.listdir(failed_dir)}
    kept = [i for i in range(len(files)) if i not in failed]
    if not kept:
        raise ValueError(f"write_shards: every input failed, e.g. {failed[0]}")
    index = ShardIndex(
        catalog_name=catalog_name,
        raw_class_names=raw,
        class_names=names,
        paths=[relative[i] for i in kept],
        labels=[labels[i] for i in kept],
        failed=[[relative[i], failed[i]] for i in sorted(failed)],
        encode=encode_settings,
        class_attributes=class_attributes,
        mirror_class_names=list(mirror_class_names) if mirror_class_names is not None else None,
    )
    written = _count_items(output, storage_options)
    if written != len(kept):
        raise RuntimeError(f"{output}: litdata wrote {written} items, expected {len(kept)}")
    if failed:
        logger.warning(
            "%s: %d of %d videos could not be encoded and were skipped (e.g. %s: %s); all are "
            "listed under 'failed' in %s",
            catalog_name,
            len(failed),
            len(files),
            index.failed[0][0],
            index.failed[0][1],
            SIDECAR_NAME,
        )
    _write_text(_join(output, SIDECAR_NAME), index.to_json(), storage_options)
    logger.info("%s: %d videos written to %s", catalog_name, len(kept), output)
    return index


def write_catalog_shards(
    catalog: VideoCatalog, output_dir: str | Path, **kwargs: Any
) -> ShardIndex:
    """Writes a catalog's videos as shards: :func:`write_shards` with the catalog's samples,
    class names (raw and cleaned), name, attributes and mirrors.

    Args:
        catalog: the catalog (e.g. ``Kinetics700``); ``prepare()`` must have run.
        output_dir: a local folder or ``s3://bucket/prefix``.
        **kwargs: the other arguments of :func:`write_shards` (``encode``, ``num_workers``...).

    Returns:
        The sidecar written next to the shards.
    """
    names = list(catalog.class_names)
    return write_shards(
        catalog.samples,
        names,
        output_dir,
        raw_class_names=catalog.raw_class_names,
        catalog_name=catalog.name,
        class_attributes=catalog.class_attributes(names),
        mirror_class_names=[catalog.mirror_class_name(n) for n in names],
        **kwargs,
    )


class _EncodeItem:
    """litdata's ``fn``: one input to one shard item, or None (recorded) when it fails."""

    def __init__(self, encode: Callable[[str], bytes], failed_dir: str) -> None:
        self.encode = encode
        self.failed_dir = failed_dir

    def __call__(self, item: tuple[int, str, str, int]) -> dict[str, Any] | None:
        from litdata import Text

        index, path, relative, label = item
        try:
            data = self.encode(path)
            if not isinstance(data, bytes) or not data:
                raise ValueError(f"encode returned {type(data).__name__} of length {len(data)}")
        except Exception as error:  # any failure of one input must not stop the write
            Path(self.failed_dir, str(index)).write_text(f"{type(error).__name__}: {error}")
            return None
        # Text, not str: litdata stores a str that names an existing file as that file.
        return {"video": data, "label": label, "path": Text(text=relative)}


def _optimize(
    fn: _EncodeItem,
    inputs: list[tuple[int, str, str, int]],
    output: str,
    *,
    num_workers: int,
    chunk_bytes: int | str,
    storage_options: dict[str, Any] | None,
    overwrite: bool,
    start_method: str | None,
    verbose: bool,
) -> None:
    from litdata import optimize

    # litdata sets the process's default start method (spawn unless given) and leaves it so:
    # every later DataLoader of this process would then spawn its workers (seconds each, the
    # modules imported anew). It is put back afterwards.
    previous = multiprocessing.get_start_method(allow_none=True)
    try:
        optimize(
            fn,
            inputs,
            output_dir=output,
            num_workers=max(1, min(num_workers, len(inputs))),
            chunk_bytes=chunk_bytes,
            # Item order = input order: contiguous slices per worker, merged by rank.
            keep_data_ordered=True,
            reorder_files=False,
            mode="overwrite" if overwrite else None,
            storage_options=dict(storage_options or {}),
            start_method=start_method,
            verbose=verbose,
        )
    finally:
        multiprocessing.set_start_method(previous, force=True)


def _count_items(output: str, storage_options: dict[str, Any] | None) -> int:
    text = _read_text(_join(output, _LITDATA_INDEX), storage_options)
    return sum(int(chunk["chunk_size"]) for chunk in json.loads(text)["chunks"])


def _join(folder: str | Path, name: str) -> str:
    return f"{str(folder).rstrip('/')}/{name}" if is_remote(folder) else str(Path(folder) / name)


def _read_text(location: str, storage_options: dict[str, Any] | None) -> str:
    if not is_remote(location):
        if not Path(location).is_file():
            raise FileNotFoundError(f"{location} does not exist (not a shard folder?)")
        return Path(location).read_text()
    from litdata.streaming.fs_provider import _get_fs_provider

    provider = _get_fs_provider(location, dict(storage_options or {}))
    if not provider.exists(location):
        raise FileNotFoundError(f"{location} does not exist (not a shard folder?)")
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "file")
        provider.download_file(location, local)
        return Path(local).read_text()


def _write_text(location: str, text: str, storage_options: dict[str, Any] | None) -> None:
    if not is_remote(location):
        write_atomically(location, lambda f: f.write(text.encode()))
        return
    from litdata.streaming.fs_provider import _get_fs_provider

    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, SIDECAR_NAME)
        Path(local).write_text(text)
        _get_fs_provider(location, dict(storage_options or {})).upload_file(local, location)
