"""Paths in configs: ``~`` and ``$VAR`` / ``${VAR}`` are expanded, unset variables are errors."""

from __future__ import annotations

import os
import re
from pathlib import Path

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
