"""litdata shards: write_shards, the StreamingShards catalog, training and evaluation from them."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from data_modules.clip_dataset import VideoClipDataset
from data_modules.clip_sampling import create_clip_sampler
from data_modules.datamodule import ZeroShotDataModule
from data_modules.datasets import StreamingShards, VideoFolder
from data_modules.shards import (
    SIDECAR_NAME,
    ShardIndex,
    read_shard_index,
    write_catalog_shards,
    write_shards,
)
from data_modules.transforms import create_transform
from data_modules.video_writer import write_video
from tests.cli_helpers import free_port
from tests.tiny import tiny_module, tiny_trainer

CLASSES = ["archery", "bowling", "cycling", "diving", "fencing", "golfing"]
VIDEOS_PER_CLASS = 4
FRAMES = 12
SIZE = 32
BROKEN = "golfing/9_broken.mp4"


def _frames(seed: int) -> np.ndarray:
    """A video that differs from every other one in every frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, size=(1, SIZE, SIZE, 3))
    ramp = 4 * np.arange(FRAMES)[:, None, None, None]
    return (base + ramp).astype(np.uint8)  # (T, H, W, 3)


@pytest.fixture(scope="module")
def shard_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A source folder (6 classes x 4 videos + 1 broken file), its shards and a target folder."""
    root = tmp_path_factory.mktemp("shards")
    for label, name in enumerate(CLASSES):
        for i in range(VIDEOS_PER_CLASS):
            write_video(root / "source" / name / f"{i}.mp4", _frames(10 * label + i), fps=12)
    (root / "source" / BROKEN).write_bytes(b"not a video\n" * 20)
    for name in ("hiking", "rowing"):
        for i in range(2):
            write_video(root / "target" / name / f"{i}.mp4", _frames(100 + i), fps=12)
    write_catalog_shards(
        VideoFolder(root / "source"),
        root / "out",
        encode=_check_and_read,
        encode_settings={"kind": "checked bytes"},
        num_workers=2,
        chunk_bytes=3 * (root / "source" / "archery" / "0.mp4").stat().st_size,
        start_method="fork",
    )
    return {"source": root / "source", "target": root / "target", "shards": root / "out"}


def _check_and_read(path: str) -> bytes:
    """An encoder that refuses what is not a video (as a transcoder would)."""
    data = Path(path).read_bytes()
    if data.startswith(b"not a video"):
        raise ValueError("not a video")
    return data


def _datamodule(world: dict[str, Path], source, **kwargs) -> ZeroShotDataModule:
    options = (
        dict(
            source=source,
            targets=[VideoFolder(world["target"], name="target")],
            overlap_tau=0.0,
            val_fraction=0.2,
            gzsl=True,
            gzsl_video_fraction=0.25,
            gzsl_calibration_fraction=0.0,
            clip_len=4,
            size=16,
            batch_size=3,
            eval_batch_size=4,
            num_workers=2,
            seed=3,
        )
        | kwargs
    )
    dm = ZeroShotDataModule(**options)
    dm.setup("fit")
    return dm


def test_sidecar_lists_classes_items_and_failures(shard_world) -> None:
    index = read_shard_index(shard_world["shards"])
    folder = VideoFolder(shard_world["source"])
    readable = [(p, y) for p, y in folder.samples if not p.endswith(BROKEN)]
    assert index.catalog_name == "source"
    assert index.class_names == index.raw_class_names == CLASSES
    assert index.paths == [str(Path(p).relative_to(shard_world["source"])) for p, _ in readable]
    assert index.labels == [y for _, y in readable]
    assert index.failed == [[BROKEN, "ValueError: not a video"]]
    assert index.encode == {"kind": "checked bytes"}
    litdata_index = json.loads((shard_world["shards"] / "index.json").read_text())
    assert len(litdata_index["chunks"]) > 2  # several chunks, written by two workers
    assert litdata_index["config"]["data_format"] == ["bytes", "int", "text"]
    with pytest.raises(ValueError, match="version"):
        ShardIndex.from_json(json.dumps({"version": 99}), "x.json")


def test_shard_items_are_the_files_in_sidecar_order(shard_world) -> None:
    from litdata import StreamingDataset

    index = read_shard_index(shard_world["shards"])
    stream = StreamingDataset(str(shard_world["shards"]))
    assert len(stream) == len(index.paths)
    for i, path in enumerate(index.paths):
        item = stream[i]
        assert (item["path"], item["label"]) == (path, index.labels[i])
        assert bytes(item["video"]) == (shard_world["source"] / path).read_bytes()


def test_catalog_reports_the_source_classes_and_samples(shard_world) -> None:
    shards = StreamingShards(shard_world["shards"])
    index = read_shard_index(shard_world["shards"])
    assert shards.name == "source" and StreamingShards(shard_world["shards"], name="k").name == "k"
    assert shards.class_names == shards.raw_class_names == CLASSES
    assert shards.samples == [
        (f"{shard_world['shards'].resolve()}#{i}", y) for i, y in enumerate(index.labels)
    ]
    assert [shards.item_index(s) for s, _ in shards.samples] == list(range(len(index.labels)))
    assert shards.item_index("/elsewhere/archery/0.mp4") is None
    assert shards.mirror_class_name("golfing") == "golfing"
    with pytest.raises(FileNotFoundError, match=SIDECAR_NAME):
        _ = StreamingShards(shard_world["source"]).class_names


def _file_twin(world: dict[str, Path], dm: ZeroShotDataModule) -> VideoClipDataset:
    """The file reader over the same training samples, as the datamodule would build it."""
    shards = dm.source
    files = [
        (str(world["source"] / shards.item_path(shards.item_index(s))), y)
        for s, y in dm.train_samples
    ]
    return VideoClipDataset(
        files,
        dm.class_space.train_classes,
        create_clip_sampler("random", dm.clip_len, dm.train_clips, dm.frame_stride),
        create_transform(dm.transform, train=True, size=dm.size),
        seed=dm.seed,
    )


def test_training_streams_every_training_item_once_per_epoch(shard_world) -> None:
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]))
    train_ids = [s for s, _ in dm.train_samples]
    assert len(train_ids) % dm.batch_size == 0  # no incomplete last batch to drop
    gzsl_seen = {s for s, _ in dm.test_samples[1] if dm.source.item_index(s) is not None}
    held_out = {s for s, _ in dm.val_samples} | gzsl_seen
    assert held_out and not held_out & set(train_ids)
    twin = _file_twin(shard_world, dm)
    loader = dm.train_dataloader()
    orders = []
    for epoch in range(2):
        twin.set_epoch(epoch)
        seen = []
        for batch in loader:
            assert batch["skipped"] == []
            for path, label, video in zip(
                batch["path"], batch["label"], batch["video"], strict=True
            ):
                k = train_ids.index(path)
                expected = twin[k]
                assert label == expected["label"] == dm.train_samples[k][1]
                torch.testing.assert_close(video, expected["video"], rtol=0, atol=0)
                seen.append(path)
        assert sorted(seen) == sorted(train_ids)  # each training item once, nothing held out
        orders.append(seen)
    assert orders[0] != orders[1]


def test_loader_resumes_mid_epoch_exactly(shard_world) -> None:
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]))
    uninterrupted = dm.train_dataloader()
    full = [batch["path"] for batch in uninterrupted]
    second = [batch["path"] for batch in uninterrupted]
    assert len(full) > 3
    loader = dm.train_dataloader()
    first = []
    for batch in loader:
        first.append(batch["path"])
        if len(first) == 2:
            state = loader.state_dict()
            break
    fresh = dm.train_dataloader()
    fresh.load_state_dict(state)
    rest = [batch["path"] for batch in fresh]
    assert first + rest == full
    # The next epoch is the uninterrupted loader's next epoch: all items, in a new order.
    next_epoch = [batch["path"] for batch in fresh]
    assert next_epoch == second and second != full
    assert sorted(p for b in second for p in b) == sorted(p for b in full for p in b)


def test_two_ranks_stream_disjoint_shards(shard_world, monkeypatch) -> None:
    # litdata reads the rank from torch.distributed, else from WORLD_SIZE / GLOBAL_RANK.
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]), batch_size=2)
    per_rank = []
    for rank in range(2):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("GLOBAL_RANK", str(rank))
        loader = dm.train_dataloader()
        per_rank.append([p for batch in loader for p in batch["path"]])
    train_ids = {s for s, _ in dm.train_samples}
    assert per_rank[0] and per_rank[1]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert len(set(per_rank[0])) == len(per_rank[0]) and set(per_rank[0]) <= train_ids
    assert len(set(per_rank[1])) == len(per_rank[1]) and set(per_rank[1]) <= train_ids
    # litdata equalises ranks (drop_last under DDP): at most a few items are left out.
    assert len(train_ids) - len(per_rank[0] + per_rank[1]) <= 2 * dm.batch_size


def test_evaluation_reads_held_out_shard_items(shard_world) -> None:
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]), num_workers=0)
    val = [p for batch in dm.val_dataloader() for p in batch["path"]]
    assert sorted(val) == sorted(s for s, _ in dm.val_samples)
    gzsl = [p for batch in dm.test_dataloader()[1] for p in batch["path"]]
    assert sorted(gzsl) == sorted(s for s, _ in dm.test_samples[1])
    assert any("#" in p for p in gzsl) and any(p.endswith(".mp4") for p in gzsl)


@pytest.mark.slow
def test_a_shard_target_is_evaluated_from_its_shards(shard_world, tmp_path) -> None:
    target = VideoFolder(shard_world["target"], name="target")
    write_catalog_shards(target, tmp_path / "target", start_method="fork")
    source = VideoFolder(shard_world["source"])
    from_files = _datamodule(shard_world, source, num_workers=0)
    shards = StreamingShards(tmp_path / "target", name="target")
    from_shards = _datamodule(shard_world, source, num_workers=0, targets=[shards])
    for k in (0, 1):  # the target's set, and the GZSL set (held-out source files + target)
        batches = list(from_shards.test_dataloader()[k])
        reference = list(from_files.test_dataloader()[k])
        paths = [p for batch in batches for p in batch["path"]]
        assert not any(batch["skipped"] for batch in batches)
        assert sum("#" in p for p in paths) == len(target)
        # The same items in the same order give the same clips as the target's files.
        videos = torch.cat([batch["video"] for batch in batches])
        assert torch.equal(videos, torch.cat([batch["video"] for batch in reference]))


@pytest.fixture
def s3_endpoint() -> Iterator[dict[str, str]]:
    """An S3-compatible server (moto) on a free localhost port with a bucket ``"videos"``;
    yields the storage options that reach it."""
    boto3 = pytest.importorskip("boto3")
    server_module = pytest.importorskip("moto.server")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {
        "endpoint_url": f"http://127.0.0.1:{port}",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }
    try:
        boto3.client("s3", **options).create_bucket(Bucket="videos")
        yield options
    finally:
        server.stop()


@pytest.mark.slow
def test_shards_on_s3_write_list_train_and_evaluate(shard_world, s3_endpoint, tmp_path) -> None:
    # litdata's own remote optimize uploads the chunks; the sidecar goes up beside them.
    write_catalog_shards(
        VideoFolder(shard_world["source"]),
        "s3://videos/k/shards",
        encode=_check_and_read,
        num_workers=2,
        chunk_bytes=3 * (shard_world["source"] / "archery" / "0.mp4").stat().st_size,
        storage_options=s3_endpoint,
        start_method="fork",
    )
    shards = StreamingShards(
        "s3://videos/k/shards", storage_options=s3_endpoint, cache_dir=tmp_path / "cache"
    )
    local = StreamingShards(shard_world["shards"])
    assert shards.class_names == CLASSES
    assert [y for _, y in shards.samples] == [y for _, y in local.samples]
    assert shards.samples[0][0] == "s3://videos/k/shards#0"
    dm = _datamodule(shard_world, shards)
    streamed = [p for batch in dm.train_dataloader() for p in batch["path"]]
    assert sorted(streamed) == sorted(s for s, _ in dm.train_samples)
    assert any((tmp_path / "cache").rglob("chunk-*.bin"))  # chunks came through the cache
    val = [p for batch in dm.val_dataloader() for p in batch["path"]]
    assert sorted(val) == sorted(s for s, _ in dm.val_samples)


class _Probe(LightningModule):
    """Records the items the Trainer feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.train_paths: list[list[str]] = []

    def training_step(self, batch, batch_idx):
        self.train_paths.append(list(batch["path"]))
        if batch["video"].shape[0] == 0:
            return None
        return self.layer(batch["video"].mean(dim=(2, 3, 4))).mean()  # (B, C) -> scalar

    def configure_optimizers(self):
        # As AURLModule's schedule does: Lightning then builds the training loader before it
        # loads a checkpoint, and restores no loader position itself (the datamodule does).
        assert self.trainer.estimated_stepping_batches > 0
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _SaveAt(Callback):
    """Saves a checkpoint at the end of training batch ``step`` (mid-epoch)."""

    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == self.step:
            trainer.save_checkpoint(self.path)


