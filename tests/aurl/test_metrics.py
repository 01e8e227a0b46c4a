"""aurl.metrics: batch accumulation and DDP (2-process gloo, uneven shards) equal the functional
value on the union of the data; aurl.functional itself is checked against numpy in
test_functional.py."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aurl.functional import closeness, dispersion, mean_centre_distance, zero_shot_topk
from aurl.metrics import Closeness, Dispersion, ZeroShotAccuracy

WORKER = Path(__file__).with_name("ddp_metric_worker.py")

# Batches of different sizes; class 4 appears only in the last batch, class 3 never.
BATCH_SIZES = (4, 7, 1, 5)


def make_data(
    seed: int = 0, num_classes: int = 5, dim: int = 6
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    embeddings = [torch.randn(n, dim, generator=gen) for n in BATCH_SIZES]
    labels = [torch.randint(0, 3, (n,), generator=gen) for n in BATCH_SIZES]
    labels[-1][0] = 4
    class_embeddings = torch.randn(num_classes, dim, generator=gen)
    return embeddings, labels, class_embeddings


def assert_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    assert torch.allclose(got.double(), expected.double(), atol=1e-6, rtol=0), (got, expected)


@pytest.mark.parametrize("use_forward", [False, True])
def test_metrics_accumulate_to_functional_value_on_concatenation(use_forward: bool) -> None:
    embeddings, labels, class_embeddings = make_data()
    metrics = {
        "top1": ZeroShotAccuracy(top_k=1),
        "top2": ZeroShotAccuracy(top_k=2),
        "dispersion": Dispersion(num_classes=5),
        "mean": Dispersion(num_classes=5, reduction="mean"),
        "closeness": Closeness(),
    }
    for x, y in zip(embeddings, labels, strict=True):
        for name, metric in metrics.items():
            args = (x, class_embeddings, y) if name.startswith("top") else (x, y)
            batch_value = metric(*args) if use_forward else metric.update(*args)
            if use_forward and name == "closeness":
                assert_close(batch_value, closeness(x, y))
            if use_forward and name == "top2":
                assert_close(batch_value, zero_shot_topk(x, class_embeddings, y, 2))
    x_all, y_all = torch.cat(embeddings), torch.cat(labels)
    assert_close(metrics["top1"].compute(), zero_shot_topk(x_all, class_embeddings, y_all, 1))
    assert_close(metrics["top2"].compute(), zero_shot_topk(x_all, class_embeddings, y_all, 2))
    assert_close(metrics["dispersion"].compute(), dispersion(x_all, y_all))
    assert_close(metrics["mean"].compute(), mean_centre_distance(x_all, y_all))
    assert_close(metrics["closeness"].compute(), closeness(x_all, y_all))
    collected_x, collected_y = metrics["closeness"].gathered()
    assert torch.equal(collected_x, x_all)
    assert torch.equal(collected_y, y_all)
    assert collected_y.dtype == torch.long


def test_zero_shot_accuracy_counts_hits() -> None:
    # Independent of the functional: one-hot classes, hits counted by hand.
    class_embeddings = torch.eye(3)
    metric = ZeroShotAccuracy()
    metric.update(
        torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.2, 1.0]]), class_embeddings, torch.tensor([0, 1])
    )
    metric.update(torch.tensor([[0.0, 0.0, 5.0]]), class_embeddings, torch.tensor([2]))
    assert metric.compute().item() == pytest.approx(2 / 3)
    assert int(metric.correct) == 2 and int(metric.total) == 3


def test_dispersion_single_class_per_batch() -> None:
    # Each batch holds one class; only the accumulated centres give a pair.
    metric = Dispersion(num_classes=3)
    metric.update(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    assert math.isnan(metric.compute().item())
    metric.update(torch.tensor([[0.0, -4.0]]), torch.tensor([2]))
    # Centres (0.5, 0.5) and (0, -1).
    assert metric.compute().item() == pytest.approx(math.sqrt(0.25 + 2.25), abs=1e-6)


def test_reset_clears_state() -> None:
    embeddings, labels, class_embeddings = make_data()
    metrics = [Dispersion(5), Closeness(), ZeroShotAccuracy()]
    for metric in metrics:
        args = (embeddings[0], class_embeddings, labels[0])
        metric.update(*(args if isinstance(metric, ZeroShotAccuracy) else args[::2]))
        metric.reset()
        args = (embeddings[1], class_embeddings, labels[1])
        metric.update(*(args if isinstance(metric, ZeroShotAccuracy) else args[::2]))
    assert_close(metrics[0].compute(), dispersion(embeddings[1], labels[1]))
    assert_close(metrics[1].compute(), closeness(embeddings[1], labels[1]))
    assert torch.equal(metrics[1].gathered()[0], embeddings[1])
    assert_close(metrics[2].compute(), zero_shot_topk(embeddings[1], class_embeddings, labels[1]))


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")
def test_compute_without_data() -> None:
    assert math.isnan(ZeroShotAccuracy().compute().item())
    assert math.isnan(Dispersion(4).compute().item())
    assert math.isnan(Closeness().compute().item())
    x, y = Closeness().gathered()
    assert x.shape == (0, 0) and y.shape == (0,) and y.dtype == torch.long


def test_metric_validation() -> None:
    with pytest.raises(ValueError, match="top_k"):
        ZeroShotAccuracy(top_k=0)
    with pytest.raises(ValueError, match="num_classes"):
        Dispersion(num_classes=0)
    with pytest.raises(ValueError, match="reduction"):
        Dispersion(num_classes=3, reduction="max")
    with pytest.raises(ValueError, match=r"Dispersion\.update: labels must lie in \[0, 3\)"):
        Dispersion(num_classes=3).update(torch.randn(2, 4), torch.tensor([0, 3]))
    metric = Dispersion(num_classes=3)
    metric.update(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="dimension 5 but earlier updates had 4"):
        metric.update(torch.randn(2, 5), torch.tensor([0, 1]))
    collected = Closeness()
    collected.update(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="dimension 5 but earlier updates had 4"):
        collected.update(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"Closeness\.update: .*empty"):
        Closeness().update(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="k must be an integer in"):
        ZeroShotAccuracy(top_k=5).update(
            torch.randn(2, 4), torch.randn(3, 4), torch.tensor([0, 1])
        )


# ---------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_scenarios() -> dict[str, dict]:
    gen = torch.Generator().manual_seed(1)
    dim, num_classes = 6, 5
    class_embeddings = torch.randn(num_classes, dim, generator=gen)
    # Rank 0: 7 videos of classes {0, 1, 2, 3}; rank 1: 4 videos of {1, 2, 4}. Classes 0 and 3
    # exist only on rank 0, class 4 only on rank 1.
    uneven = [
        (torch.randn(7, dim, generator=gen), torch.tensor([0, 1, 3, 2, 0, 3, 1])),
        (torch.randn(4, dim, generator=gen), torch.tensor([4, 1, 2, 4])),
    ]
    # Rank 1 receives nothing at all.
    empty_rank = [
        (torch.randn(5, dim, generator=gen), torch.tensor([2, 0, 2, 1, 0])),
        (torch.zeros(0, dim), torch.zeros(0, dtype=torch.long)),
    ]
    return {
        name: {
            "shards": shards,
            "class_embeddings": class_embeddings,
            "num_classes": num_classes,
            "batch_size": 3,
        }
        for name, shards in (("uneven", uneven), ("empty_rank", empty_rank))
    }


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict]]:
    tmp = tmp_path_factory.mktemp("ddp_metrics")
    scenarios = _ddp_scenarios()
    torch.save(scenarios, tmp / "data.pt")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(tmp / "data.pt"), str(tmp), str(_free_port())],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return scenarios, [torch.load(tmp / f"rank{rank}.pt") for rank in range(2)]


@pytest.mark.slow
@pytest.mark.ddp
@pytest.mark.parametrize("scenario", ["uneven", "empty_rank"])
def test_ddp_metrics_equal_single_process_on_union(
    ddp_results: tuple[dict, list[dict]], scenario: str
) -> None:
    scenarios, per_rank = ddp_results
    data = scenarios[scenario]
    x_all = torch.cat([x for x, _ in data["shards"]])
    y_all = torch.cat([y for _, y in data["shards"]])
    classes = data["class_embeddings"]
    expected = {
        "top1": zero_shot_topk(x_all, classes, y_all, 1),
        "top3": zero_shot_topk(x_all, classes, y_all, 3),
        "dispersion": dispersion(x_all, y_all),
        "mean_centre_distance": mean_centre_distance(x_all, y_all),
        "closeness": closeness(x_all, y_all),
    }
    for rank, results in enumerate(per_rank):
        got = results[scenario]
        for name, value in expected.items():
            assert torch.allclose(got[name].double(), value.double(), atol=1e-6, rtol=0), (
                rank,
                name,
                got[name],
                value,
            )
        # Gathered in rank order, each rank's batches in update order.
        collected_x, collected_y = got["closeness_gathered"]
        assert torch.equal(collected_x, x_all)
        assert torch.equal(collected_y, y_all)
