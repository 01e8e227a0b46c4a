from __future__ import annotations

import copy
import io
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from aurl.checkpoint_io import (
    AtomicCheckpointIO,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from tests.tiny import ColourData, tiny_module, tiny_trainer

FIT = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0)


def fit(
    root: Path,
    save_last: bool | str = True,
    ckpt_path: str | None = None,
    extra_callbacks: tuple[L.Callback, ...] = (),
    **kwargs,
) -> L.Trainer:
    """Tiny epochs (2 steps each) with the atomic plugin and a ModelCheckpoint in root/ckpt."""
    module = tiny_module(root / "cache")
    checkpoint = ModelCheckpoint(dirpath=root / "ckpt", save_last=save_last)
    trainer = tiny_trainer(
        root,
        plugins=[AtomicCheckpointIO()],
        callbacks=[checkpoint, *extra_callbacks],
        enable_checkpointing=True,
        **{**FIT, **kwargs},
    )
    trainer.fit(module, datamodule=ColourData(batch_size=8), ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A fitted run's checkpoint folder and the live module's final state (read-only)."""
    root = tmp_path_factory.mktemp("run")
    trainer = fit(root)
    return root / "ckpt", copy.deepcopy(trainer.lightning_module.state_dict())


def copy_last(run: tuple[Path, dict], tmp_path: Path) -> Path:
    path = tmp_path / "last.ckpt"
    shutil.copyfile(run[0] / "last.ckpt", path)
    return path


def assert_state_equal(loaded: dict, expected: dict) -> None:
    assert list(loaded) == list(expected)
    torch.testing.assert_close(dict(loaded), dict(expected), rtol=0, atol=0)


@pytest.mark.parametrize("save_last", [True, "link"])
def test_fit_writes_loadable_checkpoints_and_no_temp_files(
    tmp_path: Path, save_last: bool | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced = []
    real_replace = os.replace

    def recording_replace(src, dst):
        if Path(dst).suffix == ".ckpt":
            assert Path(src).parent == Path(dst).parent  # a rename, never a cross-device copy
            replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    trainer = fit(tmp_path, save_last=save_last)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    folder = tmp_path / "ckpt"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    if save_last == "link":
        assert (folder / "last.ckpt").is_symlink()
        assert replaced == ["epoch=0-step=2.ckpt"]
    else:
        assert replaced == ["epoch=0-step=2.ckpt", "last.ckpt"]
    state = trainer.lightning_module.state_dict()
    for path in folder.iterdir():
        # Our checkpoints hold only tensors, containers, strings and numbers: weights-only works.
        checkpoint = load_checkpoint(path, weights_only=True)
        assert checkpoint["global_step"] == 2
        assert_state_equal(checkpoint["state_dict"], state)


def test_plugin_overwrites_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "epoch=0.ckpt"
    save_checkpoint({"step": torch.tensor(0)}, target)
    link = tmp_path / "last.ckpt"
    link.symlink_to(target.name)
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(1)}, link)
    assert not link.is_symlink()
    assert load_checkpoint(link)["step"] == 1
    assert load_checkpoint(target)["step"] == 0


@pytest.mark.parametrize("keep", [0.5, 0.99, 100])
def test_truncated_checkpoint_is_a_clear_error(
    run: tuple[Path, dict], tmp_path: Path, keep: float
) -> None:
    path = copy_last(run, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(CheckpointError, match="truncated") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    assert "another checkpoint" in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"", os.urandom(4096), b"epoch: 3\nstate_dict: {}\n"],
    ids=["empty", "random", "text"],
)
def test_garbage_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot load checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_overwritten_bytes_fail_the_crc_check(run: tuple[Path, dict], tmp_path: Path) -> None:
    path = copy_last(run, tmp_path)
    data = bytearray(path.read_bytes())
    # Inside the largest tensor's bytes: torch.load alone would return silently wrong weights.
    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[start : start + 16] = bytes(b ^ 0xFF for b in data[start : start + 16])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_checkpoint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "last.ckpt"
    with pytest.raises(FileNotFoundError, match=r"nowhere/last\.ckpt"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match=r"nowhere/last\.ckpt"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_resuming_from_a_truncated_checkpoint_fails_clearly(
    run: tuple[Path, dict], tmp_path: Path
) -> None:
    path = copy_last(run, tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    module = tiny_module(tmp_path / "cache")
    trainer = tiny_trainer(tmp_path, plugins=[AtomicCheckpointIO()], **{**FIT, "max_epochs": 2})
    with pytest.raises(CheckpointError, match=str(path)):
        trainer.fit(module, datamodule=ColourData(batch_size=8), ckpt_path=path)


def test_hparams_outside_the_allowlist_fall_back_with_a_warning(
    run: tuple[Path, dict], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoint = load_checkpoint(run[0] / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["embedding_cache_dir"] = tmp_path / "cache"  # a PosixPath
    path = tmp_path / "pathlib.ckpt"
    save_checkpoint(checkpoint, path)
    with pytest.raises(CheckpointError, match="pathlib"):
        load_checkpoint(path, weights_only=True)
    with caplog.at_level(logging.WARNING, logger="aurl.checkpoint_io"):
        loaded = load_checkpoint(path)
    assert loaded["hyper_parameters"]["embedding_cache_dir"] == tmp_path / "cache"
    assert "pathlib" in caplog.text and "weights_only=False" in caplog.text


def half_then_fail(obj: object, handle: io.BufferedWriter) -> None:
    """Stands in for torch.save on a full disk: writes half of the real bytes, then fails."""
    buffer = io.BytesIO()
    torch.serialization.save(obj, buffer)
    handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    raise OSError(28, "No space left on device")


def test_failed_save_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.ckpt"
    plugin = AtomicCheckpointIO()
    plugin.save_checkpoint({"weights": torch.arange(1000.0)}, path)
    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        plugin.save_checkpoint({"weights": torch.zeros(1000)}, path)
    assert os.listdir(tmp_path) == ["last.ckpt"]
    torch.testing.assert_close(load_checkpoint(path)["weights"], torch.arange(1000.0))


def test_failed_save_during_fit_keeps_last_ckpt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fit(tmp_path)
    saved = copy.deepcopy(first.lightning_module.state_dict())
    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        fit(tmp_path, max_epochs=2, ckpt_path="last")
    folder = tmp_path / "ckpt"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    checkpoint = load_checkpoint(folder / "last.ckpt")
    assert checkpoint["global_step"] == 2
    assert_state_equal(checkpoint["state_dict"], saved)


_KILLED_WRITER = """
import sys, time, torch
from aurl.checkpoint_io import save_checkpoint
path, marker = sys.argv[1], sys.argv[2]
save_checkpoint({"weights": torch.arange(1000.0)}, path)
def stalled(obj, handle):
    handle.write(b"PK" + bytes(5000))
    handle.flush()
    open(marker, "w").close()
    time.sleep(60)
torch.save = stalled
save_checkpoint({"weights": torch.zeros(1000)}, path)
"""


@pytest.mark.slow
def test_sigkill_mid_save_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    path, marker = tmp_path / "ckpt" / "last.ckpt", tmp_path / "writing"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), str(marker)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, "the writer exited before it was killed"
            assert time.monotonic() < deadline, "the writer never started its second save"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    torch.testing.assert_close(load_checkpoint(path)["weights"], torch.arange(1000.0))
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].startswith(".last.ckpt.")
    assert leftovers[0].endswith(".tmp")


def test_resume_through_the_plugin_restores_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fit(tmp_path)
    saved = copy.deepcopy(first.lightning_module.state_dict())
    # What a save killed by SIGKILL leaves behind: "last" must not resolve to it.
    (tmp_path / "ckpt" / ".last.ckpt.0123456789ab.tmp").write_bytes(b"PK" + bytes(100))
    loaded_from = []
    real_load = AtomicCheckpointIO.load_checkpoint

    def recording_load(self, path, *args, **kwargs):
        loaded_from.append(Path(path).name)
        return real_load(self, path, *args, **kwargs)

    monkeypatch.setattr(AtomicCheckpointIO, "load_checkpoint", recording_load)
    restored = {}

    class StateAtStart(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            restored.update(copy.deepcopy(pl_module.state_dict()))

    trainer = fit(tmp_path, max_epochs=2, ckpt_path="last", extra_callbacks=(StateAtStart(),))
    assert loaded_from == ["last.ckpt"]
    assert_state_equal(restored, saved)
    assert trainer.current_epoch == 2
    assert trainer.global_step == 4
    # The second epoch saved through the plugin too, and loads back.
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("*.ckpt")) == [
        "epoch=1-step=4.ckpt",
        "last.ckpt",
    ]
    assert load_checkpoint(tmp_path / "ckpt" / "last.ckpt")["global_step"] == 4