def _fit(dm: ZeroShotDataModule, probe: _Probe, ckpt_path: Path | None = None, **kwargs) -> None:
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        **{"max_epochs": 1} | kwargs,
    )
    trainer.fit(probe, datamodule=dm, ckpt_path=ckpt_path)


@pytest.mark.slow
def test_lightning_fit_trains_from_shards_and_resumes_mid_epoch(shard_world, tmp_path) -> None:
    def datamodule() -> ZeroShotDataModule:
        return _datamodule(shard_world, StreamingShards(shard_world["shards"]))

    whole = _Probe()
    _fit(datamodule(), whole)
    assert sorted(p for batch in whole.train_paths for p in batch) == sorted(
        s for s, _ in datamodule().train_samples
    )
    interrupted, resumed = _Probe(), _Probe()
    _fit(datamodule(), interrupted, max_steps=3, callbacks=[_SaveAt(2, tmp_path / "mid.ckpt")])
    _fit(datamodule(), resumed, ckpt_path=tmp_path / "mid.ckpt")
    assert interrupted.train_paths == whole.train_paths[:3]
    assert resumed.train_paths == whole.train_paths[3:]


def _ddp_worker(rank: int, world: int, paths: dict[str, str], out: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{out}/store", rank=rank, world_size=world
    )
    shard_world = {k: Path(v) for k, v in paths.items()}
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]), batch_size=2)
    full = [batch["path"] for batch in dm.train_dataloader()]
    loader = dm.train_dataloader()
    first = []
    for batch in loader:
        first.append(batch["path"])
        if len(first) == 2:
            break
    # Lightning checkpoints rank 0's loader state; every rank resumes from it.
    state = [loader.state_dict()]
    torch.distributed.broadcast_object_list(state, src=0)
    fresh = dm.train_dataloader()
    fresh.load_state_dict(state[0])
    rest = [batch["path"] for batch in fresh]
    train = [s for s, _ in dm.train_samples]
    result = {"full": full, "first": first, "rest": rest, "train": train}
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.ddp
def test_two_ddp_ranks_stream_disjoint_shards_and_resume_exactly(shard_world, tmp_path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    paths = {k: str(v) for k, v in shard_world.items()}
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, paths, str(tmp_path)), nprocs=2, start_method="fork"
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    train = set(ranks[0]["train"])
    assert ranks[1]["train"] == ranks[0]["train"]
    streamed = [[p for batch in r["full"] for p in batch] for r in ranks]
    assert not set(streamed[0]) & set(streamed[1])
    for items in streamed:
        assert items and len(set(items)) == len(items) and set(items) <= train
    # litdata gives both ranks as many shard items (drop_last under DDP): a few may be left out.
    assert len(ranks[0]["full"]) == len(ranks[1]["full"])
    assert len(train) - len(streamed[0] + streamed[1]) <= 2 * 2
    for r in ranks:
        assert r["first"] + r["rest"] == r["full"]


