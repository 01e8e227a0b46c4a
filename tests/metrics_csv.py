"""Readers of the ``metrics.csv`` that Lightning's CSVLogger writes in a run folder."""

from __future__ import annotations

import csv
from pathlib import Path


def read_metric_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger ``metrics.csv``, with the empty cells left out."""
    with path.open(newline="") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def per_step(path: Path, key: str) -> dict[int, float]:
    """``{global step: value}`` of a metric logged every step (``train/loss``, an ``lr-*``)."""
    return {int(row["step"]): row[key] for row in read_metric_rows(path) if key in row}


def per_epoch(rows: list[dict[str, float]], key: str) -> dict[int, float]:
    """``{epoch: value}`` of a metric logged once per epoch (an error if logged twice)."""
    values: dict[int, float] = {}
    for row in rows:
        if key in row:
            epoch = int(row["epoch"])
            assert epoch not in values, f"{key} logged twice in epoch {epoch}"
            values[epoch] = row[key]
    return values


def last_metrics(path: Path, prefix: str = "") -> dict[str, float]:
    """The last logged value of each column of ``metrics.csv`` starting with ``prefix``."""
    last: dict[str, float] = {}
    for row in read_metric_rows(path):
        last.update({key: value for key, value in row.items() if key.startswith(prefix)})
    return last
