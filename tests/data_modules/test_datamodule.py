"""ZeroShotDataModule on tiny VideoFolder and SyntheticActions sources: classes, batches, DDP."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import LightningModule, Trainer, seed_everything
from torch import nn

from aurl.text_encoders import create_text_encoder
from data_modules import datamodule as datamodule_module
from data_modules.clip_dataset import VideoClipDataset, collate_skip
from data_modules.datamodule import ZeroShotDataModule
from data_modules.datasets import SyntheticActions, VideoFolder
from data_modules.transforms import KINETICS_MEAN, KINETICS_STD, to_model_input
from data_modules.video_writer import write_video

SOURCE_CLASSES = [
    "abseiling",
    "knitting",
    "playing cello",
    "playing violin",
    "riding bike",
    "rowing boat",
    "surfing",
    "yoga",
]
TARGET_CLASSES = ["Knitting", "PlayingCello", "Rowing", "Skiing", "Swimming"]
# Every word of the class names above, for a tiny word2vec file (4-d).
WORDS = {
    "abseiling": [-1.0, 0.0, 0.0, 0.5],
    "knitting": [0.3, -1.0, 0.2, 0.0],
    "playing": [1.0, 0.0, 0.0, 0.0],
    "cello": [0.0, 1.0, 0.0, 0.0],
    "violin": [0.0, 0.9, 0.3, 0.0],
    "riding": [0.0, 0.0, 1.0, 0.1],
    "bike": [0.0, 0.0, 0.2, 1.0],
    "rowing": [0.5, 0.5, 0.5, -0.5],
    "boat": [0.1, -0.3, 0.9, 0.2],
    "surfing": [0.7, -0.7, 0.0, 0.1],
    "yoga": [-0.2, 0.1, -0.9, 0.4],
    "skiing": [0.0, 0.4, -0.6, -0.7],
    "swimming": [-0.6, -0.4, 0.6, -0.3],
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Source: 8 classes x 3 videos; target: 5 CamelCase classes x 2 videos + 1 (11, odd)."""
    root = tmp_path_factory.mktemp("dm")
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    for t in range(8):
        frames[t] = 30 * t
    video = write_video(root / "ramp.mp4", frames, fps=8).read_bytes()
    layout = {"source": (SOURCE_CLASSES, 3), "target": (TARGET_CLASSES, 2)}
    for part, (classes, count) in layout.items():
        for c in classes:
            for i in range(count + (part == "target" and c == "Swimming")):
                path = root / part / c / f"{i}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(video)
    vectors = root / "vectors.txt"
    lines = [f"{len(WORDS)} 4"] + [f"{w} {' '.join(map(str, v))}" for w, v in WORDS.items()]
    vectors.write_text("\n".join(lines) + "\n")
    return {"source": root / "source", "target": root / "target", "vectors": vectors}


def _datamodule(folders: dict[str, Path], **kwargs) -> ZeroShotDataModule:
    options = dict(
        source=VideoFolder(folders["source"]),
        targets=[VideoFolder(folders["target"], name_style="ucf101", name="target")],
        overlap_tau=0.0,
        val_fraction=0.25,
        clip_len=4,
        size=32,
        batch_size=4,
        eval_batch_size=3,
        seed=0,
    )
    options.update(kwargs)
    return ZeroShotDataModule(**options)


def _folder_class(path: str) -> str:
    return Path(path).parent.name