@pytest.mark.slow
def test_aurl_trains_validates_and_tests_with_a_shard_source(shard_world, tmp_path) -> None:
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]), num_workers=2)
    trainer = tiny_trainer(tmp_path, max_epochs=1)
    module = tiny_module(tmp_path / "cache")
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == len(trainer.train_dataloader)
    assert trainer.callback_metrics["train/skipped_videos"] == 0
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert "val/top1" in trainer.callback_metrics
    results = trainer.test(module, datamodule=dm, verbose=False)
    assert len(results) == len(dm.class_space.test_sets)


def test_chunks_without_training_items_are_left_out(shard_world) -> None:
    dm = _datamodule(shard_world, StreamingShards(shard_world["shards"]))
    chunks = json.loads((shard_world["shards"] / "index.json").read_text())["chunks"]
    trained = {dm.source.item_index(s) for s, _ in dm.train_samples}
    expected, first = [], 0
    for chunk in chunks:
        if trained & set(range(first, first + chunk["chunk_size"])):
            expected.append(chunk["filename"])
        first += chunk["chunk_size"]
    dataset = dm.train_dataloader().dataset
    assert dataset.subsampled_files == expected
    assert len(expected) < len(chunks)  # the validation class fills chunks of its own
    assert len(dataset) == len(trained)


