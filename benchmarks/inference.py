"""Zero-shot inference: the classifier's reading speed, and `aurl classify` on an index.

1. ``classifier``: :meth:`aurl.ZeroShotClassifier.classify` on synthetic videos (paths in,
   rankings out, batched through a DataLoader) against the training loader's evaluation path
   (``VideoClipDataset`` + ``collate_skip``, the visual tower's forward), same clips, batch size
   and workers, interleaved; the issue's target is a ratio of at least 0.9.
2. ``index``: what a changing taxonomy costs once its videos are indexed (``aurl embed``):
   loading the index, embedding the class names (MiniLM, then the semantic tower) and ranking
   every video, 10,000 videos against 1,000 names on one thread. Timed three ways,
   interleaved: ``warm`` (the names' text embeddings in the on-disk cache, as for a taxonomy
   classified before), ``cold`` (a fresh cache: MiniLM encodes every name) and ``rank`` (the
   matrix product, top-k and softmax alone).

The model is the synthetic experiments' architecture with random weights (speed does not depend
on the weights); the index holds random unit vectors of its embedding size.

    python -m benchmarks.inference [--quick] [--videos 10000] [--classes 1000]
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from aurl.class_names import clean_class_names
from aurl.embedding_index import EmbeddingIndex, rank_classes
from aurl.text_encoders import create_text_encoder
from aurl.towers import SemanticTower, VisualTower
from aurl.zero_shot import Preprocessing, ZeroShotClassifier
from benchmarks.common import (
    create_parser,
    interleave,
    machine_info,
    markdown_table,
    publish,
    summarize,
)
from data_modules.datasets import CLASS_LISTS, read_class_list
from data_modules.synthetic import COLOURS, MOTIONS, SHAPES, synthetic_class_names

logger = logging.getLogger(__name__)


def class_names(count: int) -> list[str]:
    """``count`` distinct class names: Kinetics-700, UCF101 and HMDB51 (cleaned), then every
    composition of the synthetic vocabulary."""
    ucf = [
        line.split()[1]
        for line in (CLASS_LISTS / "ucf101_classInd.txt").read_text().split("\n")
        if line.strip()
    ]
    names = [
        *clean_class_names(read_class_list(CLASS_LISTS / "kinetics700_classes.txt"), "kinetics"),
        *clean_class_names(ucf, "ucf101"),
        *clean_class_names(read_class_list(CLASS_LISTS / "hmdb51_classes.txt"), "hmdb51"),
        *synthetic_class_names(tuple(COLOURS), SHAPES, MOTIONS),
    ]
    distinct = list(dict.fromkeys(names))
    if len(distinct) < count:
        raise ValueError(f"only {len(distinct)} distinct class names available, asked {count}")
    return distinct[:count]


def create_classifier(cache_dir: Path) -> ZeroShotClassifier:
    """The synthetic experiments' towers (random weights) with the shipped MiniLM encoder."""
    visual = VisualTower(
        "r2plus1d_narrow",
        {"widths": [16, 32, 64, 128], "pool": "avgmax"},
        embed_dim=256,
        hidden_dim=512,
    )
    semantic = SemanticTower(384, fc_dim=256, hidden_dim=512, embed_dim=256)
    return ZeroShotClassifier(
        visual,
        semantic,
        create_text_encoder("sentence-transformers"),
        Preprocessing(clip_len=8, frame_stride=2, size=32, transform="aurl"),
        embedding_cache_dir=cache_dir,
    )


def create_index(classifier: ZeroShotClassifier, num_videos: int, seed: int) -> EmbeddingIndex:
    """An index of ``num_videos`` random unit vectors made "by" ``classifier``."""
    gen = torch.Generator().manual_seed(seed)
    dim = classifier.visual_tower.embed_dim
    index = EmbeddingIndex(classifier.fingerprint())
    embeddings = torch.randn(num_videos, dim, generator=gen)  # (N, D)
    index.add([f"video{k:06d}.mp4" for k in range(num_videos)], embeddings, [1] * num_videos)
    return index


