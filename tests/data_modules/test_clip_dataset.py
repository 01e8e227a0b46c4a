"""The clip Dataset and its collate, on tiny generated videos."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_modules.clip_dataset import VideoClipDataset, collate_skip
from data_modules.clip_sampling import create_clip_sampler
from data_modules.transforms import ShortSideCropTransform, create_transform
from data_modules.video_reader import ResizeCrop
from data_modules.video_writer import write_video
from tests.data_modules.ramp import NUM_FRAMES, frame_index, place
from tests.tiny import write_audio_only


def _dataset(samples, class_names, sampler="random", num_clips=1, seed=0) -> VideoClipDataset:
    return VideoClipDataset(
        samples,
        class_names,
        create_clip_sampler(sampler, clip_len=4, num_clips=num_clips),
        create_transform("aurl", train=sampler == "random", size=32),
        seed=seed,
    )


# --- VideoClipDataset ----------------------------------------------------------------------
def test_items_have_contract_shapes(tmp_path: Path, ramp_videos) -> None:
    samples = [(place(ramp_videos["mp4"], tmp_path / f"{i}.mp4"), i % 2) for i in range(3)]
    dataset = _dataset(samples, ["a", "b"])
    item = dataset[1]
    # uint8 clips, already at the transform's size: the device normalises them.
    assert item["video"].shape == (4, 32, 32, 3) and item["video"].dtype == torch.uint8
    assert item["label"] == 1 and item["class_name"] == "b" and item["path"] == samples[1][0]
    multi = _dataset(samples, ["a", "b"], sampler="uniform", num_clips=2)[0]["video"]
    assert multi.shape == (2, 4, 32, 32, 3)
    # Uniform clips of an 8-frame video: segments start at frames 0 and 4.
    assert [frame_index(clip) for clip in multi] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    batch = collate_skip([dataset[0], dataset[2]])
    assert batch["video"].shape == (2, 4, 32, 32, 3) and batch["label"].tolist() == [0, 0]
    assert batch["video"].dtype == torch.uint8
    small = VideoClipDataset(
        samples,
        ["a", "b"],
        create_clip_sampler("uniform", clip_len=4),
        create_transform("e2e", train=False, size=16, short_side=20),
    )[0]["video"]
    assert small.shape == (4, 16, 16, 3) and frame_index(small) == [0, 1, 2, 3]
    assert batch["skipped"] == [] and batch["class_name"] == ["a", "a"]


def test_randomness_depends_on_seed_epoch_and_index_only(tmp_path: Path, ramp_videos) -> None:
    samples = [(place(ramp_videos["mp4"], tmp_path / f"{i}.mp4"), 0) for i in range(6)]

    def starts(dataset: VideoClipDataset, num_workers: int) -> list[int]:
        loader = DataLoader(
            dataset, batch_size=2, num_workers=num_workers, collate_fn=collate_skip
        )
        return [frame_index(v)[0] for batch in loader for v in batch["video"]]

    dataset = _dataset(samples, ["a"], seed=3)
    epoch0 = starts(dataset, 0)
    # Same seed and epoch: the same clips whatever the number of workers.
    assert starts(_dataset(samples, ["a"], seed=3), 2) == epoch0
    assert all(0 <= s <= NUM_FRAMES - 4 for s in epoch0)
    epochs = [epoch0]
    for epoch in (1, 2, 3):
        dataset.set_epoch(epoch)
        epochs.append(starts(dataset, 0))
    # Random starts in [0, 4] for 6 videos: four epochs agreeing everywhere has odds ~1e-13.
    assert len({tuple(e) for e in epochs}) > 1
    assert len(set(epochs[0])) > 1
    # Persistent workers were started in epoch 0; the shared epoch still reaches them.
    persistent = _dataset(samples, ["a"], seed=3)
    loader = DataLoader(
        persistent, batch_size=2, num_workers=1, persistent_workers=True, collate_fn=collate_skip
    )
    for epoch, expected in enumerate(epochs):
        persistent.set_epoch(epoch)
        assert [frame_index(v)[0] for b in loader for v in b["video"]] == expected


class _RecordingE2E(ShortSideCropTransform):
    """The real E2E transform, keeping every plan it gives (items read in this process)."""

    def __init__(self) -> None:
        super().__init__(train=True, size=16, short_side=20)
        self.plans: list[ResizeCrop] = []

    def _plan(self, height: int, width: int, rng: random.Random) -> ResizeCrop:
        self.plans.append(super()._plan(height, width, rng))
        return self.plans[-1]


def test_frames_crops_and_flips_are_those_of_the_float_pipeline(
    tmp_path: Path, ramp_videos
) -> None:
    # The float pipeline drew, from each item's generator: the clip starts, then per clip the
    # crop (row, column) and flip of E2E's random crop, then the item's mirror. Written out
    # here, it predicts the frames, windows and mirrors of the planned pipeline.
    samples = [(place(ramp_videos["mp4"], tmp_path / f"{i}.mp4"), i % 2) for i in range(12)]
    sampler = create_clip_sampler("random", clip_len=4, num_clips=2)
    transform = _RecordingE2E()
    seen_clips, seen_crops, seen_mirrors = set(), set(), set()
    for seed, epoch in [(0, 0), (0, 1), (7, 0), (7, 3)]:
        dataset = VideoClipDataset(
            samples, ["a", "b"], sampler, transform, seed=seed, flip_labels=[1, 0]
        )
        dataset.set_epoch(epoch)
        for index, (_, label) in enumerate(samples):
            rng = random.Random(dataset.item_seed(index))
            clips = [c.frame_indices for c in sampler(NUM_FRAMES, rng)]
            crops = []
            for _ in clips:  # 32x32 frames, short side 20: 20x20, windows of 16
                top, left = rng.randint(0, 20 - 16), rng.randint(0, 20 - 16)
                crops.append(ResizeCrop(20, 20, top, left, 16, rng.random() < 0.5))
            mirrored = rng.random() < 0.5
            transform.plans.clear()
            item = dataset[index]
            assert [frame_index(clip) for clip in item["video"]] == [list(c) for c in clips]
            assert transform.plans == crops
            assert item["label"] == (1 - label if mirrored else label)
            seen_clips.add(tuple(clips[0]))
            seen_crops.update(crops)
            seen_mirrors.add(mirrored)
    # The draws vary: 48 items agreeing by chance would prove nothing.
    assert len(seen_clips) > 2 and len(seen_crops) > 20 and seen_mirrors == {True, False}
    assert {c.flip for c in seen_crops} == {True, False}


def test_corrupt_videos_are_skipped_once_and_counted(tmp_path: Path, ramp_videos, caplog) -> None:
    good = [place(ramp_videos["mp4"], tmp_path / f"good{i}.mp4") for i in range(5)]
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 20)
    truncated = tmp_path / "truncated.mp4"
    data = ramp_videos["mp4"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing.mp4"
    bad = [str(zero), str(text), str(truncated), str(missing)]
    samples = [
        (p, 0)
        for p in [good[0], bad[0], good[1], bad[1], bad[2], good[2], good[3], bad[3], good[4]]
    ]
    dataset = _dataset(samples, ["a"], sampler="uniform")
    loader = DataLoader(dataset, batch_size=3, collate_fn=collate_skip)
    seen, skipped = [], []
    with caplog.at_level(logging.WARNING, logger="data_modules.clip_dataset"):
        for _ in range(2):  # two epochs: still one warning per file
            for batch in loader:
                assert batch["video"].shape[0] == len(batch["path"]) == batch["label"].shape[0]
                seen += batch["path"]
                skipped += batch["skipped"]
    assert sorted(seen) == sorted(good * 2)
    assert sorted(skipped) == sorted(bad * 2)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 4
    for path in bad:
        (message,) = [m for m in messages if path in m]
        assert "skipping" in message
    assert any("0 bytes" in m for m in messages) and any("not found" in m for m in messages)


def test_more_bad_inputs_never_stop_a_pass(tmp_path: Path, ramp_videos, caplog) -> None:
    good = [place(ramp_videos["mp4"], tmp_path / f"good{i}.mp4") for i in range(2)]
    short = str(write_video(tmp_path / "short.mp4", np.full((2, 32, 32, 3), 90, np.uint8)))
    audio = str(write_audio_only(tmp_path / "audio.mp4"))
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    damaged = write_video(tmp_path / "damaged.mp4", noise, fps=8, gop_size=24)
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle - 200 : middle + 200] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    samples = [(p, 0) for p in (good[0], short, audio, str(damaged), good[1])]
    dataset = _dataset(samples, ["a"], sampler="uniform")
    with caplog.at_level(logging.WARNING, logger="data_modules.clip_dataset"):
        batches = list(DataLoader(dataset, batch_size=2, collate_fn=collate_skip))
    paths = [p for b in batches for p in b["path"]]
    skipped = [p for b in batches for p in b["skipped"]]
    # A video shorter than a clip is used (its clip loops over its 2 frames), not skipped.
    assert good[0] in paths and good[1] in paths and short in paths
    assert skipped.count(audio) == 1 and audio not in paths
    warned = [r.getMessage() for r in caplog.records if audio in r.getMessage()]
    assert len(warned) == 1 and "no video stream" in warned[0]
    # Overwritten middle bytes: FFmpeg may conceal the damage or give up; either way the file
    # is used or skipped exactly once, and the pass goes on.
    assert paths.count(str(damaged)) + skipped.count(str(damaged)) == 1
    short_item = next(
        v for b in batches for v, p in zip(b["video"], b["path"], strict=True) if p == short
    )
    assert frame_index(short_item) == [3, 3, 3, 3]  # the flat level 90 = ramp level 3


@pytest.mark.usefixtures("unreadable_means_unreadable")
def test_unreadable_file_is_skipped(tmp_path: Path, ramp_videos, caplog) -> None:
    locked = Path(place(ramp_videos["mp4"], tmp_path / "locked.mp4"))
    locked.chmod(0)
    dataset = _dataset([(str(locked), 0)], ["a"], sampler="uniform")
    with caplog.at_level(logging.WARNING, logger="data_modules.clip_dataset"):
        assert dataset[0] is None
    assert "Permission denied" in caplog.text and str(locked) in caplog.text


def test_all_bad_batch_collates_to_an_empty_batch(tmp_path: Path) -> None:
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    dataset = _dataset([(str(zero), 0)] * 2, ["a"], sampler="uniform")
    (batch,) = list(DataLoader(dataset, batch_size=2, collate_fn=collate_skip))
    assert batch["video"].shape == (0,) and batch["video"].dtype == torch.uint8
    assert batch["label"].shape == (0,) and batch["label"].dtype == torch.long
    assert batch["skipped"] == [str(zero)] * 2 and batch["path"] == []
    # A plain list of items (no __getitems__) still counts its skips.
    assert collate_skip([None, None])["skipped"] == ["<unknown>", "<unknown>"]


def test_labels_outside_the_class_list_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label 2"):
        _dataset([(str(tmp_path / "x.mp4"), 2)], ["a", "b"])


def test_flips_mirror_the_clip_and_take_the_mirrored_label(tmp_path: Path) -> None:
    # Column c of every frame has level 8 * c: a flip shows as a reversed ramp.
    frames = np.broadcast_to(
        (8 * np.arange(32, dtype=np.uint8))[None, None, :, None], (8, 32, 32, 3)
    )
    video = write_video(tmp_path / "ramp.mp4", np.ascontiguousarray(frames), fps=8)
    samples = [(str(video), i % 3) for i in range(24)]
    names = ["moving left", "moving right", "moving up"]

    def dataset(flip_labels):
        return VideoClipDataset(
            samples,
            names,
            create_clip_sampler("random", clip_len=4),
            create_transform("aurl", train=True, size=32),
            seed=0,
            flip_labels=flip_labels,
        )

    plain, flipping = dataset(None), dataset([1, 0, 2])
    flipped = 0
    for i, (_, label) in enumerate(samples):
        item, reference = flipping[i], plain[i]
        if torch.equal(item["video"], reference["video"]):
            assert item["label"] == label
        else:
            assert torch.equal(item["video"], reference["video"].flip(-2))  # (T, H, W, 3)
            assert item["label"] == [1, 0, 2][label] and item["class_name"] == names[item["label"]]
            flipped += 1
    assert 0 < flipped < len(samples)
    never = dataset([-1, -1, -1])
    assert all(torch.equal(never[i]["video"], plain[i]["video"]) for i in range(len(samples)))
    with pytest.raises(ValueError, match="flip_labels"):
        dataset([0, 1])
