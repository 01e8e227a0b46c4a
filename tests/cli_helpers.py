"""Helpers of tests/test_cli.py: run ``aurl`` in-process or as a subprocess, shrink experiment
files to tiny data and models, compare parsed configs, and build tiny copies of the real
dataset layouts."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from aurl.class_names import clean_class_names, content_words

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
CLASS_LISTS = REPO / "data_modules" / "class_lists"

# A tiny synthetic benchmark: 2 x 2 x 2 = 8 classes, 3 of them unseen, 3 short videos each.
# Labelled by the datamodule (val_fraction 0.1, gzsl 20%): 1 validation class (3 videos),
# 4 training classes (8 training + 4 held-out GZSL videos), 9 unseen test videos; the test sets
# have odd sizes (9 and 13 videos), so two DDP ranks get uneven shards.
TINY_SYNTHETIC: dict[str, Any] = {
    "colours": ["red", "green"],
    "shapes": ["square", "circle"],
    "motions": ["moving left", "moving right"],
    "videos_per_class": 3,
    "num_frames": 8,
    "size": 32,
    "num_unseen": 3,
    "num_workers": 1,
}
# A narrow backbone and 16-d heads: a training step takes milliseconds on a CPU. (Stages of 4
# channels, a 3-channel stem, blow up: one SGD step on 2 near-static clips scales weights ~100x.)
TINY_MODEL: dict[str, Any] = {
    "visual_tower": {
        "init_args": {
            "backbone": "r2plus1d_narrow",
            "backbone_kwargs": {"widths": [8, 16, 16, 16]},
            "embed_dim": 16,
            "hidden_dim": 16,
        }
    },
    "semantic_tower": {"init_args": {"fc_dim": 16, "hidden_dim": 16, "embed_dim": 16}},
}
# One evaluation batch holds a whole tiny test set: `fast_dev_run` evaluates one batch per set.
TINY_DATA: dict[str, Any] = {
    "clip_len": 4,
    "size": 32,
    "batch_size": 2,
    "eval_batch_size": 16,
    "num_workers": 0,
    "pin_memory": False,
}
# Overrides that move a GPU recipe (DDP, bf16, SyncBatchNorm) to one CPU process.
CPU_TRAINER = [
    "--trainer.accelerator",
    "cpu",
    "--trainer.devices",
    "1",
    "--trainer.strategy",
    "auto",
    "--trainer.precision",
    "32-true",
    "--trainer.sync_batchnorm",
    "false",
]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file as a dict (empty for an empty file)."""
    return yaml.safe_load(Path(path).read_text()) or {}


def tiny_catalog(spec: dict[str, Any]) -> dict[str, Any]:
    """A catalog spec of an experiment file with tiny SyntheticActions settings (others as is)."""
    if not str(spec.get("class_path", "")).endswith("SyntheticActions"):
        return spec
    return {
        "class_path": spec["class_path"],
        "init_args": {**(spec.get("init_args") or {}), **TINY_SYNTHETIC},
    }


def write_tiny_overrides(experiment: str | Path, path: Path) -> Path:
    """Writes a config fragment that shrinks ``experiment`` to the tiny data and model.

    Stack it right after the experiment (``--config experiment --config fragment``), before any
    ablation fragment, so the ablation's own choices win. The experiment's synthetic catalogs are
    restated with tiny settings (a list of targets can only be replaced as a whole); real-data
    catalogs are kept.

    Args:
        experiment: the complete experiment file.
        path: where to write the fragment.
    """
    data = load_yaml(experiment).get("data", {})
    overrides: dict[str, Any] = {"model": TINY_MODEL, "data": dict(TINY_DATA)}
    if "source" in data:
        overrides["data"]["source"] = tiny_catalog(data["source"])
    if "targets" in data:
        overrides["data"]["targets"] = [tiny_catalog(t) for t in data["targets"]]
    path.write_text(yaml.safe_dump(overrides, sort_keys=False))
    return path


