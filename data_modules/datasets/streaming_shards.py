"""StreamingShards: a catalog of the videos in litdata shards written by ``write_shards``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from data_modules.datasets.base import CatalogListing, VideoCatalog
from data_modules.shards import ShardIndex, is_remote, read_shard_index


class StreamingShards(VideoCatalog):
    """The videos of a shard folder (:func:`data_modules.shards.write_shards`), local or remote.

    The class space and every item's label come from the folder's sidecar
    (``aurl_shards.json``), so listing reads one small file and no chunk; a sample's identifier
    is ``"<input_dir>#<item index>"`` (:meth:`item_index` parses it back, :meth:`item_path`
    gives its source path). ``ZeroShotDataModule`` splits these samples like any catalog's,
    then trains through litdata's ``StreamingDataset`` (:mod:`data_modules.streaming`):
    shuffled per epoch, sharded over ranks and workers, resumable mid-epoch. Evaluation reads
    the items it needs by index.

    Args:
        input_dir: the shard folder: a local path or ``s3://bucket/prefix``.
        storage_options: boto3 client options for a remote folder, e.g. ``{"endpoint_url":
            "http://minio:9000", "aws_access_key_id": ..., "aws_secret_access_key": ...}``
            for an S3-compatible store; None uses the usual AWS environment and files.
        cache_dir: local folder for the chunks downloaded from a remote folder (None:
            litdata's default, under ``~/.lightning/chunks``); use a node-local disk.
        max_cache_size: cap on the chunk cache (e.g. ``"200GB"``; None: litdata's default).
        name: catalog name (default: the name recorded when the shards were written).
    """

    name_style = "none"

    def __init__(
        self,
        input_dir: str | Path,
        storage_options: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        max_cache_size: str | None = None,
        name: str | None = None,
    ) -> None:
        if is_remote(input_dir):
            self.input_dir = str(input_dir).rstrip("/")
        else:
            self.input_dir = str(Path(input_dir).expanduser().resolve())
        self.storage_options = dict(storage_options) if storage_options else None
        self.cache_dir = None if cache_dir is None else str(Path(cache_dir).expanduser())
        self.max_cache_size = max_cache_size
        self._name = name

    @cached_property
    def index(self) -> ShardIndex:
        """The folder's sidecar (read once)."""
        return read_shard_index(self.input_dir, self.storage_options)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name or self.index.catalog_name

    @cached_property
    def _paths(self) -> np.ndarray:
        # A numpy array, not the sidecar's list: DataLoader workers that read Python objects
        # touch their reference counts and copy the pages (VideoClipDataset does the same).
        return np.array([p.encode() for p in self.index.paths], dtype=np.bytes_)

    def _list(self) -> CatalogListing:
        samples = [(self.sample_id(i), y) for i, y in enumerate(self.index.labels)]
        _ = self._paths  # built here, before workers start
        return CatalogListing(list(self.index.raw_class_names), samples, [])

    @property
    def class_names(self) -> list[str]:
        """The cleaned class names recorded by the writer (not re-cleaned)."""
        return list(self.index.class_names)

    def class_attributes(self, class_names: Sequence[str]) -> dict[str, list[str]] | None:
        attributes = self.index.class_attributes
        if attributes is None:
            return None
        position = {name: k for k, name in enumerate(self.index.class_names)}
        return {
            key: [values[position[n]] for n in class_names] for key, values in attributes.items()
        }

    def mirror_class_name(self, class_name: str) -> str | None:
        mirrors = self.index.mirror_class_names
        if mirrors is None:
            return super().mirror_class_name(class_name)
        return mirrors[self.index.class_names.index(class_name)]

    def sample_id(self, item_index: int) -> str:
        """The identifier of item ``item_index`` in ``samples``."""
        return f"{self.input_dir}#{item_index}"

    def item_index(self, sample_id: str) -> int | None:
        """The item index of one of this folder's sample identifiers; None for any other path."""
        folder, sep, number = sample_id.rpartition("#")
        if not sep or folder != self.input_dir or not number.isdigit():
            return None
        return int(number)

    def item_path(self, item_index: int) -> str:
        """The source path (relative to the catalog root) of item ``item_index``."""
        return self._paths[item_index].decode()
