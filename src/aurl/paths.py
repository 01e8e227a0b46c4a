"""Paths in configs (``~`` and ``$VAR`` / ``${VAR}`` expanded, unset variables are errors),
files written atomically, and JSON objects read with errors naming the file."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

_UNEXPANDED = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def expand_path(value: str | Path, field: str) -> Path:
    """Expands ``~`` and environment variables in ``value``.

    Experiment configs name dataset roots and model files as ``${AURL_K700_ROOT}/...`` so that
    one file serves every machine.

    Args:
        value: the configured path.
        field: what the path configures, named in the error (e.g. ``"Kinetics700.root"``).

    Raises:
        ValueError: an environment variable in ``value`` is not set.
    """
    expanded = os.path.expandvars(str(value))
    missing = _UNEXPANDED.findall(expanded)
    if missing:
        raise ValueError(
            f"{field}: environment variable {', '.join(sorted(set(missing)))} is not set "
            f"(in {value!r}); export it or pass the path on the command line"
        )
    return Path(expanded).expanduser()


def write_atomically(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Writes a file so that ``path`` is never left partial.

    ``write`` fills a hidden temp file in the same folder, which is flushed to disk (``fsync``)
    and renamed over ``path`` (``os.replace``, atomic on POSIX and Windows); the folder is then
    synced so the rename survives a power loss. If anything fails, the temp file is removed and
    ``path`` keeps its previous content. A process killed mid-write (SIGKILL) may leave its
    ``.<name>.<random>.tmp`` file; nothing reads those.

    Args:
        path: the target file; missing parent folders are created.
        write: writes the content into the binary handle it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # O_EXCL: never share a temp file with another writer; mode 0o666 lets the umask decide,
    # as for any other file the job writes.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    # Makes the rename durable on POSIX; Windows cannot open a folder for fsync.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path`` (a manifest, a sidecar).

    Raises:
        ValueError: the file is not valid JSON or holds no object at the top level (the
            message names the file and the line).
    """
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON (line {error.lineno}): {error.msg}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    return data