# --- configs ------------------------------------------------------------------------------
def assert_config_contains(expected: Any, actual: Any, where: str = "") -> None:
    """Every value of ``expected`` (a parsed YAML file) is in ``actual`` (a printed config)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a mapping, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing from the parsed config"
            assert_config_contains(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list) and expected and isinstance(expected[0], dict):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for k, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_config_contains(e, a, f"{where}[{k}]")
    else:
        assert actual == expected, f"{where}: file says {expected!r}, parsed {actual!r}"


def referenced_files(spec: Any, folder: Path, where: str = "") -> dict[str, Path]:
    """``{dotted key: file}`` of the values of an experiment file that name another YAML file
    (relative to the experiment's ``folder``), such as ``callbacks: defaults/callbacks.yaml``."""
    if isinstance(spec, dict):
        found: dict[str, Path] = {}
        for key, value in spec.items():
            found.update(referenced_files(value, folder, f"{where}.{key}".lstrip(".")))
        return found
    if isinstance(spec, str) and spec.endswith(".yaml") and (folder / spec).is_file():
        return {where: (folder / spec).resolve()}
    return {}


def without_keys(spec: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of a parsed YAML file without the given dotted keys."""
    spec = copy.deepcopy(spec)
    for key in keys:
        *parents, last = key.split(".")
        node = spec
        for parent in parents:
            node = node[parent]
        del node[last]
    return spec


def at_key(config: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of a printed config."""
    for part in key.split("."):
        config = config[part]
    return config


def flatten(config: Any, where: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of every mapping leaf; lists and scalars are leaves."""
    if not isinstance(config, dict) or not config:
        return {where: config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(flatten(value, f"{where}.{key}".lstrip(".")))
    return flat


def stated_keys(fragment: Any, base: Any, where: str = "") -> list[str]:
    """The dotted keys a fragment may change in ``base`` (a printed config): the leaves it
    states, and the whole of a component whose ``class_path`` it changes (jsonargparse then
    keeps only the ``init_args`` that the new class accepts)."""
    if not isinstance(fragment, dict):
        return [where]
    if "class_path" in fragment and fragment["class_path"] != (base or {}).get("class_path"):
        return [where]
    keys = []
    for key, value in fragment.items():
        below = base.get(key) if isinstance(base, dict) else None
        keys += stated_keys(value, below, f"{where}.{key}".lstrip("."))
    return keys


# --- running aurl --------------------------------------------------------------------------
@contextlib.contextmanager
def _restore_torch_state() -> Iterator[None]:
    # A run may switch on deterministic algorithms or change the thread count for the process.
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


def run_cli(args: Sequence[str]) -> Any:
    """Runs ``aurl fit|validate|test`` in this process; returns the finished AURLCLI.

    The W&B run is finished afterwards (the ``aurl`` process would finish it at exit);
    otherwise the next WandbLogger of the test session would attach to it.
    """
    import wandb

    from aurl.cli import run_lightning_cli

    # LightningCLI warns when it is given args while sys.argv holds pytest's own.
    argv, sys.argv = sys.argv, sys.argv[:1]
    with _restore_torch_state():
        try:
            return run_lightning_cli(list(args))
        finally:
            sys.argv = argv
            if wandb.run is not None:
                wandb.finish()


def cli_exit(args: Sequence[str]) -> tuple[int | str | None, str, str]:
    """Runs the CLI expecting it to exit (``--print_config``, a parse error).

    Returns:
        ``(exit code, stdout, stderr)``.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_cli(args)
        except SystemExit as stop:
            return stop.code, out.getvalue(), err.getvalue()
    raise AssertionError(f"aurl {' '.join(args)} did not exit; stderr:\n{err.getvalue()}")


def printed_config(args: Sequence[str]) -> dict[str, Any]:
    """The config that ``aurl <args> --print_config`` prints, parsed."""
    code, out, err = cli_exit([*args, "--print_config"])
    assert code in (0, None), err
    # Lightning prints a "# lightning.pytorch==<version>" header first; anything a library
    # prints on import before it is covered by test_print_config_stdout_is_pure_yaml.
    return yaml.safe_load(out[out.index("# lightning.pytorch") :])


def aurl_subprocess(
    args: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess:
    """Runs ``python -m aurl.cli <args>`` and returns the completed process (output captured)."""
    return subprocess.run(
        [sys.executable, "-m", "aurl.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for ``MASTER_PORT``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- W&B offline runs ---------------------------------------------------------------------
# A `.wandb` file is a LevelDB-style log (what `wandb sync` uploads): a 7-byte file header
# (b":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each with a 7-byte header
# (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) and a piece of a serialised
# wandb_internal_pb2.Record. wandb 0.31 no longer ships a Python reader.
_WANDB_BLOCK = 32768
_WANDB_CHUNK_HEADER = struct.Struct("<IHB")


def read_wandb_records(path: Path) -> list[Any]:
    """The protobuf ``Record``s of an offline run's ``run-<id>.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"{path}: not a .wandb log"
    records, pending, pos = [], b"", 7
    while pos + _WANDB_CHUNK_HEADER.size <= len(data):
        left = _WANDB_BLOCK - pos % _WANDB_BLOCK
        if left < _WANDB_CHUNK_HEADER.size:  # block trailer padding
            pos += left
            continue
        _, length, kind = _WANDB_CHUNK_HEADER.unpack_from(data, pos)
        pos += _WANDB_CHUNK_HEADER.size
        chunk, pos = data[pos : pos + length], pos + length
        if kind == 0:  # zero padding up to the end of the block
            pos += left - _WANDB_CHUNK_HEADER.size - length
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_history_and_summary(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The logged rows (``wandb.log`` calls) and the final summary of a ``.wandb`` file."""

    def items(entries: Any) -> dict[str, Any]:
        return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}

    history, summary = [], {}
    for record in read_wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(items(record.history.item))
        elif kind == "summary":
            summary.update(items(record.summary.update))
    return history, summary


def _config_items(entries: Any) -> dict[str, Any]:
    return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}


def wandb_run_info(path: Path) -> dict[str, Any]:
    """The run fields (``group``, ``job_type``, ``notes``, ``tags``), the final config (each
    key's ``value``) and the logged artifacts (``name``, ``type``, ``aliases``, ``metadata``,
    ``files``) of a ``.wandb`` file."""
    info: dict[str, Any] = {"config": {}, "artifacts": []}
    for record in read_wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            info.update(
                group=run.run_group, job_type=run.job_type, notes=run.notes, tags=list(run.tags)
            )
            info["config"].update(_config_items(run.config.update))
        elif kind == "config":
            info["config"].update(_config_items(record.config.update))
        elif kind == "artifact":
            artifact = record.artifact
            info["artifacts"].append(
                {
                    "name": artifact.name,
                    "type": artifact.type,
                    "aliases": list(artifact.aliases),
                    "metadata": json.loads(artifact.metadata or "{}"),
                    "files": [entry.path for entry in artifact.manifest.contents],
                }
            )
    info["config"] = {
        key: value["value"] if isinstance(value, dict) and "value" in value else value
        for key, value in info["config"].items()
    }
    return info


# --- word vectors --------------------------------------------------------------------------
def vocabulary(class_names: Sequence[str]) -> list[str]:
    """Every content word of the (cleaned) class names, sorted: what Word2VecEncoder looks up."""
    return sorted({word for name in class_names for word in content_words(name)})


def write_word2vec(path: Path, words: Sequence[str], dim: int = 300, seed: int = 0) -> Path:
    """Writes random ``dim``-d vectors of ``words`` as binary word2vec (the GoogleNews format)."""
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(vector_size=dim)
    rng = np.random.default_rng(seed)
    vectors.add_vectors(list(words), rng.normal(size=(len(words), dim)).astype(np.float32))
    vectors.save_word2vec_format(str(path), binary=True)
    return path


# --- real dataset layouts ------------------------------------------------------------------
UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "PlayingCello"]
HMDB_CLASSES = ["brush_hair", "fall_floor", "ride_bike"]


def _place(source: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, path)


def build_kinetics700(root: Path, video: Path) -> tuple[Path, Path]:
    """One clip for every class of the official Kinetics-700 list, listed in a train.csv.

    Returns:
        ``(root, annotation file)``.
    """
    classes = (CLASS_LISTS / "kinetics700_classes.txt").read_text().splitlines()
    rows = ["label,youtube_id,time_start,time_end,split"]
    for k, label in enumerate(c for c in classes if c.strip()):
        youtube_id = f"yt{k:05d}"
        _place(video, root / "train" / label / f"{youtube_id}_000010_000020.mp4")
        rows.append(f'"{label}",{youtube_id},10,20,train')
    annotations = root / "annotations" / "train.csv"
    annotations.parent.mkdir(parents=True)
    annotations.write_text("\n".join(rows) + "\n")
    return root, annotations


def build_ucf101(root: Path, split_dir: Path, video: Path) -> tuple[Path, Path]:
    """UCF101 layout for :data:`UCF_CLASSES`: classInd, trainlist01/testlist01, 2 .avi each."""
    split_dir.mkdir(parents=True)
    (split_dir / "classInd.txt").write_text(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, start=1))
    )
    train, test = [], []
    for index, name in enumerate(UCF_CLASSES, start=1):
        # The official lists spell this class's files v_HandStandPushups_*.
        stem = "HandStandPushups" if name == "HandstandPushups" else name
        for group, listing in ((8, train), (1, test)):
            rel = f"{name}/v_{stem}_g{group:02d}_c01.avi"
            _place(video, root / rel)
            listing.append(f"{rel} {index}" if listing is train else rel)
    (split_dir / "trainlist01.txt").write_text("\r\n".join(train) + "\r\n")
    (split_dir / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    return root, split_dir


def build_hmdb51(root: Path, split_dir: Path, video: Path) -> tuple[Path, Path]:
    """HMDB51 layout for :data:`HMDB_CLASSES`: fold-1 split files, 2 .avi each (train, test)."""
    split_dir.mkdir(parents=True)
    for name in HMDB_CLASSES:
        lines = []
        for k, split_id in enumerate(("1", "2")):
            _place(video, root / name / f"{name}_clip_{k}.avi")
            lines.append(f"{name}_clip_{k}.avi {split_id} \n")
        (split_dir / f"{name}_test_split1.txt").write_text("".join(lines))
    return root, split_dir


def real_data_class_names() -> list[str]:
    """Cleaned class names of the Kinetics-700 list and the tiny UCF101/HMDB51 layouts."""
    kinetics = (CLASS_LISTS / "kinetics700_classes.txt").read_text().splitlines()
    return [
        *clean_class_names([c for c in kinetics if c.strip()], "kinetics"),
        *clean_class_names(UCF_CLASSES, "ucf101"),
        *clean_class_names(HMDB_CLASSES, "hmdb51"),
    ]


# Set in this process by an in-process DDP run (Lightning) or W&B run; a child that inherits them
# believes it was launched as one rank of an external job, or talks to this process's W&B.
_PROCESS_BOUND = (
    "LOCAL_RANK",
    "NODE_RANK",
    "GLOBAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WANDB_SERVICE",
)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child ``aurl``: offline, one thread, plus ``extra``,
    without the launcher and W&B variables bound to this process."""
    env = {k: v for k, v in os.environ.items() if k not in _PROCESS_BOUND}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "WANDB_MODE": "offline",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env
