"""Training throughput per step: the share of time spent waiting for data, and clips/s."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import lightning as L
import torch


def count_clips(batch: Any) -> int:
    """The clips of a training batch: videos times clips per video.

    ``batch["video"]`` holds one clip per video when it has 5 dimensions (``(B, C, T, H, W)``
    float, or ``(B, T, H, W, 3)`` uint8 before normalisation on the device) and ``K`` clips per
    video when it has 6 (``(B, K, C, T, H, W)`` or ``(B, K, T, H, W, 3)``). A batch whose videos
    were all unreadable (``collate_skip``'s empty ``video`` of shape ``(0,)``) has none.

    Raises:
        ValueError: if the batch has no ``video`` tensor of 5 or 6 dimensions (or empty).
    """
    video = batch.get("video") if isinstance(batch, dict) else None
    if isinstance(video, torch.Tensor) and video.numel() == 0 and video.dim() == 1:
        return 0
    if not isinstance(video, torch.Tensor) or video.dim() not in (5, 6):
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"expected batch['video'] of 5 or 6 dimensions, got {shape}")
    clips_per_video = video.shape[1] if video.dim() == 6 else 1
    return video.shape[0] * clips_per_video


def throughput_metrics(
    waits: list[float], periods: list[float], clips: list[int], world_size: int
) -> dict[str, float]:
    """Throughput over a window of training steps.

    Args:
        waits: per step, seconds between the end of the previous step and the start of this one
            (mostly waiting for the loader).
        periods: per step, seconds between the end of the previous step and the end of this
            one (the whole step, waiting included).
        clips: per step, clips trained on this device.
        world_size: devices of the job; every device runs the same steps in lockstep.

    Returns:
        ``perf/data_wait`` (share of the time spent waiting, in [0, 1]),
        ``perf/clips_per_s_per_device`` and ``perf/clips_per_s`` (times ``world_size``).
    """
    total = sum(periods)
    if not periods or total <= 0:
        raise ValueError(f"need steps of positive total duration, got {periods}")
    per_device = sum(clips) / total
    return {
        "perf/data_wait": sum(waits) / total,
        "perf/clips_per_s_per_device": per_device,
        "perf/clips_per_s": per_device * world_size,
    }


class TrainThroughput(L.Callback):
    """Logs per training step whether the loader keeps up: data-wait share and clips/s.

    A step's data wait is the wall time from the end of the previous training step
    (``on_train_batch_end``) to the start of this one (``on_train_batch_start``): Lightning
    fetches the batch from the loader then, moves it to the device and runs
    ``on_after_batch_transfer`` (queued device work; a pinned copy does not block). The step
    period runs from the previous step's end to this one's; ``perf/data_wait`` is the waiting
    time over the period, ``perf/clips_per_s_per_device`` the clips (:func:`count_clips`) over
    the period, and ``perf/clips_per_s`` that times the world size. All three are summed over the
    last ``window`` steps, logged every step (to the progress bar and, at
    ``log_every_n_steps``, to CSV and W&B) from rank 0's measurements. The first step of an epoch
    and the first after a validation are not measured: their wait holds the workers' start or
    the validation.

    No CUDA synchronisation is added: the house :class:`~aurl.callbacks.NonFiniteGuard` reads
    each step's loss check on the host before the optimiser step, so a step's end falls after
    its forward and backward have run. Without such a read the host may run up to a step ahead
    of the device: the period stays right on average over the window, and the wait is the host's
    (an upper bound of the device's idle time).

    Args:
        window: steps summed into each logged value (>= 1).
        prog_bar: show ``perf/data_wait`` and ``perf/clips_per_s`` in the progress bar.

    Raises:
        ValueError: if ``window`` < 1.
    """

    def __init__(self, window: int = 20, prog_bar: bool = True) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self.prog_bar = prog_bar
        self._previous_end: float | None = None
        self._start = 0.0
        self._waits: deque[float] = deque(maxlen=window)
        self._periods: deque[float] = deque(maxlen=window)
        self._clips: deque[int] = deque(maxlen=window)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._previous_end = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._previous_end = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        end = time.perf_counter()
        previous, self._previous_end = self._previous_end, end
        if previous is None:
            return
        self._waits.append(self._start - previous)
        self._periods.append(end - previous)
        self._clips.append(count_clips(batch))
        metrics = throughput_metrics(
            list(self._waits), list(self._periods), list(self._clips), trainer.world_size
        )
        for name, value in metrics.items():
            # A CPU tensor: a Python float would become a device tensor, whose copy from
            # pageable memory synchronises the CUDA stream every step.
            pl_module.log(
                name,
                torch.tensor(value),
                on_step=True,
                on_epoch=False,
                prog_bar=self.prog_bar and name != "perf/clips_per_s_per_device",
            )
