"""`aurl predict` (open-vocabulary prediction), `aurl embed` and `aurl classify` (an embedding
index ranked against changing class lists), `aurl export` (a weights-only model file),
`aurl check-data` (unreadable videos) and `aurl prepare-data` (videos transcoded for fast
training reads)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from aurl.text_encoders import check_texts

if TYPE_CHECKING:
    from aurl.embedding_index import EmbeddingIndex
    from aurl.zero_shot import ZeroShotClassifier
    from data_modules.datasets import VideoCatalog
    from data_modules.prepare import PrepareResult, PrepareSettings
    from data_modules.shards import ShardIndex

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


def load_classifier(
    model: str | Path, device: str = "cpu", text_encoder: str | None = None
) -> ZeroShotClassifier:
    """A :class:`~aurl.zero_shot.ZeroShotClassifier` from a ``.ckpt`` or an ``aurl export``
    file (``.safetensors``); ``text_encoder`` is a word-vector file replacing the training
    encoder."""
    from aurl.zero_shot import ZeroShotClassifier

    if Path(model).suffix == ".safetensors":
        return ZeroShotClassifier.from_export(model, device, text_encoder)
    return ZeroShotClassifier.from_checkpoint(model, device, text_encoder)


def predict(
    classifier: ZeroShotClassifier,
    videos: Sequence[str | Path],
    class_names: list[str],
    top_k: int = 5,
    num_clips: int = 1,
    batch_size: int = 8,
    num_workers: int = 0,
) -> list[dict[str, Any]]:
    """Ranks ``class_names`` for each video (see :meth:`ZeroShotClassifier.classify`).

    Returns:
        One dict per video: ``{"path", "predictions": [{"class_name", "score",
        "probability"}, ...]}`` with the ``top_k`` classes by cosine similarity (``score``),
        best first (``"error"`` for an unreadable video instead of predictions).
    """
    results = []
    for pred in classifier.classify(
        videos, class_names, top_k, None, num_clips, batch_size, num_workers
    ):
        if pred.error is not None:
            results.append({"path": pred.video, "error": pred.error})
        else:
            results.append(_ranking(pred.video, pred.class_names, pred.scores, pred.probabilities))
    return results


def _ranking(
    path: str, class_names: Sequence[str], scores: Sequence[float], probabilities: Sequence[float]
) -> dict[str, Any]:
    """One video's result as :func:`predict` and :func:`classify_index` report it."""
    ranked = zip(class_names, scores, probabilities, strict=True)
    return {
        "path": path,
        "predictions": [
            {"class_name": name, "score": round(s, 4), "probability": round(p, 4)}
            for name, s, p in ranked
        ],
    }


def video_paths(inputs: Sequence[str | Path]) -> list[str]:
    """Video files from files and folders (searched recursively for video extensions)."""
    from data_modules.datasets import VIDEO_EXTENSIONS

    paths: list[str] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p for p in item.rglob("*") if p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS
            )
            if not found:
                raise FileNotFoundError(f"no video files ({VIDEO_EXTENSIONS}) under {item}")
            paths.extend(map(str, found))
        elif item.is_file():
            paths.append(str(item))
        else:
            raise FileNotFoundError(f"video or folder not found: {item}")
    return paths


def embed(
    classifier: ZeroShotClassifier,
    videos: Sequence[str],
    output: str | Path,
    num_clips: int = 1,
    batch_size: int = 8,
    num_workers: int = 0,
    chunk: int = 256,
) -> EmbeddingIndex:
    """Embeds ``videos`` into the index file ``output``, saved after every ``chunk`` videos.

    An existing ``output`` is resumed: its videos (embedded or unreadable) are skipped.

    Raises:
        ValueError: if ``output`` holds embeddings of another model.
    """
    from aurl.embedding_index import EmbeddingIndex

    model = classifier.fingerprint()
    index = EmbeddingIndex.load(output) if Path(output).exists() else EmbeddingIndex(model)
    if index.model != model:
        raise ValueError(
            f"{output} holds embeddings of another model ({index.model}, this one is {model}); "
            "write a new index"
        )
    done = index.done()  # one set: a collection holds 10^5-10^6 videos
    todo = [path for path in dict.fromkeys(videos) if path not in done]
    log.info("%s: %d videos indexed, %d to embed", output, len(index), len(todo))
    for start in range(0, len(todo), chunk):
        paths = todo[start : start + chunk]
        encoded = classifier.encode_videos(paths, num_clips, batch_size, num_workers)
        readable = [i for i, error in enumerate(encoded.errors) if error is None]
        index.add(
            [paths[i] for i in readable], encoded.embeddings[readable], [num_clips] * len(readable)
        )
        index.failed.update(
            (paths[i], error) for i, error in enumerate(encoded.errors) if error is not None
        )
        index.save(output)
    if not todo:
        index.save(output)
    return index