def test_class_lists_and_batch_shapes(folders) -> None:
    dm = _datamodule(folders, protocol="both", test_clips=2)
    dm.setup("fit")
    assert len(dm.class_space.val_classes) == 2 and len(dm.class_space.train_classes) == 6
    assert sorted(dm.class_space.train_classes + dm.class_space.val_classes) == SOURCE_CLASSES
    assert dm.class_space.train_classes == [
        c for c in SOURCE_CLASSES if c in dm.class_space.train_classes
    ]

    batch = next(iter(dm.train_dataloader()))
    # uint8 clips cross to the device: a quarter of float32's bytes.
    assert batch["video"].shape == (4, 4, 32, 32, 3) and batch["video"].dtype == torch.uint8
    assert batch["label"].dtype == torch.long
    for path, label, name in zip(batch["path"], batch["label"], batch["class_name"], strict=True):
        assert _folder_class(path) == dm.class_space.train_classes[label] == name
    assert batch["skipped"] == []
    train_paths = [p for b in dm.train_dataloader() for p in b["path"]]
    assert len(train_paths) == 16  # 18 videos, the last incomplete batch dropped
    assert {_folder_class(p) for p in train_paths} <= set(dm.class_space.train_classes)

    val_batches = list(dm.val_dataloader())
    val_paths = [p for b in val_batches for p in b["path"]]
    assert sorted(val_paths) == sorted(
        str(folders["source"] / c / f"{i}.mp4")
        for c in dm.class_space.val_classes
        for i in range(3)
    )
    for b in val_batches:
        assert b["video"].shape[1:] == (4, 32, 32, 3)
        assert [dm.class_space.val_classes[y] for y in b["label"]] == [
            _folder_class(p) for p in b["path"]
        ]

    (test_set,) = dm.class_space.test_sets
    assert test_set.name == "target" and test_set.seen_mask is None and test_set.report_full
    assert test_set.class_names == ["knitting", "playing cello", "rowing", "skiing", "swimming"]
    # The 50% splits follow the original recipe over the sorted raw (folder) names.
    raw = sorted(TARGET_CLASSES)
    for s, split in enumerate(test_set.half_splits):
        np.random.seed(s)
        assert [TARGET_CLASSES[i] for i in split] == [raw[i] for i in np.random.permutation(5)[:2]]
    (loader,) = dm.test_dataloader()
    test_batches = list(loader)
    assert test_batches[0]["video"].shape == (3, 2, 4, 32, 32, 3)
    # On the device, the datamodule's hook makes the model's normalised float input.
    moved = dm.on_after_batch_transfer(dict(test_batches[0]), 0)["video"]
    assert moved.shape == (3, 2, 3, 4, 32, 32) and moved.dtype == torch.float32
    assert torch.equal(
        moved, to_model_input(test_batches[0]["video"], KINETICS_MEAN, KINETICS_STD)
    )
    assert sum(len(b["path"]) for b in test_batches) == 11
    for b in test_batches:
        names = [TARGET_CLASSES[y] for y in b["label"]]
        assert names == [_folder_class(p) for p in b["path"]]


def test_protocols(folders) -> None:
    full = _datamodule(folders, protocol="full")
    full.setup("test")
    assert (
        full.class_space.test_sets[0].half_splits is None
        and full.class_space.test_sets[0].report_full
    )
    half = _datamodule(folders, protocol="half")
    half.setup("test")
    assert (
        len(half.class_space.test_sets[0].half_splits) == 10
        and not half.class_space.test_sets[0].report_full
    )


def test_split_is_seeded(folders) -> None:
    def first_epoch(seed: int) -> tuple[list[str], list[str]]:
        dm = _datamodule(folders, seed=seed)
        dm.setup("fit")
        return dm.class_space.val_classes, [p for b in dm.train_dataloader() for p in b["path"]]

    assert first_epoch(0) == first_epoch(0)
    assert first_epoch(0)[1] != first_epoch(1)[1]


def test_seed_follows_seed_everything_unless_given(folders, monkeypatch) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    assert _datamodule(folders, seed=None).seed == 0
    seed_everything(7)
    assert _datamodule(folders, seed=None).seed == 7
    assert _datamodule(folders, seed=3).seed == 3


def test_validation_videos_can_be_capped_per_class(folders) -> None:
    full = _datamodule(folders)
    full.setup("fit")
    capped = _datamodule(folders, max_val_videos_per_class=2)
    capped.setup("fit")
    assert capped.class_space.val_classes == full.class_space.val_classes
    assert len(capped.val_samples) == 2 * len(capped.class_space.val_classes)
    assert set(capped.val_samples) <= set(full.val_samples)
    assert {y for _, y in capped.val_samples} == set(range(len(capped.class_space.val_classes)))


