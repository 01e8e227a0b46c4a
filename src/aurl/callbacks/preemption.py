"""PreemptionCheckpoint: a consistent checkpoint when SLURM announces the job's end, then requeue.

SLURM sends SIGUSR1 some time before a job's time limit or preemption (``--signal=USR1@120``).
Lightning's own handler (``SLURMEnvironment(auto_requeue=True)``) saves its HPC checkpoint from
inside the signal handler, that is at whatever point of a step the signal arrives (between an
optimiser step and the loop's progress counters, say), and under DDP each rank enters the
save's barrier from its handler, possibly while another sits in a gradient all-reduce. This
callback replaces that handler for the training run: the handler only records the signal; at
the end of the next training batch every rank learns whether any rank got it (one boolean
all-reduce per step), all save ``<default_root_dir>/hpc_ckpt_<n>.ckpt`` together (Lightning's
name and numbering, so ``ckpt_path="hpc"`` and ``experiments/slurm.sbatch`` find it), and rank 0
asks SLURM to requeue the job. A batch end is where mid-epoch checkpoints are consistent: model,
optimiser, loops, random states and the training loader's position describe the same moment,
so the requeued job resumes exactly.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)

_HPC_NAME = re.compile(r"hpc_ckpt_(\d+)\.ckpt")


def next_hpc_checkpoint(folder: str | Path) -> Path:
    """``folder/hpc_ckpt_<n>.ckpt`` with ``n`` one more than the highest there (1 if none)."""
    numbers = [
        int(match.group(1))
        for path in Path(folder).glob("hpc_ckpt_*.ckpt")
        if (match := _HPC_NAME.fullmatch(path.name))
    ]
    return Path(folder) / f"hpc_ckpt_{max(numbers, default=0) + 1}.ckpt"


class PreemptionCheckpoint(Callback):
    """Saves a checkpoint at the first batch end after SLURM's warning signal, then requeues.

    Args:
        signal_name: the warning signal (``"SIGUSR1"``, as ``#SBATCH --signal=SIGUSR1@120``).
        requeue: after saving, rank 0 runs ``scontrol requeue $SLURM_JOB_ID`` (only when
            ``SLURM_JOB_ID`` is set); SLURM then stops the job and queues it again.
    """

    def __init__(self, signal_name: str = "SIGUSR1", requeue: bool = True) -> None:
        self.signum = signal.Signals[signal_name]
        self.requeue = requeue
        self.saved: Path | None = None
        self._received = False
        self._previous: Any = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning registers its SLURM handler before training starts; this one replaces it.
        self._received, self.saved = False, None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.signum, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._received = True

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.saved is not None:
            return
        if not trainer.strategy.reduce_boolean_decision(self._received, all=False):
            return
        path = next_hpc_checkpoint(trainer.default_root_dir)
        path = Path(trainer.strategy.broadcast(str(path)))  # every rank names the same file
        for logger in trainer.loggers:
            logger.save()
        trainer.save_checkpoint(path)
        self.saved = path
        log.warning("%s: saved %s at step %d", self.signum.name, path, trainer.global_step)
        job_id = os.environ.get("SLURM_JOB_ID")
        if self.requeue and job_id and trainer.is_global_zero:
            task = os.environ.get("SLURM_ARRAY_TASK_ID")
            array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
            target = f"{array_job}_{task}" if array_job and task else job_id
            result = subprocess.run(["scontrol", "requeue", target], check=False)
            if result.returncode:
                log.warning("scontrol requeue %s failed (exit %d)", target, result.returncode)
            else:
                log.warning("requeued SLURM job %s", target)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(self.signum, self._previous)
        self._previous = None