def classify_index(
    classifier: ZeroShotClassifier,
    index_path: str | Path,
    class_names: list[str],
    top_k: int = 5,
    templates: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Ranks ``class_names`` for every video of an embedding index, without decoding.

    Returns:
        One dict per indexed video, as :func:`predict` gives (unreadable videos of the index
        come last, with their ``"error"``).

    Raises:
        ValueError: if the index was made by another model than ``classifier``.
    """
    from aurl.embedding_index import EmbeddingIndex, rank_classes

    index = EmbeddingIndex.load(index_path)
    model = classifier.fingerprint()
    if index.model != model:
        raise ValueError(
            f"{index_path} was embedded by another model ({index.model}) than this one "
            f"({model}): classify with the model that made it"
        )
    class_emb = classifier.encode_classes(class_names, templates).cpu()  # (C, D)
    videos = torch.from_numpy(index.embeddings)  # (N, D)
    top, cosines, probabilities = rank_classes(videos, class_emb, top_k, classifier.scale)
    results = [
        _ranking(path, [class_names[j] for j in idx], cos, prob)
        for path, idx, cos, prob in zip(
            index.paths, top.tolist(), cosines.tolist(), probabilities.tolist(), strict=True
        )
    ]
    results += [{"path": path, "error": error} for path, error in index.failed.items()]
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
            name, score, probability = pred["class_name"], pred["score"], pred["probability"]
            lines.append(f"  {rank}. {name:<40} {score:+.4f}  p={probability:.3f}")
    return "\n".join(lines)


def catalog_specs(config_path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """The catalog specs (``class_path`` + ``init_args``) of a YAML file, with their keys.

    The file holds either one catalog, a list of them, or an experiment config whose
    ``data.source`` and ``data.targets`` (or ``data.init_args.source`` and ``.targets``) are
    catalogs.

    Returns:
        ``(key, spec)`` pairs; the key says where the spec is (``"data.targets[1]"``).
    """
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset config not found: {path}")
    raw = yaml.safe_load(path.read_text())
    if isinstance(raw, dict) and "data" in raw:
        data, key = raw["data"], "data"
        if isinstance(data, dict) and "init_args" in data:
            data, key = data["init_args"], "data.init_args"
        targets = data.get("targets") or []
        return [
            (f"{key}.source", data["source"]),
            *((f"{key}.targets[{k}]", spec) for k, spec in enumerate(targets)),
        ]
    if isinstance(raw, dict) and "class_path" in raw:
        return [("", raw)]
    if isinstance(raw, list):
        return [(f"[{k}]", spec) for k, spec in enumerate(raw)]
    raise ValueError(
        f"{path}: expected a catalog (class_path/init_args), a list of them, or an "
        "experiment config with data.source and data.targets"
    )


def instantiate_catalogs(specs: Sequence[dict[str, Any]]) -> list[VideoCatalog]:
    """Catalogs from their specs (``class_path`` + ``init_args``), as LightningCLI builds them."""
    from jsonargparse import ArgumentParser

    from data_modules.datasets import VideoCatalog

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--catalogs", type=list[VideoCatalog])
    config = parser.parse_object({"catalogs": list(specs)})
    return parser.instantiate_classes(config).catalogs


def load_catalogs(config_path: str | Path) -> list[Any]:
    """Video catalogs from a YAML file (see :func:`catalog_specs`)."""
    return instantiate_catalogs([spec for _, spec in catalog_specs(config_path)])


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


def prepare_data(
    config_path: str | Path,
    output: str | Path,
    settings: PrepareSettings,
    catalog: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[tuple[str, PrepareResult, str | None]]:
    """Prepares the configured catalogs (or the one named ``catalog``) into ``output/<name>``.

    Catalogs sharing a root share its prepared folder (named after the first). Each prepared
    folder is then checked: the catalog, built from its spec with ``root`` set to the folder,
    must list the same samples (with prepared file names) and classes.

    Returns:
        ``(config key, result, problem)`` per catalog; ``problem`` says how the prepared
        catalog differs (None when it lists the same samples; not checked when videos failed).

    Raises:
        ValueError: ``catalog`` names no configured catalog, or two catalogs of one name have
            different roots.
    """
    from data_modules.prepare import prepare_catalog

    specs = catalog_specs(config_path)
    catalogs = instantiate_catalogs([spec for _, spec in specs])
    names = [c.name for c in catalogs]
    if catalog is not None and catalog not in names:
        raise ValueError(f"--catalog {catalog!r}: the config's catalogs are {', '.join(names)}")
    folders: dict[Path, Path] = {}
    reports = []
    for (key, spec), source in zip(specs, catalogs, strict=True):
        if catalog is not None and source.name != catalog:
            continue
        source.prepare()
        root = source.layout().root.resolve()
        folder = folders.setdefault(root, Path(output).resolve() / source.name)
        others = [r for r, f in folders.items() if f == folder and r != root]
        if others:
            raise ValueError(
                f"two catalogs named {source.name!r} have different roots ({others[0]}, {root}): "
                "give them distinct names"
            )
        result = prepare_catalog(source, folder, settings, workers, progress)
        problem = None if result.failed else _compare_prepared(spec, source, folder)
        reports.append((key, result, problem))
    return reports


def prepare_shards(
    config_path: str | Path,
    output: str,
    settings: PrepareSettings,
    catalog: str | None = None,
    workers: int | None = None,
    storage_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[tuple[str, str, ShardIndex, float]]:
    """Transcodes the configured catalogs (or the one named ``catalog``) into litdata shards.

    Each catalog goes to ``output/<name>`` (a local folder or ``s3://bucket/prefix/<name>``):
    its videos transcoded as :func:`~data_modules.prepare.transcode_video` does, one shard item
    per video, with the class space in the sidecar (:mod:`data_modules.shards`). A config then
    reads it with ``class_path: data_modules.datasets.StreamingShards``.

    Args:
        config_path: YAML with a catalog, a list of catalogs, or an experiment.
        output: local folder or ``s3://bucket/prefix`` under which each catalog's shards go.
        settings: the transcoding settings (recorded in the sidecar).
        catalog: prepare only the catalog of this name.
        workers: encoding processes (default: one per core).
        storage_options: boto3 client options of a remote ``output`` (``endpoint_url``...).
        progress: show litdata's progress.

    Returns:
        ``(config key, shard folder, sidecar, seconds)`` per catalog.

    Raises:
        ValueError: ``catalog`` names no configured catalog, or every video of one failed.
        RuntimeError: a shard folder already holds shards.
    """
    from dataclasses import asdict
    from functools import partial

    from data_modules.prepare import transcode_video, usable_cores
    from data_modules.shards import allow_plain_http, write_catalog_shards

    specs = catalog_specs(config_path)
    catalogs = instantiate_catalogs([spec for _, spec in specs])
    names = [c.name for c in catalogs]
    if catalog is not None and catalog not in names:
        raise ValueError(f"--catalog {catalog!r}: the config's catalogs are {', '.join(names)}")
    allow_plain_http(storage_options)
    reports = []
    for (key, _), source in zip(specs, catalogs, strict=True):
        if catalog is not None and source.name != catalog:
            continue
        source.prepare()
        folder = f"{output.rstrip('/')}/{source.name}"
        if "://" not in folder:
            folder = str(Path(folder).resolve())
        start = time.perf_counter()
        index = write_catalog_shards(
            source,
            folder,
            encode=partial(transcode_video, settings=settings),
            encode_settings={"format": "litdata", **asdict(settings)},
            num_workers=workers or usable_cores(),
            storage_options=storage_options,
            start_method="fork" if storage_options else None,
            verbose=progress,
        )
        reports.append((key, folder, index, time.perf_counter() - start))
    return reports


def _compare_prepared(spec: dict[str, Any], source: VideoCatalog, folder: Path) -> str | None:
    """How the catalog of ``spec`` with ``root`` set to ``folder`` lists other samples than
    ``source`` (with prepared names), or None."""
    from data_modules.prepare import prepared_path

    moved = {**spec, "init_args": {**(spec.get("init_args") or {}), "root": str(folder)}}
    try:
        prepared = instantiate_catalogs([moved])[0]
        found = [(str(Path(p).relative_to(folder)), label) for p, label in prepared.samples]
    except (OSError, ValueError) as error:
        return f"listing it fails: {error}"
    root = source.layout().root
    expected = [
        (str(prepared_path(Path(p).relative_to(root))), label) for p, label in source.samples
    ]
    if prepared.class_names != source.class_names:
        return "it lists other classes"
    if found != expected:
        absent = sorted(set(expected) - set(found))[:3]
        return f"it lists {len(found)} of the {len(expected)} samples expected (absent: {absent})"
    return None


def main(argv: list[str]) -> int:
    """Runs ``aurl predict``, ``embed``, ``classify``, ``export``, ``check-data`` or
    ``prepare-data``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="aurl")
    commands = parser.add_subparsers(dest="command", required=True)
    pred = commands.add_parser("predict", help="rank class names for video files")
    pred.add_argument("videos", nargs="+", help="video files")
    pred.add_argument(
        "--checkpoint",
        "--ckpt_path",
        required=True,
        help="a trained .ckpt, or an `aurl export` file (.safetensors)",
    )
    pred.add_argument(
        "--classes", required=True, help="comma-separated class names, or a text file (one a line)"
    )
    pred.add_argument("--top_k", type=int, default=5)
    pred.add_argument("--clips", type=int, default=1, help="clips per video, averaged")
    pred.add_argument("--format", choices=("table", "json"), default="table")
    pred.add_argument("--batch_size", type=int, default=8, help="videos per forward pass")
    pred.add_argument("--num_workers", type=int, default=2, help="DataLoader workers")
    pred.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    pred.add_argument(
        "--word2vec", help="a word-vector file replacing the training text encoder's"
    )
    emb = commands.add_parser("embed", help="embed videos into an index (resumable)")
    emb.add_argument("videos", nargs="+", help="video files or folders (searched recursively)")
    emb.add_argument("--checkpoint", "--ckpt_path", required=True, help="a .ckpt or export")
    emb.add_argument("--output", required=True, help="the index file (.npz), resumed if present")
    emb.add_argument("--clips", type=int, default=1, help="clips per video, averaged")
    emb.add_argument("--batch_size", type=int, default=8, help="videos per forward pass")
    emb.add_argument("--num_workers", type=int, default=2, help="DataLoader workers")
    emb.add_argument("--chunk", type=int, default=256, help="videos between two saves")
    emb.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    cls = commands.add_parser("classify", help="rank class names for an embedding index")
    cls.add_argument("--index", required=True, help="an `aurl embed` index (.npz)")
    cls.add_argument("--checkpoint", "--ckpt_path", required=True, help="the model of the index")
    cls.add_argument(
        "--classes", required=True, help="comma-separated class names, or a text file (one a line)"
    )
    cls.add_argument("--top_k", type=int, default=5)
    cls.add_argument(
        "--template", action="append", help='a prompt template such as "a video of {}" (repeat)'
    )
    cls.add_argument("--format", choices=("table", "json"), default="table")
    cls.add_argument("--output", help="write the results to this file instead of stdout")
    cls.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    for sub in (emb, cls):
        sub.add_argument(
            "--word2vec", help="a word-vector file replacing the training text encoder's"
        )
    export = commands.add_parser("export", help="write a weights-only model file")
    export.add_argument("--checkpoint", "--ckpt_path", required=True, help="a trained .ckpt")
    export.add_argument("--output", required=True, help="the file to write (.safetensors)")
    export.add_argument(
        "--word2vec", help="a word-vector file replacing the training text encoder's"
    )
    check = commands.add_parser("check-data", help="list the unreadable videos of a dataset")
    check.add_argument("config", help="YAML: a catalog, a list of catalogs, or an experiment")
    check.add_argument("--workers", type=int, default=4)
    prep = commands.add_parser(
        "prepare-data", help="transcode a dataset's videos for fast training reads (resumable)"
    )
    prep.add_argument("config", help="YAML: a catalog, a list of catalogs, or an experiment")
    prep.add_argument("--output", required=True, help="folder of the prepared catalogs")
    prep.add_argument("--catalog", help="prepare only the catalog of this name")
    prep.add_argument(
        "--format",
        choices=("files", "litdata"),
        default="files",
        help="files: the same layout, resumable; litdata: shards for StreamingShards",
    )
    prep.add_argument(
        "--endpoint_url", help="S3-compatible endpoint of an s3:// --output (litdata)"
    )
    prep.add_argument("--short_side", type=int, default=128, help="output short side (pixels)")
    prep.add_argument(
        "--keyframe_interval", type=int, default=16, help="a keyframe every N frames"
    )
    prep.add_argument("--crf", type=int, default=23, help="x264 quality (lower: larger files)")
    prep.add_argument("--preset", default="veryfast", help="x264 speed preset")
    prep.add_argument("--workers", type=int, help="processes (default: one per usable core)")
    args = parser.parse_args(argv)

    if args.command == "predict":
        class_names = read_class_names(args.classes)
        classifier = load_classifier(args.checkpoint, args.device, args.word2vec)
        results = predict(
            classifier,
            args.videos,
            class_names,
            top_k=args.top_k,
            num_clips=args.clips,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
        )
        print(json.dumps(results, indent=2) if args.format == "json" else format_table(results))
        return 0 if all("error" not in r for r in results) else 1
    if args.command == "embed":
        classifier = load_classifier(args.checkpoint, args.device, args.word2vec)
        index = embed(
            classifier,
            video_paths(args.videos),
            args.output,
            num_clips=args.clips,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            chunk=args.chunk,
        )
        print(f"{args.output}: {len(index)} videos embedded, {len(index.failed)} unreadable")
        return 0
    if args.command == "classify":
        class_names = read_class_names(args.classes)
        classifier = load_classifier(args.checkpoint, args.device, args.word2vec)
        results = classify_index(classifier, args.index, class_names, args.top_k, args.template)
        text = json.dumps(results, indent=2) if args.format == "json" else format_table(results)
        if args.output:
            Path(args.output).write_text(text + "\n")
        else:
            print(text)
        return 0
    if args.command == "export":
        from aurl.zero_shot import ZeroShotClassifier

        classifier = ZeroShotClassifier.from_checkpoint(args.checkpoint, "cpu", args.word2vec)
        print(classifier.export(args.output))
        return 0
    if args.command == "prepare-data":
        from data_modules.prepare import PrepareSettings

        settings = PrepareSettings(args.short_side, args.keyframe_interval, args.crf, args.preset)
        if args.format == "litdata":
            options = {"endpoint_url": args.endpoint_url} if args.endpoint_url else None
            shards = prepare_shards(
                args.config, args.output, settings, args.catalog, args.workers, options
            )
            for key, folder, index, seconds in shards:
                print(
                    f"{index.catalog_name}: {len(index.labels)} videos in shards at {folder} "
                    f"({len(index.failed)} unreadable, listed in its sidecar) in {seconds:.0f} s"
                )
                where = key or "the catalog"
                print(
                    f"  in the config, set {where} to class_path: "
                    f"data_modules.datasets.StreamingShards, init_args.input_dir: {folder}"
                )
            return 0
        reports = prepare_data(args.config, args.output, settings, args.catalog, args.workers)
        for key, result, problem in reports:
            print(result.summary())
            if result.failed:
                print(f"  not checked: {len(result.failed)} videos failed")
            elif problem is not None:
                print(f"  WARNING: with root {result.output}, the catalog differs: {problem}")
            where = f"{key}.init_args.root" if key else "init_args.root"
            print(f"  in the config, set {where}: {result.output}")
        return 0 if all(problem is None for _, _, problem in reports) else 1
    bad = check_data(args.config, workers=args.workers)
    for path, reason in bad:
        print(f"{path}\t{reason}")
    print(f"{len(bad)} unreadable videos", file=sys.stderr)
    return 1 if bad else 0