def test_overlap_removal_drops_source_classes_near_targets(folders, tmp_path: Path) -> None:
    encoder = create_text_encoder("word2vec", path=folders["vectors"])
    report = tmp_path / "overlap.tsv"
    dm = _datamodule(
        folders, overlap_tau=0.05, text_encoder=encoder, overlap_report=report, val_fraction=0.2
    )
    dm.setup("fit")
    # "playing cello" and "knitting" are target classes too; "playing violin" is 0.026 away.
    assert dm.overlap.removed == ["knitting", "playing cello", "playing violin"]
    kept = [c for c in SOURCE_CLASSES if c not in dm.overlap.removed]
    assert sorted(dm.class_space.train_classes + dm.class_space.val_classes) == kept
    assert len(dm.class_space.val_classes) == 1
    rows = {r["source_class"]: r for r in csv.DictReader(report.open(), delimiter="\t")}
    assert rows["playing cello"]["nearest_target"] == "playing cello"
    assert [c for c, r in rows.items() if r["status"] == "removed"] == dm.overlap.removed
    train_classes = {_folder_class(p) for p, _ in dm.train_samples}
    assert not train_classes & set(dm.overlap.removed)


def test_overlap_removal_reads_cached_embeddings_without_loading_the_encoder(
    folders, tmp_path: Path
) -> None:
    runs = []
    for _ in range(2):
        encoder = create_text_encoder("word2vec", path=folders["vectors"])
        dm = _datamodule(
            folders, overlap_tau=0.05, text_encoder=encoder, embedding_cache_dir=str(tmp_path)
        )
        dm.setup("fit")
        runs.append((encoder._vectors is not None, dm.overlap))
    assert [loaded for loaded, _ in runs] == [True, False]  # the second run hit the cache
    assert runs[0][1] == runs[1][1]


def _synthetic_datamodule(tmp_path: Path, videos_per_class: int, **kwargs) -> ZeroShotDataModule:
    """A generated 2 x 2 x 2 SyntheticActions (2 unseen classes) with GZSL sets."""
    catalog = dict(
        root=tmp_path,
        colours=["red", "blue"],
        shapes=["square", "circle"],
        motions=["moving left", "growing"],
        videos_per_class=videos_per_class,
        num_frames=8,
        num_unseen=2,
        num_workers=1,
    )
    options = dict(gzsl=True, overlap_tau=0.0, clip_len=4, size=32, batch_size=2) | kwargs
    return ZeroShotDataModule(
        source=SyntheticActions(part="seen", **catalog),
        targets=[SyntheticActions(part="unseen", **catalog)],
        **options,
    )


def test_gzsl_on_synthetic(tmp_path: Path) -> None:
    dm = _synthetic_datamodule(tmp_path, 3, val_fraction=0.0, gzsl_video_fraction=0.34)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.class_space.val_classes == [] and dm.val_dataloader() == []
    assert len(dm.class_space.train_classes) == 6 and len(dm.train_samples) == 6 * 2
    zsl, gzsl = dm.class_space.test_sets
    assert zsl.name == "synthetic_unseen" and len(zsl.class_names) == 2
    assert gzsl.name == "synthetic_unseen_gzsl"
    assert gzsl.class_names == dm.class_space.train_classes + zsl.class_names
    assert gzsl.seen_mask == [True] * 6 + [False] * 2
    gzsl_samples = dm.test_samples[1]
    assert len(gzsl_samples) == 6 * 1 + 2 * 3
    held_out = {p for p, y in gzsl_samples if gzsl.seen_mask[y]}
    assert not held_out & {p for p, _ in dm.train_samples}
    for path, label in gzsl_samples:
        assert _folder_class(path) == gzsl.class_names[label]
    batch = next(iter(dm.test_dataloader()[1]))
    assert batch["video"].shape == (2, 4, 32, 32, 3)
    # Flips: a "moving left" class takes its "moving right" twin's label where that is a
    # training class (there is none in this vocabulary: never flipped); "growing" is its own.
    assert dm.train_dataloader().dataset.flip_labels is None
    dm.hflip = True
    expected = [
        -1 if name.endswith("moving left") else label
        for label, name in enumerate(dm.class_space.train_classes)
    ]
    assert dm.train_flip_labels() == expected
    assert dm.train_dataloader().dataset.flip_labels == expected


def test_bad_arguments_are_explained(folders) -> None:
    with pytest.raises(ValueError, match="text_encoder"):
        _datamodule(folders, overlap_tau=0.05)
    dm = _datamodule(folders, batch_size=64)
    dm.setup("fit")
    with pytest.raises(ValueError, match="batch_size=64"):
        dm.train_dataloader()
    twice = _datamodule(folders, targets=[VideoFolder(folders["target"])] * 2)
    with pytest.raises(ValueError, match="distinct names"):
        twice.setup("test")


