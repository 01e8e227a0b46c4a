"""TrainThroughput: the clip count, the windowed metrics, and what a fit logs when the loader or
the model is the slow side."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from aurl.callbacks import TrainThroughput, throughput
from aurl.callbacks.throughput import count_clips, throughput_metrics
from tests.metrics_csv import read_metric_rows

METRICS = ("perf/data_wait", "perf/clips_per_s_per_device", "perf/clips_per_s")
BATCH = 2


@pytest.mark.parametrize(
    ("shape", "dtype", "clips"),
    [
        ((4, 3, 8, 16, 16), torch.float32, 4),  # (B, C, T, H, W)
        ((4, 8, 16, 16, 3), torch.uint8, 4),  # (B, T, H, W, 3)
        ((4, 5, 3, 8, 16, 16), torch.float32, 20),  # (B, K, C, T, H, W)
        ((4, 5, 8, 16, 16, 3), torch.uint8, 20),  # (B, K, T, H, W, 3)
        ((0,), torch.float32, 0),  # collate_skip: every video of the batch was unreadable
    ],
)
def test_count_clips(shape: tuple[int, ...], dtype: torch.dtype, clips: int) -> None:
    assert count_clips({"video": torch.zeros(shape, dtype=dtype)}) == clips


def test_count_clips_names_a_batch_without_clips() -> None:
    with pytest.raises(ValueError, match=r"batch\['video'\].*\(4, 3\)"):
        count_clips({"video": torch.zeros(4, 3)})


def test_throughput_metrics_sum_the_window() -> None:
    metrics = throughput_metrics([0.5, 0.0], [1.0, 1.0], [8, 8], world_size=4)
    assert metrics == {
        "perf/data_wait": 0.25,
        "perf/clips_per_s_per_device": 8.0,
        "perf/clips_per_s": 32.0,
    }


class Clock:
    """A clock that only the test moves: the callback's ``perf_counter`` in these fits, and
    ``sleep`` for the loader and the model, so the measured times are exactly the sleeps
    (Lightning's own work takes no time on it) on any machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Clips(Dataset):
    """Eight small clips; ``delay`` seconds on ``clock`` per item stand for a slow decoder."""

    def __init__(self, clock: Clock, delay: float) -> None:
        self.clock, self.delay = clock, delay

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, Any]:
        self.clock.sleep(self.delay)
        return {"video": torch.full((3, 2, 4, 4), float(index)), "label": index % 2}


class Sleepy(L.LightningModule):
    """A linear classifier whose training step takes ``step_delay`` and whose validation step
    ``val_delay`` seconds on ``clock`` (a slow model, a long validation)."""

    def __init__(self, clock: Clock, step_delay: float = 0.0, val_delay: float = 0.0) -> None:
        super().__init__()
        self.clock, self.step_delay, self.val_delay = clock, step_delay, val_delay
        self.head = nn.Linear(3 * 2 * 4 * 4, 2)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.clock.sleep(self.step_delay)
        logits = self.head(batch["video"].flatten(1))  # (B, 2)
        return nn.functional.cross_entropy(logits, batch["label"])

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.clock.sleep(self.val_delay)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(
    root: Path,
    module: Sleepy,
    delay: float,
    monkeypatch: pytest.MonkeyPatch,
    **trainer_kwargs: Any,
) -> list[dict]:
    """Fits 2 epochs of 4 steps with TrainThroughput(window=2) timed by the module's clock; the
    rows of ``metrics.csv`` that hold its metrics."""
    clock = SimpleNamespace(perf_counter=module.clock.perf_counter)
    monkeypatch.setattr(throughput, "time", clock)
    loader = DataLoader(Clips(module.clock, delay), batch_size=BATCH, num_workers=0)
    trainer = L.Trainer(
        default_root_dir=root,
        accelerator="cpu",
        max_epochs=2,
        logger=CSVLogger(root, name="csv"),
        log_every_n_steps=1,
        callbacks=[TrainThroughput(window=2)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_kwargs,
    )
    val_loader = DataLoader(Clips(module.clock, 0.0), batch_size=BATCH)
    trainer.fit(module, loader, val_loader if module.val_delay else None)
    rows = read_metric_rows(Path(trainer.logger.log_dir) / "metrics.csv")
    return [row for row in rows if "perf/data_wait" in row]


def test_a_slow_loader_shows_as_data_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each step waits BATCH x 0.1 s for its batch and computes for 0.1 s.
    rows = fit(tmp_path, Sleepy(Clock(), step_delay=0.1), 0.1, monkeypatch)
    # The first step of each epoch is not measured: 3 of 4 steps, 2 epochs.
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 5, 6, 7]
    for row in rows:
        assert set(METRICS) <= set(row)
        assert row["perf/data_wait"] == pytest.approx(0.2 / 0.3)
        assert row["perf/clips_per_s_per_device"] == pytest.approx(BATCH / 0.3)
        assert row["perf/clips_per_s"] == row["perf/clips_per_s_per_device"]  # one device


def test_validation_is_not_data_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A validation of 4 x 0.2 s after every second step: counted, it would be most of the next
    # step's wait.
    module = Sleepy(Clock(), step_delay=0.3, val_delay=0.2)
    rows = fit(tmp_path, module, 0.05, monkeypatch, val_check_interval=2, limit_val_batches=4)
    # The step after a validation is not measured (Lightning's CSV row for it repeats the
    # previous step's values).
    assert {int(row["epoch"]) for row in rows} == {0, 1}
    for row in rows:
        assert row["perf/data_wait"] == pytest.approx(0.1 / 0.4)
        assert row["perf/clips_per_s_per_device"] == pytest.approx(BATCH / 0.4)
