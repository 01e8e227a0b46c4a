"""Optional dependencies: imported where first needed, named with the extra that installs them.

The extras are declared in setup.cfg: ``word2vec`` (gensim) and ``bench`` (pytorchvideo,
scikit-video). ``make install`` installs them all.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, extra: str) -> ModuleType:
    """Imports ``module`` from an optional dependency, or says which extra installs it.

    Args:
        module: dotted module name, e.g. ``"gensim.models"``.
        extra: the aurl extra that installs it, e.g. ``"word2vec"``.

    Returns:
        The imported module.

    Raises:
        ModuleNotFoundError: the dependency is not installed (the message names
            ``pip install 'aurl[<extra>]'``). A module missing inside an installed dependency
            propagates unchanged, since installing the extra would not fix it.
    """
    top_level = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != top_level:
            raise
        raise ModuleNotFoundError(
            f"{top_level} is not installed; it comes with aurl's {extra!r} extra: "
            f"pip install 'aurl[{extra}]' (or pip install -e '.[{extra}]' in a clone)",
            name=top_level,
        ) from error
