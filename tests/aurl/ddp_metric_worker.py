"""Computes aurl.metrics in a 2-process gloo group; launched in a subprocess by test_metrics.py.

Usage: ``python ddp_metric_worker.py DATA OUT_DIR PORT``. ``DATA`` is a ``torch.save``d dict
``{scenario: {"shards": [(embeddings, labels) per rank], "class_embeddings": (C, D),
"num_classes": C, "batch_size": B}}``. Each rank feeds its own shard batch by batch to every
metric, computes (which syncs over the group), and saves ``{scenario: {metric: value}}`` to
``OUT_DIR/rank<r>.pt``. The references stay in the test process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from aurl.metrics import Closeness, Dispersion, ZeroShotAccuracy

WORLD_SIZE = 2


def _run_scenario(scenario: dict, rank: int) -> dict[str, object]:
    num_classes = scenario["num_classes"]
    class_embeddings = scenario["class_embeddings"]
    metrics = {
        "top1": ZeroShotAccuracy(top_k=1),
        "top3": ZeroShotAccuracy(top_k=3),
        "dispersion": Dispersion(num_classes),
        "mean_centre_distance": Dispersion(num_classes, reduction="mean"),
        "closeness": Closeness(),
    }
    embeddings, labels = scenario["shards"][rank]
    step = scenario["batch_size"]
    for start in range(0, embeddings.shape[0], step):
        batch, batch_labels = embeddings[start : start + step], labels[start : start + step]
        for name, metric in metrics.items():
            if name.startswith("top"):
                metric.update(batch, class_embeddings, batch_labels)
            else:
                metric.update(batch, batch_labels)
    results = {name: metric.compute() for name, metric in metrics.items()}
    # What the module's test epoch uses: Closeness's own copy of the embeddings, gathered.
    results["closeness_gathered"] = metrics["closeness"].gathered()
    return results


def _worker(rank: int, data_path: str, out_dir: str, port: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        data = torch.load(data_path)
        results = {name: _run_scenario(scenario, rank) for name, scenario in data.items()}
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def main(argv: list[str]) -> None:
    data_path, out_dir, port = argv
    # Fork, so that torch and torchmetrics (slow to import) are imported once, not per rank.
    mp.start_processes(
        _worker,
        args=(data_path, out_dir, int(port)),
        nprocs=WORLD_SIZE,
        join=True,
        start_method="fork",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