def _cut_fencing(path: str) -> bytes:
    """Stores the fencing videos cut short: they encode, but do not decode."""
    data = Path(path).read_bytes()
    return data[:200] if "fencing" in path else data


def test_undecodable_items_are_skipped_and_reported(shard_world, tmp_path) -> None:
    write_catalog_shards(
        VideoFolder(shard_world["source"]),
        tmp_path / "cut",
        encode=_cut_fencing,
        chunk_bytes="1MB",
        start_method="fork",
    )
    shards = StreamingShards(tmp_path / "cut")
    dm = _datamodule(shard_world, shards, val_fraction=0.0, batch_size=1)
    batches = list(dm.train_dataloader())
    skipped = [p for batch in batches for p in batch["skipped"]]
    streamed = [p for batch in batches for p in batch["path"]]
    # The cut fencing videos, and the broken file, stored as is this time.
    paths = {s: shards.item_path(shards.item_index(s)) for s, _ in dm.train_samples}
    bad = {s for s, path in paths.items() if path.startswith("fencing/") or path == BROKEN}
    assert len(bad) >= VIDEOS_PER_CLASS - 1 and sorted(skipped) == sorted(bad)
    assert sorted(streamed + skipped) == sorted(s for s, _ in dm.train_samples)


def test_existing_shards_are_kept_unless_overwritten(shard_world, tmp_path) -> None:
    samples = VideoFolder(shard_world["source"]).samples[:3]
    write_shards(samples, CLASSES, tmp_path / "out", start_method="fork")
    with pytest.raises(RuntimeError, match="already contains"):
        write_shards(samples[:2], CLASSES, tmp_path / "out", start_method="fork")
    assert len(read_shard_index(tmp_path / "out").paths) == 3
    write_shards(samples[:2], CLASSES, tmp_path / "out", overwrite=True, start_method="fork")
    assert read_shard_index(tmp_path / "out").paths == ["0.mp4", "1.mp4"]
    with pytest.raises(ValueError, match="outside classes"):
        write_shards([(samples[0][0], 6)], CLASSES, tmp_path / "bad")
    with pytest.raises(ValueError, match="not inside root"):
        write_shards(samples, CLASSES, tmp_path / "bad", root=shard_world["target"])


def test_writing_leaves_the_process_start_method_alone(shard_world, tmp_path) -> None:
    # litdata's optimize sets the default start method for good; later DataLoaders of the
    # process would start their workers that way (spawn: seconds each).
    samples = VideoFolder(shard_world["source"]).samples[:1]
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        write_shards(samples, CLASSES, tmp_path / "out", start_method="fork")
        assert multiprocessing.get_start_method(allow_none=True) == "forkserver"
    finally:
        multiprocessing.set_start_method(before, force=True)


def test_item_order_holds_with_more_than_ten_chunks_per_worker(shard_world, tmp_path) -> None:
    # One item per chunk: chunk-0-10 must follow chunk-0-9, not chunk-0-1.
    from litdata import StreamingDataset

    index = write_catalog_shards(
        VideoFolder(shard_world["source"]),
        tmp_path / "many",
        encode=_check_and_read,
        num_workers=2,
        chunk_bytes=1,
        start_method="fork",
    )
    stream = StreamingDataset(str(tmp_path / "many"))
    assert len(stream.subsampled_files) == len(index.paths) > 20
    assert [stream[i]["path"] for i in range(len(stream))] == index.paths
