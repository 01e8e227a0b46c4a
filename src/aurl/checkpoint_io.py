"""Crash-safe checkpoint files: atomic writes, weights-only loading and clear corruption errors.

Lightning's own ``TorchCheckpointIO`` (2.6) serialises into memory and then writes through an
fsspec transaction; for local paths fsspec writes a temp file in the *system* temp folder and
moves it over the target with ``shutil.move``, without ``fsync``. When that folder is on another
file system (``/tmp`` on a tmpfs, checkpoints on a network disk) the move is a plain copy onto
the final name, so a job killed during it leaves a truncated ``.ckpt``; and without ``fsync`` a
power loss can leave an empty file behind a successful rename. :class:`AtomicCheckpointIO`
writes a hidden temp file next to the target, flushes it to disk (``fsync``), renames it over
the target with ``os.replace`` (atomic on POSIX and Windows) and syncs the folder. A reader sees
either the previous complete checkpoint or the new complete one, never a partial one. A process
killed mid-save (SIGKILL) may leave its hidden ``.<name>.<random>.tmp`` file; nothing reads
those, and they are safe to delete.

``ModelCheckpoint(save_last=True)`` saves ``last.ckpt`` through the plugin like any other
checkpoint; with ``save_last="link"`` Lightning replaces ``last.ckpt`` by a symlink to a
checkpoint that the plugin wrote atomically (``os.replace`` replaces a symlink at the target,
never the file it points to).

Loading (:func:`load_checkpoint`, also used by the plugin, so ``Trainer.fit(ckpt_path=...)`` goes
through it) first checks the zip container (every ``torch.save`` file since PyTorch 1.6 is one)
and the CRC-32 of every member, so a truncated file or one with overwritten bytes fails with a
:class:`CheckpointError` naming the file, instead of a miniz or pickle stack trace or, worse,
silently rotten weights (``torch.load`` does not check the CRC of tensor data). It then loads
with ``weights_only=True``. A checkpoint that needs full unpickling (hyperparameters holding
objects that PyTorch does not allowlist, such as ``pathlib.Path`` or numpy scalars) is loaded
with ``weights_only=False`` after a warning naming those objects, unless the caller asked for
``weights_only=True``. Checkpoints written by ``AURLModule`` under ``Trainer`` or the ``aurl``
command hold only tensors, containers, strings and numbers, so they load weights-only.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol

from aurl.paths import write_atomically

log = logging.getLogger(__name__)

# Bytes read at a time when checking member CRCs.
_CHUNK = 1 << 20
# Other checkpoints named in a CheckpointError, newest first.
_MAX_ALTERNATIVES = 5


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, corrupted or refused."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves are atomic and whose loads fail clearly.

    Pass it to the trainer: ``Trainer(plugins=[AtomicCheckpointIO()])`` or, in a config,
    ``trainer.plugins: [{class_path: aurl.checkpoint_io.AtomicCheckpointIO}]``. Remote paths
    (``s3://``, ...) fall back to Lightning's own implementation.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        """Writes ``checkpoint`` to ``path`` atomically (see :func:`save_checkpoint`).

        Raises:
            TypeError: if ``storage_options`` is given (not supported, as in Lightning).
        """
        if not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not support storage_options")
        save_checkpoint(checkpoint, _local_path(path))

    def load_checkpoint(
        self,
        path: str | Path,
        map_location: Any | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Loads a checkpoint with :func:`load_checkpoint` (remote paths: Lightning's loader)."""
        if not _is_local_file_protocol(path):
            return super().load_checkpoint(path, map_location, weights_only)
        return load_checkpoint(_local_path(path), map_location, weights_only)


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Saves ``checkpoint`` with ``torch.save`` so that ``path`` is never left partial.

    See :func:`aurl.paths.write_atomically`: a temp file in the same folder, flushed to disk,
    renamed over ``path``; if anything fails, ``path`` keeps its previous content.

    Args:
        checkpoint: anything ``torch.save`` accepts (a Lightning checkpoint dict).
        path: the target file; missing parent folders are created.
    """
    # torch.save looked up at call time (tests stand in a failing writer).
    write_atomically(path, lambda handle: torch.save(checkpoint, handle))
    log.debug("saved checkpoint %s", path)


def load_checkpoint(
    path: str | Path,
    map_location: Callable[..., Any] | str | torch.device | dict[str, str] | None = "cpu",
    weights_only: bool | None = None,
) -> dict[str, Any]:
    """Loads a checkpoint written by ``torch.save`` (a Lightning ``.ckpt``), checking it first.

    Args:
        path: the checkpoint file.
        map_location: passed to ``torch.load``; the default puts every tensor on the CPU.
        weights_only: ``None`` (default): load weights-only, falling back to full unpickling
            with a warning for a checkpoint that needs it; ``True``: weights-only, a checkpoint
            that needs more is a :class:`CheckpointError`; ``False``: full unpickling, for
            trusted files only (it can run arbitrary code).

    Returns:
        The checkpoint (for a Lightning checkpoint: ``state_dict``, ``hyper_parameters``,
        ``optimizer_states``, ...).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        CheckpointError: if the file is empty, truncated, corrupted, not a ``torch.save`` zip
            file (including the pre-1.6 legacy format), or refused by ``weights_only=True``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} is not a file (a sharded checkpoint folder needs the strategy "
            "that wrote it)"
        )
    _check_archive(path)
    if weights_only is not False:
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as error:
            # The archive is intact (checked above), so a failing weights-only unpickler means
            # the checkpoint holds objects outside PyTorch's allowlist.
            refused = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            if not refused:
                raise
            if weights_only:
                raise CheckpointError(
                    f"checkpoint {path} holds objects that weights_only=True loading refuses: "
                    f"{refused}; load it with weights_only=False if you trust the file, or "
                    "allow them with torch.serialization.add_safe_globals"
                ) from error
            log.warning(
                "checkpoint %s holds objects that weights_only loading refuses (%s); loading "
                "it with weights_only=False, which can run code from the file: load only "
                "checkpoints you trust",
                path,
                ", ".join(refused),
            )
    return torch.load(path, map_location=map_location, weights_only=False)


def _check_archive(path: Path) -> None:
    """Raises CheckpointError unless ``path`` is a complete zip whose member CRCs all match."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        complete = zipfile.is_zipfile(handle)
    if size == 0:
        raise _corrupt(path, "the file is empty (0 bytes)")
    if not complete:
        raise _corrupt(
            path,
            f"it is not a complete torch.save zip file ({size} bytes): it is truncated, or it "
            "is not a checkpoint (or one in the legacy pre-1.6 format)",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                # torch.save skips CRCs when compute_crc32 is turned off: nothing to check.
                if info.CRC == 0 and info.file_size > 0:
                    continue
                # ZipExtFile raises BadZipFile at the end of a member whose CRC differs.
                with archive.open(info) as member:
                    while member.read(_CHUNK):
                        pass
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as error:
        raise _corrupt(path, f"its content is corrupted ({error})") from error


def _corrupt(path: Path, reason: str) -> CheckpointError:
    others = sorted(
        (p for p in path.parent.glob("*.ckpt") if p.is_file() and p.resolve() != path.resolve()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )[:_MAX_ALTERNATIVES]
    hint = (
        f"; other checkpoints in {path.parent}: {[p.name for p in others]}"
        if others
        else " (e.g. an earlier epoch's file)"
    )
    return CheckpointError(
        f"cannot load checkpoint {path}: {reason}. Resume or evaluate from another "
        f"checkpoint{hint}"
    )


def _local_path(path: str | Path) -> Path:
    return Path(str(path).removeprefix("file://"))
