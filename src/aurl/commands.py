"""`aurl predict` (open-vocabulary prediction) and `aurl check-data` (unreadable videos)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
import yaml

from aurl.text_encoders import check_texts

log = logging.getLogger(__name__)


def read_class_names(spec: str) -> list[str]:
    """Class names from a comma-separated list or, when ``spec`` names a file, one per line."""
    path = Path(spec)
    if "," not in spec and path.is_file():
        names = [line.strip() for line in path.read_text().splitlines()]
        names = [name for name in names if name and not name.startswith("#")]
        where = str(path)
    else:
        names = [name.strip() for name in spec.split(",") if name.strip()]
        where = "--classes"
    if len(names) < 2:
        raise ValueError(f"{where}: give at least two class names, got {names}")
    try:
        return check_texts(names)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error


def predict(
    checkpoint: str | Path,
    videos: Sequence[str | Path],
    class_names: list[str],
    top_k: int = 5,
    num_clips: int = 1,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Ranks ``class_names`` for each video with a trained checkpoint.

    The clip length, stride, frame size, transform and normalisation are the ones the
    checkpoint was trained with (stored by the datamodule's hyperparameters).

    Returns:
        One dict per video: ``{"path", "predictions": [{"class_name", "score"}, ...]}`` with
        the ``top_k`` classes by cosine similarity, best first (``"error"`` for an unreadable
        video instead of predictions).
    """
    from aurl.checkpoint_io import load_checkpoint
    from aurl.module import AURLModule
    from data_modules.clip_sampling import create_clip_sampler
    from data_modules.transforms import create_transform
    from data_modules.video_reader import VideoDecodeError, read_sampled_clips

    ckpt = load_checkpoint(checkpoint)
    data_hp = dict(ckpt.get("datamodule_hyper_parameters") or {})
    module = AURLModule.load_from_checkpoint(str(checkpoint), map_location=device)
    module.eval()
    sampler = create_clip_sampler(
        "uniform",
        clip_len=int(data_hp.get("clip_len", 16)),
        num_clips=num_clips,
        stride=int(data_hp.get("frame_stride", 1)),
    )
    transform = create_transform(
        data_hp.get("transform", "aurl"), train=False, size=int(data_hp.get("size", 112))
    )
    top_k = min(top_k, len(class_names))
    results = []
    with torch.no_grad():
        class_emb = module.embed_classes(class_names)  # (C, D)
        for path in videos:
            try:
                frames = read_sampled_clips(
                    path, lambda info: [clip.frame_indices for clip in sampler(info.num_frames)]
                )
            except VideoDecodeError as err:
                results.append({"path": str(path), "error": str(err)})
                continue
            video = torch.stack([transform(clip) for clip in frames])  # (K, C, T, H, W)
            video_emb = module.embed_videos(video[None].to(module.device))  # (1, D)
            scores, indices = (video_emb @ class_emb.T)[0].topk(top_k)  # (k,), (k,)
            results.append(
                {
                    "path": str(path),
                    "predictions": [
                        {"class_name": class_names[i], "score": round(float(s), 4)}
                        for s, i in zip(scores.tolist(), indices.tolist(), strict=True)
                    ],
                }
            )
    return results


def format_table(results: list[dict[str, Any]]) -> str:
    """Human-readable table of :func:`predict` results."""
    lines = []
    for result in results:
        lines.append(result["path"])
        if "error" in result:
            lines.append(f"  unreadable: {result['error']}")
            continue
        for rank, pred in enumerate(result["predictions"], start=1):
            lines.append(f"  {rank}. {pred['class_name']:<40} {pred['score']:+.4f}")
    return "\n".join(lines)


def load_catalogs(config_path: str | Path) -> list[Any]:
    """Video catalogs from a YAML file.

    The file holds either one catalog (``class_path`` + ``init_args``), a list of them, or an
    experiment config whose ``data.source`` and ``data.targets`` are catalogs.
    """
    from jsonargparse import ArgumentParser

    from data_modules.datasets import VideoCatalog

    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset config not found: {path}")
    raw = yaml.safe_load(path.read_text())
    if isinstance(raw, dict) and "data" in raw:
        specs = [raw["data"]["source"], *raw["data"].get("targets", [])]
    elif isinstance(raw, dict) and "class_path" in raw:
        specs = [raw]
    elif isinstance(raw, list):
        specs = raw
    else:
        raise ValueError(
            f"{path}: expected a catalog (class_path/init_args), a list of them, or an "
            "experiment config with data.source and data.targets"
        )
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--catalogs", type=list[VideoCatalog])
    config = parser.parse_object({"catalogs": specs})
    return parser.instantiate_classes(config).catalogs


def check_video(path: str) -> str | None:
    """Why ``path`` cannot be used (probe + decoding its first and last frames), or None."""
    from data_modules.video_reader import VideoDecodeError, read_sampled_clips

    try:
        read_sampled_clips(path, lambda info: [[0, max(0, info.num_frames - 1)]])
    except VideoDecodeError as err:
        return err.reason
    return None


def check_data(config_path: str | Path, workers: int = 4) -> list[tuple[str, str]]:
    """Lists ``(path, reason)`` of every unreadable video of the configured catalogs."""
    from tqdm import tqdm

    bad: list[tuple[str, str]] = []
    for catalog in load_catalogs(config_path):
        catalog.prepare()
        paths = [path for path, _ in catalog.samples]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            reasons = list(
                tqdm(
                    pool.map(check_video, paths), total=len(paths), desc=f"checking {catalog.name}"
                )
            )
        found = [(path, reason) for path, reason in zip(paths, reasons, strict=True) if reason]
        log.info("%s: %d videos, %d unreadable", catalog.name, len(paths), len(found))
        bad.extend(found)
    return bad


def main(argv: list[str]) -> int:
    """Runs ``aurl predict`` or ``aurl check-data``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="aurl")
    commands = parser.add_subparsers(dest="command", required=True)
    pred = commands.add_parser("predict", help="rank class names for video files")
    pred.add_argument("videos", nargs="+", help="video files")
    pred.add_argument("--checkpoint", "--ckpt_path", required=True, help="a trained .ckpt")
    pred.add_argument(
        "--classes", required=True, help="comma-separated class names, or a text file (one a line)"
    )
    pred.add_argument("--top_k", type=int, default=5)
    pred.add_argument("--clips", type=int, default=1, help="clips per video, averaged")
    pred.add_argument("--format", choices=("table", "json"), default="table")
    pred.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    check = commands.add_parser("check-data", help="list the unreadable videos of a dataset")
    check.add_argument("config", help="YAML: a catalog, a list of catalogs, or an experiment")
    check.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)

    if args.command == "predict":
        results = predict(
            args.checkpoint,
            args.videos,
            read_class_names(args.classes),
            top_k=args.top_k,
            num_clips=args.clips,
            device=args.device,
        )
        print(json.dumps(results, indent=2) if args.format == "json" else format_table(results))
        return 0 if all("error" not in r for r in results) else 1
    bad = check_data(args.config, workers=args.workers)
    for path, reason in bad:
        print(f"{path}\t{reason}")
    print(f"{len(bad)} unreadable videos", file=sys.stderr)
    return 1 if bad else 0
