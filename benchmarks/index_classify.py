"""`aurl classify` on an embedding index: 10,000 videos against 1,000 class names on one core.

What a changing taxonomy costs once its videos are indexed (``aurl embed``): loading the index,
embedding the class names (MiniLM, then the semantic tower) and ranking every video. Timed
three ways, interleaved: ``warm`` (the class names' text embeddings are in the on-disk cache, as
for a taxonomy classified before), ``cold`` (a fresh cache: MiniLM encodes all names) and
``rank`` (the matrix product, top-k and softmax alone). The model is the synthetic experiments'
architecture with random weights (timing does not depend on the weights); the index holds
random unit vectors of its embedding size.

    python -m benchmarks.index_classify [--quick] [--videos 10000] [--classes 1000]
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


def run(num_videos: int, num_classes: int, repeats: int, seed: int) -> dict[str, Any]:
    """Times the three ways of classifying; returns the benchmark's record."""
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
        "machine": machine_info(),
    }


def _markdown(results: dict[str, Any]) -> list[tuple[str, str]]:
    what = {
        "warm": "`aurl classify` (load index, cached class names, rank, results)",
        "cold": "the same with an empty class-embedding cache (MiniLM encodes every name)",
        "rank": "ranking alone (cosines, top-5, softmax)",
    }
    rows = [
        [name, what[name], f"{s['best']:.3f}", f"{s['median']:.3f}", f"{s['worst']:.3f}"]
        for name, s in results["seconds"].items()
    ]
    table = markdown_table(["run", "what", "best s", "median s", "worst s"], rows)
    title = f"{results['videos']} videos x {results['classes']} classes, one thread"
    return [(title, table)]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints its table and writes ``index_classify[_quick].{json,md}``.

    Returns:
        The results written to the JSON file (without ``name``, ``created``, ``command``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = create_parser("index_classify", __doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    videos, classes = (1_000, 100) if args.quick else (args.videos, args.classes)
    results = run(videos, classes, args.repeats, args.seed)
    publish("index_classify", argv, results, _markdown(results), args.out_dir, args.quick)
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
