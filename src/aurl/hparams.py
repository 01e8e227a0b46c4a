"""Hyperparameters of a LightningModule built from components."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import lightning as L
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters


def save_config_hyperparameters(module: L.LightningModule, components: Sequence[str]) -> None:
    """``module.save_hyperparameters()`` that keeps component objects out of the checkpoint.

    Built through LightningCLI, the hyperparameters are the parsed config, components included
    as ``class_path``/``init_args``, so ``load_from_checkpoint`` (and ``aurl predict``) rebuild
    the whole model from a checkpoint. Built in Python, the components are objects whose
    weights the state dict already holds: they are left out. Lightning offers no public way to
    tell the two apart (LightningCLI hands the config over in a private context variable),
    so this is the one place that reads it. Call it from ``__init__``.

    Args:
        module: the module being constructed.
        components: names of the ``__init__`` arguments that are built components.
    """
    from_cli = _given_hyperparameters.get() is not None
    caller = inspect.currentframe().f_back  # the module's __init__, whose arguments are saved
    module.save_hyperparameters(ignore=None if from_cli else list(components), frame=caller)
