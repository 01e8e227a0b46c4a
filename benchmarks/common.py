"""Shared helpers of the benchmarks: timing, memory, machine description and result files.

Every benchmark writes ``<out_dir>/<name>.json`` (all numbers, the parameters, the command and
the machine) and ``<out_dir>/<name>.md`` (the same as Markdown tables, for the README). Timings
are ratios measured within one run: the benchmarks interleave the methods they compare and
repeat each several times, because the machines they run on are shared (see :func:`speedup`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import torch

logger = logging.getLogger(__name__)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"

# Distributions whose versions explain a benchmark's numbers.
_VERSIONED = ("torch", "torchvision", "av", "lightning", "pytorchvideo", "numpy")

T = TypeVar("T")


def command_line(module: str, argv: Sequence[str]) -> str:
    """How to rerun a benchmark: ``python -m benchmarks.<module> <argv>``."""
    return shlex.join(["python", "-m", f"benchmarks.{module}", *argv])


def create_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The command line of a timing benchmark, with the options they all take.

    Args:
        module: the benchmark's module in ``benchmarks`` (its ``prog``: ``python -m ...``).
        description: the first line of its docstring.

    Returns:
        A parser with ``--quick``, ``--seed`` and ``--out-dir``; the benchmark adds its own.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks.{module}", description=description
    )
    parser.add_argument("--quick", action="store_true", help="small setting (~1-2 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    return parser


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Describes the machine a benchmark ran on.

    Returns:
        ``cpu`` (model name), ``cpu_count`` (logical CPUs), ``usable_cores`` (CPUs this process
        may run on), ``torch_threads``, ``load_average`` (1, 5, 15 min: other work on a shared
        machine), ``platform``, ``python``, ``versions`` (package -> version), and ``gpu`` (the
        CUDA device name, or None).
    """
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "gpu": gpu,
    }


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Best (minimum), median and worst (maximum) of repeated timings in seconds.

    Args:
        values: one duration per repeat (non-empty).

    Returns:
        ``{"best", "median", "worst", "repeats"}``.
    """
    if not values:
        raise ValueError("no timings to summarize")
    return {
        "best": min(values),
        "median": statistics.median(values),
        "worst": max(values),
        "repeats": len(values),
    }


def interleave(
    runs: Mapping[str, Callable[[], T]], repeats: int, start: int = 0, label: str | None = None
) -> dict[str, list[T]]:
    """Runs each of ``runs`` ``repeats`` times, alternating between them.

    Repeat ``r`` starts with run number ``(start + r) % len(runs)`` and goes on in order, so a
    slow phase of a shared machine or a warm cache falls on every run alike.

    Args:
        runs: name -> a callable that does the work once and returns its duration in seconds
            (so it may leave out its own set-up) or a record of the run that holds it.
        repeats: how many times each run is made.
        start: rotation of the first repeat (a caller that interleaves many small batches of
            work passes a different one each time).
        label: when given, each run is logged as ``<label>: <name>, repeat r of n`` (for runs
            long enough that one wants to follow them).

    Returns:
        name -> the ``repeats`` results of its callable, in repeat order.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(runs)
    results: dict[str, list[T]] = {name: [] for name in names}
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(start + r + k) % len(names)]
            if label is not None:
                logger.info("%s: %s, repeat %d of %d", label, name, r + 1, repeats)
            results[name].append(runs[name]())
    return results


def speedup(ours: Sequence[float], theirs: Sequence[float]) -> dict[str, float]:
    """How many times faster ``ours`` is than ``theirs``, from durations of paired repeats.

    Two estimates: ``best``, ``min(theirs) / min(ours)``, since load from other jobs only ever
    adds time, the fastest repeat is the closest to the true cost (the one targets are judged
    on); and ``paired_median``, the median over repeats of ``theirs[r] / ours[r]``, where
    pairing durations measured back to back cancels slow drift.

    Args:
        ours: one duration per repeat.
        theirs: the durations of the same repeats.

    Returns:
        ``{"best": ..., "paired_median": ...}``.
    """
    if len(ours) != len(theirs) or not ours:
        raise ValueError(f"need paired timings, got {len(ours)} and {len(theirs)}")
    return {
        "best": min(theirs) / min(ours),
        "paired_median": statistics.median(t / o for o, t in zip(ours, theirs, strict=True)),
    }


def clock(cuda: bool = False) -> float:
    """``time.perf_counter()``, after waiting for queued CUDA work when ``cuda`` is set.

    Take both ends of a GPU interval with ``cuda=True``: kernels run asynchronously, so without
    the wait an interval measures how fast work was queued, not done.
    """
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter()