class _Probe(LightningModule):
    """Records what the Trainer feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.train_paths: dict[int, list[str]] = defaultdict(list)
        self.val_paths: dict[int, list[str]] = defaultdict(list)
        self.inputs: set[tuple[torch.dtype, tuple[int, ...]]] = set()

    def training_step(self, batch, batch_idx):
        self.train_paths[self.current_epoch] += batch["path"]
        self.inputs.add((batch["video"].dtype, tuple(batch["video"].shape[1:])))
        return self.layer(batch["video"].mean(dim=(2, 3, 4))).mean()

    def validation_step(self, batch, batch_idx):
        self.val_paths[self.current_epoch] += batch["path"]
        self.inputs.add((batch["video"].dtype, tuple(batch["video"].shape[1:])))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_reshuffles_and_validates(folders) -> None:
    dm = _datamodule(folders, batch_size=3)
    probe = _Probe()
    trainer = Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
    )
    trainer.fit(probe, datamodule=dm)
    epochs = [probe.train_paths[e] for e in (0, 1)]
    train_set = sorted(p for p, _ in dm.train_samples)
    assert sorted(epochs[0]) == sorted(epochs[1]) == train_set  # 18 videos, batches of 3
    assert epochs[0] != epochs[1]
    assert trainer.train_dataloader.dataset.epoch == 1
    val_set = sorted(p for p, _ in dm.val_samples)
    assert sorted(probe.val_paths[0]) == sorted(probe.val_paths[1]) == val_set
    # Lightning called the datamodule's on_after_batch_transfer: the steps got floats.
    assert probe.inputs == {(torch.float32, (3, 4, 32, 32))}


def test_empty_batches_stay_empty_on_the_device(folders) -> None:
    dm = _datamodule(folders)
    empty = collate_skip([None, None])
    moved = dm.on_after_batch_transfer(empty, 0)
    assert moved["video"].shape == (0,) and moved["video"].dtype == torch.float32
    assert moved["label"].shape == (0,) and moved["skipped"] == ["<unknown>"] * 2


def _ddp_worker(rank: int, world: int, folders: dict[str, str], out: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{out}/store", rank=rank, world_size=world
    )
    as_paths = {k: Path(v) for k, v in folders.items()}
    dm = _datamodule(as_paths, batch_size=3, eval_batch_size=2, num_workers=1)
    dm.setup("fit")
    loader = dm.train_dataloader()
    train = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        train.append([p for b in loader for p in b["path"]])
    test = [p for b in dm.test_dataloader()[0] for p in b["path"]]
    result = {"train": train, "test": test, "classes": dm.class_space.train_classes}
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


@pytest.mark.ddp
def test_two_ranks_split_training_and_evaluate_every_video_once(folders, tmp_path: Path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    as_str = {k: str(v) for k, v in folders.items()}
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, as_str, str(tmp_path)), nprocs=2, start_method="fork"
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["classes"] == ranks[1]["classes"]
    target = sorted(str(p) for p in folders["target"].rglob("*.mp4"))
    assert len(target) == 11
    # Evaluation: every target video exactly once over the two ranks (6 + 5).
    assert sorted(ranks[0]["test"] + ranks[1]["test"]) == target
    assert sorted(len(r["test"]) for r in ranks) == [5, 6]
    # Training: 18 videos, 9 per rank; the shards partition the set and change per epoch.
    for epoch in range(2):
        shards = [r["train"][epoch] for r in ranks]
        assert len(shards[0]) == len(shards[1]) == 9
        assert len(set(shards[0] + shards[1])) == 18
    assert ranks[0]["train"][0] != ranks[0]["train"][1]


def test_gzsl_calibration_set_is_validation_data_apart_from_every_other_set(
    tmp_path: Path,
) -> None:
    dm = _synthetic_datamodule(tmp_path, 6, val_fraction=0.34)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.class_space.val_classes) == 2 and len(dm.class_space.train_classes) == 4
    zsl, gzsl, calibration = dm.class_space.test_sets
    for eval_set in (zsl, gzsl):  # synthetic class names carry their attributes
        for k, name in enumerate(eval_set.class_names):
            parts = [eval_set.attributes[a][k] for a in ("colour", "shape", "motion")]
            assert " ".join(parts) == name
    assert calibration.calibration and not gzsl.calibration
    assert calibration.name == "synthetic_seen_calibration"
    assert calibration.class_names == dm.class_space.train_classes + dm.class_space.val_classes
    assert calibration.seen_mask == [True] * 4 + [False] * 2
    samples = dm.test_samples[2]
    seen = [p for p, y in samples if y < 4]
    unseen = [p for p, y in samples if y >= 4]
    # One calibration video per training class (10% of 6, at least 1), all validation videos.
    assert len(seen) == 4 and sorted(unseen) == sorted(p for p, _ in dm.val_samples)
    for path, label in samples:
        assert _folder_class(path) == calibration.class_names[label]
    others = {p for p, _ in dm.train_samples} | {p for p, _ in dm.test_samples[1]}
    assert not set(seen) & others
    assert len(dm.train_samples) == 4 * (6 - 1 - 1)
    off = _synthetic_datamodule(tmp_path, 6, val_fraction=0.34, gzsl_calibration_fraction=0.0)
    off.setup("fit")
    assert [s.name for s in off.class_space.test_sets] == [
        "synthetic_unseen",
        "synthetic_unseen_gzsl",
    ]
    # The GZSL test videos do not depend on whether calibration videos are held out.
    assert off.test_samples[1] == dm.test_samples[1]


class _CountingClips(VideoClipDataset):
    """The training dataset, counting the reads of each item (shared with the workers)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads = torch.zeros(len(self), dtype=torch.int64).share_memory_()

    def __getitem__(self, index: int):
        self.reads[index] += 1
        return super().__getitem__(index)