def bench_index(num_videos: int, num_classes: int, repeats: int, seed: int) -> dict[str, Any]:
    """Times the three ways of classifying an index; returns their record."""
    from aurl.commands import classify_index

    torch.set_num_threads(1)
    names = class_names(num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        classifier = create_classifier(root / "warm_cache")
        index_path = create_index(classifier, num_videos, seed).save(root / "index.npz")
        classify_index(classifier, index_path, names)  # fills the warm cache, loads MiniLM
        class_emb = classifier.encode_classes(names)  # (C, D)
        videos = torch.from_numpy(EmbeddingIndex.load(index_path).embeddings)  # (N, D)
        cold_caches = iter(range(repeats))

        def warm() -> float:
            start = time.perf_counter()
            results = classify_index(classifier, index_path, names)
            assert len(results) == num_videos
            return time.perf_counter() - start

        def cold() -> float:
            classifier.embedding_cache = type(classifier.embedding_cache)(
                root / f"cold_cache_{next(cold_caches)}"
            )
            try:
                return warm()
            finally:
                classifier.embedding_cache = type(classifier.embedding_cache)(root / "warm_cache")

        def rank() -> float:
            start = time.perf_counter()
            rank_classes(videos, class_emb, 5, classifier.scale)
            return time.perf_counter() - start

        times = interleave({"warm": warm, "cold": cold, "rank": rank}, repeats, label="classify")
    return {
        "videos": num_videos,
        "classes": num_classes,
        "embed_dim": int(class_emb.shape[1]),
        "torch_threads": 1,
        "seconds": {name: summarize(values) for name, values in times.items()},
    }


def bench_classifier(
    root: Path, num_videos: int, batch_size: int, workers: int, repeats: int
) -> dict[str, Any]:
    """Clips/s of ``ZeroShotClassifier.classify`` and of the evaluation loader path, one clip a
    video, on ``num_videos`` synthetic videos; returns their record."""
    from data_modules.clip_dataset import VideoClipDataset, collate_skip
    from data_modules.clip_sampling import create_clip_sampler
    from data_modules.datasets import SyntheticActions
    from data_modules.transforms import create_transform

    catalog = SyntheticActions(  # 8 classes, 16-frame 32x32 videos
        root / "videos",
        part="all",
        colours=["red", "green"],
        shapes=["square", "circle"],
        motions=["moving left", "moving right"],
        videos_per_class=-(-num_videos // 8),
        num_unseen=1,
    )
    samples = list(catalog.samples)[:num_videos]
    paths = [path for path, _ in samples]
    classifier = create_classifier(root / "cache")
    prep = classifier.preprocessing
    names = list(catalog.class_names)
    classifier.classify(paths[:2], names, progress=False)  # loads MiniLM, fills the cache

    def classify() -> float:
        start = time.perf_counter()
        results = classifier.classify(
            paths, names, 5, None, 1, batch_size, workers, progress=False
        )
        assert all(r.error is None for r in results)
        return time.perf_counter() - start

    def evaluation_path() -> float:
        transform = create_transform(prep.transform, train=False, size=prep.size)
        dataset = VideoClipDataset(
            samples,
            names,
            create_clip_sampler("uniform", prep.clip_len, 1, prep.frame_stride),
            transform,
        )
        loader = DataLoader(dataset, batch_size, num_workers=workers, collate_fn=collate_skip)
        start = time.perf_counter()
        with torch.no_grad():
            for batch in loader:
                video = transform.to_model_input(batch["video"])  # (B, C, T, H, W)
                F.normalize(classifier.visual_tower(video), dim=-1)  # (B, D)
        return time.perf_counter() - start

    times = interleave(
        {"classifier": classify, "evaluation loader": evaluation_path}, repeats, label="read"
    )
    clips_per_s = {name: num_videos / summarize(v)["best"] for name, v in times.items()}
    return {
        "videos": num_videos,
        "batch_size": batch_size,
        "workers": workers,
        "torch_threads": torch.get_num_threads(),
        "seconds": {name: summarize(values) for name, values in times.items()},
        "clips_per_s_best": clips_per_s,
        "ratio_best": clips_per_s["classifier"] / clips_per_s["evaluation loader"],
    }


def _markdown(results: dict[str, Any]) -> list[tuple[str, str]]:
    reading = results["classifier"]
    rows = [
        [
            name,
            f"{s['best']:.3f}",
            f"{s['median']:.3f}",
            f"{reading['clips_per_s_best'][name]:.1f}",
        ]
        for name, s in reading["seconds"].items()
    ]
    title = (
        f"classify {reading['videos']} videos, batch {reading['batch_size']}, "
        f"{reading['workers']} workers: classifier / evaluation loader = "
        f"{reading['ratio_best']:.2f}"
    )
    sections = [(title, markdown_table(["run", "best s", "median s", "clips/s (best)"], rows))]
    index = results["index"]
    what = {
        "warm": "`aurl classify` (load index, cached class names, rank, results)",
        "cold": "the same with an empty class-embedding cache (MiniLM encodes every name)",
        "rank": "ranking alone (cosines, top-5, softmax)",
    }
    rows = [
        [name, what[name], f"{s['best']:.3f}", f"{s['median']:.3f}", f"{s['worst']:.3f}"]
        for name, s in index["seconds"].items()
    ]
    title = f"index: {index['videos']} videos x {index['classes']} classes, one thread"
    sections.append(
        (title, markdown_table(["run", "what", "best s", "median s", "worst s"], rows))
    )
    return sections


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints its tables and writes ``inference[_quick].{json,md}``.

    Returns:
        The results written to the JSON file (without ``name``, ``created``, ``command``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = create_parser("inference", __doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=10_000, help="videos of the index")
    parser.add_argument("--classes", type=int, default=1_000, help="class names of the index")
    parser.add_argument("--clips", type=int, default=64, help="videos the classifier reads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    videos, classes = (1_000, 100) if args.quick else (args.videos, args.classes)
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        reading = bench_classifier(Path(tmp), args.clips, 16, args.workers, args.repeats)
    results = {
        "classifier": reading,
        "index": bench_index(videos, classes, args.repeats, args.seed),
        "machine": machine,
    }
    publish("inference", argv, results, _markdown(results), args.out_dir, args.quick)
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