def current_rss_mib() -> float | None:
    """Resident memory of this process now, in MiB (Linux ``/proc/self/statm``; else None)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib(children: bool = False) -> float:
    """Peak resident memory in MiB of this process, or of its largest waited-for child.

    ``ru_maxrss`` is a lifetime peak, so a measurement of one configuration needs a fresh
    process; with ``children=True`` it is the largest terminated child that was joined (e.g.
    DataLoader workers after the loader shut them down).
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    # Linux reports KiB, macOS bytes.
    scale = 1 / (1024 * 1024) if sys.platform == "darwin" else 1 / 1024
    return usage.ru_maxrss * scale


def cuda_peak_mib(device: torch.device | int | None = None) -> float:
    """``torch.cuda.max_memory_allocated`` in MiB (reset it with ``reset_peak_memory_stats``)."""
    return torch.cuda.max_memory_allocated(device) / 2**20


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; floats are printed with 3 significant digits (2 decimals min).

    Args:
        headers: column titles.
        rows: one sequence per row, as long as ``headers``.

    Returns:
        The table, one line per row, ending with a newline.
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)} has {len(row)} cells, expected {len(headers)}")
    lines = [
        "| " + " | ".join(str(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3g}"
    return "" if value is None else str(value)


def machine_markdown(machine: Mapping[str, Any]) -> str:
    """One paragraph describing the machine of :func:`machine_info`."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    gpu = machine["gpu"] or "none"
    load = ", ".join(str(x) for x in machine["load_average"])
    return (
        f"Machine: {machine['cpu']}, {machine['usable_cores']} usable cores "
        f"({machine['cpu_count']} logical), {machine['torch_threads']} torch threads, GPU: {gpu}; "
        f"load average at start {load}; {machine['platform']}, Python {machine['python']}; "
        f"{versions}.\n"
    )


def write_results(
    name: str,
    command: str,
    results: Mapping[str, Any],
    sections: Sequence[tuple[str, str]],
    out_dir: str | Path = RESULTS_DIR,
) -> tuple[Path, Path]:
    """Writes ``<name>.json`` and ``<name>.md`` into ``out_dir``.

    The JSON holds ``name``, ``created`` (UTC, ISO 8601), ``command`` and every key of
    ``results`` (the benchmark's parameters, machine and numbers).

    Args:
        name: file stem and Markdown title.
        command: the command line that reproduces the results.
        results: JSON-serialisable numbers; should include ``machine`` (:func:`machine_info`).
        sections: ``(heading, Markdown body)`` pairs, e.g. tables from :func:`markdown_table`.
        out_dir: folder to write into (created if missing).

    Returns:
        The JSON and Markdown paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        **results,
    }
    json_path = out_dir / f"{name}.json"
    json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    parts = [f"# {name}\n", f"Created {record['created']} by `{record['command']}`.\n"]
    if "machine" in results:
        parts.append(machine_markdown(results["machine"]))
    if sections:
        parts.append(render_sections(sections))
    md_path = out_dir / f"{name}.md"
    md_path.write_text("\n".join(parts), encoding="utf-8")
    return json_path, md_path


def render_sections(sections: Sequence[tuple[str, str]]) -> str:
    """``(heading, Markdown body)`` pairs as ``## heading`` sections, separated by blank lines."""
    return "\n".join(f"## {heading}\n\n{body}" for heading, body in sections)


def publish(
    module: str,
    argv: Sequence[str],
    results: Mapping[str, Any],
    sections: Sequence[tuple[str, str]],
    out_dir: str | Path = RESULTS_DIR,
    quick: bool = False,
) -> tuple[Path, Path]:
    """Writes a benchmark's results (:func:`write_results`) and prints its tables for people.

    Args:
        module: the benchmark's module in ``benchmarks``; the files are ``<module>.{json,md}``,
            or ``<module>_quick.{json,md}`` for a quick run (kept apart from the full results).
        argv: its command-line arguments (the recorded command reruns it).
        results: as :func:`write_results`.
        sections: as :func:`write_results`.
        out_dir: folder to write into.
        quick: whether this was a quick (or otherwise reduced) run.

    Returns:
        The JSON and Markdown paths.
    """
    name = f"{module}_quick" if quick else module
    paths = write_results(name, command_line(module, argv), results, sections, out_dir)
    print(render_sections(sections))
    print(f"wrote {paths[0]} and {paths[1]}")
    return paths
