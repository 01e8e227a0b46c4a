"""Shared pytest fixtures: offline, single-threaded, deterministic."""

from __future__ import annotations

import os

# Set before torch/transformers are imported by any test module: tests never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")

import copy
import errno
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import av
import pytest
import torch

if TYPE_CHECKING:
    from aurl.text_encoders import SentenceTransformerEncoder

# The CI machine has 2 cores; one intra-op thread keeps parallel test processes from thrashing.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def _minilm() -> SentenceTransformerEncoder:
    """The shipped all-MiniLM-L6-v2, loaded once per session (about a second, 90 MB)."""
    # Imported here: importing aurl pulls in Lightning, which tests without MiniLM need not pay.
    from aurl.text_encoders import SentenceTransformerEncoder, create_text_encoder

    encoder = create_text_encoder("sentence-transformers")
    assert isinstance(encoder, SentenceTransformerEncoder)
    encoder.model  # noqa: B018 - load now, not in the first test that encodes
    return encoder


@pytest.fixture
def minilm(_minilm: SentenceTransformerEncoder) -> SentenceTransformerEncoder:
    """A copy per test of the loaded MiniLM encoder, sharing its model.

    A test that changes options (batch size, normalisation) cannot leak into another; the
    weights are shared, so no test may change them.
    """
    return copy.copy(_minilm)


@pytest.fixture
def unreadable_means_unreadable(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Makes ``av.open`` refuse a file without read permission, even for root.

    Root reads files whatever their mode, so a ``chmod 0`` file stays readable in a container
    run as root (as CI is). As root, this fixture fails the open with the EACCES error a user
    would get; as a user, the kernel already does and nothing is patched. In-process only (no
    DataLoader workers are started with the patch).
    """
    if os.geteuid() == 0:
        real_open = av.open

        def open_as_a_user(file: Any, *args: Any, **kwargs: Any) -> Any:
            if (
                isinstance(file, str)
                and os.path.isfile(file)
                and not os.stat(file).st_mode & 0o444
            ):
                raise PermissionError(errno.EACCES, "Permission denied", file)
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(av, "open", open_as_a_user)
    yield


@pytest.fixture
def uninstall(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Makes a top-level package unimportable for one test, as if it were not installed.

    Its loaded modules leave ``sys.modules`` (restored afterwards) and a finder answers its
    import with the ``ModuleNotFoundError`` an absent package gives.
    """

    class _Absent:
        def __init__(self, package: str) -> None:
            self.package = package

        def find_spec(self, name: str, *args: Any) -> None:
            if name == self.package or name.startswith(self.package + "."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    def uninstall_package(package: str) -> None:
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setattr(sys, "meta_path", [_Absent(package), *sys.meta_path])

    return uninstall_package