def _epoch_one_loader(folders, num_workers: int, state: dict | None = None):
    """The training loader of a fresh datamodule (given ``state``), set to epoch 1."""
    dm = _datamodule(folders, batch_size=3, num_workers=num_workers)
    dm.setup("fit")
    if state is not None:
        dm.load_state_dict(state)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)  # as Lightning does before the epoch's first batch
    return dm, loader


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_loader_resumes_mid_epoch_without_reading_the_batches_before(
    folders, monkeypatch: pytest.MonkeyPatch, num_workers: int
) -> None:
    monkeypatch.setattr(datamodule_module, "VideoClipDataset", _CountingClips)
    _, reference = _epoch_one_loader(folders, num_workers)
    expected = [batch["path"] for batch in reference]
    assert len(expected) == 6  # 18 videos, batches of 3

    dm, interrupted = _epoch_one_loader(folders, num_workers)
    # No batch yet: no position to resume.
    assert dm.state_dict() == {"train_loader": {"loader": {}, "num_workers": num_workers}}
    batches = iter(interrupted)
    assert [next(batches)["path"] for _ in range(2)] == expected[:2]
    buffer = io.BytesIO()
    torch.save(dm.state_dict(), buffer)  # as in a checkpoint, loaded with weights_only
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed_dm, resumed = _epoch_one_loader(folders, num_workers, state)
    assert [batch["path"] for batch in resumed] == expected[2:]
    # Only the remaining batches' videos were decoded, each once: the first two were skipped
    # as indices.
    reads = resumed.dataset.reads
    assert int(reads.max()) == 1
    read = sorted(resumed_dm.train_samples[i][0] for i in reads.nonzero().flatten().tolist())
    assert read == sorted(p for batch in expected[2:] for p in batch)
    # The state of a finished epoch (as at an epoch-end checkpoint: Lightning stops after the
    # last batch, before the iterator's end) resumes the next one whole.
    assert [next(batches)["path"] for _ in range(4)] == expected[2:]
    reference.sampler.set_epoch(2)
    next_epoch = [batch["path"] for batch in reference]
    _, after_the_end = _epoch_one_loader(folders, num_workers, dm.state_dict())
    after_the_end.sampler.set_epoch(2)
    assert [batch["path"] for batch in after_the_end] == next_epoch


def test_training_loader_with_other_workers_restarts_the_epoch_and_says_so(
    folders, caplog: pytest.LogCaptureFixture
) -> None:
    _, reference = _epoch_one_loader(folders, 0)
    expected = [batch["path"] for batch in reference]
    dm, interrupted = _epoch_one_loader(folders, 0)
    next(iter(interrupted))
    with caplog.at_level("WARNING", logger="data_modules.datamodule"):
        _, resumed = _epoch_one_loader(folders, 1, dm.state_dict())
    assert "ran 0 workers, this run 1" in caplog.text
    assert [batch["path"] for batch in resumed] == expected
