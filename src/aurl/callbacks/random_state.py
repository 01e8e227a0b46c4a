"""Save the global random states in checkpoints and restore them when training resumes."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn


class RandomStateCheckpoint(L.Callback):
    """Keeps the torch, numpy, Python (and CUDA) random states in every checkpoint.

    Resuming ``fit`` from a checkpoint restores them, so dropout and any other draw from the
    global generators continue where the checkpoint left them: resumed from an epoch end, the
    run repeats the uninterrupted one exactly (the data's randomness is seeded per epoch by
    :mod:`data_modules`). Testing or validating from a checkpoint leaves the random states as
    they are. The states are tensors, tuples and numbers, so the checkpoint still loads with
    ``weights_only=True``.
    """

    def state_dict(self) -> dict[str, Any]:
        _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
        states: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": (torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gaussian),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        return states

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Lightning restores callback states for every stage; only a resumed fit wants these.
        states = checkpoint.get("callbacks", {}).get(self.state_key)
        if states is None or trainer.state.fn != TrainerFn.FITTING:
            return
        torch.set_rng_state(states["torch"].cpu())
        keys, pos, has_gauss, cached_gaussian = states["numpy"]
        np.random.set_state(
            ("MT19937", keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached_gaussian)
        )
        version, internal, gauss_next = states["python"]
        random.setstate((version, tuple(internal), gauss_next))
        cuda = states.get("cuda")
        same_gpus = torch.cuda.is_available() and len(cuda or []) == torch.cuda.device_count()
        if cuda is not None and same_gpus:
            torch.cuda.set_rng_state_all([state.cpu() for state in cuda])
