"""Catalogs on real layouts built from tiny generated videos."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from data_modules.datasets import (
    HMDB51,
    UCF101,
    AnnotationError,
    Kinetics700,
    SyntheticActions,
    VideoFolder,
    read_class_list,
)
from tests.data_modules.ramp import place


# --- VideoFolder -------------------------------------------------------------------------
def test_video_folder_lists_sorted_classes_and_videos(tmp_path: Path, ramp_videos) -> None:
    root = tmp_path / "folder"
    expected = [
        place(ramp_videos["mp4"], root / "PlayingCello" / "a.mp4"),
        place(ramp_videos["avi"], root / "PlayingCello" / "b.AVI"),
        place(ramp_videos["mp4"], root / "ApplyEyeMakeup" / "z.mkv"),
    ]
    (root / "PlayingCello" / "notes.txt").write_text("not a video")
    (root / "PlayingCello" / ".hidden.mp4").write_bytes(b"")
    (root / ".cache").mkdir()
    (root / "manifest.json").write_text("{}")
    catalog = VideoFolder(root, name_style="ucf101")
    assert catalog.raw_class_names == ["ApplyEyeMakeup", "PlayingCello"]
    assert catalog.class_names == ["apply eye makeup", "playing cello"]
    assert catalog.samples == [(expected[2], 0), (expected[0], 1), (expected[1], 1)]
    assert catalog.name == "folder" and len(catalog) == 3 and catalog.missing == []


def test_video_folder_warns_once_naming_unreadable_entries(
    tmp_path: Path, ramp_videos, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "folder"
    good = place(ramp_videos["mp4"], root / "cello" / "a.mp4")
    dangling = [root / "cello" / "gone.mp4", root / "violin" / "moved.avi"]
    (root / "violin").mkdir()
    for link in dangling:
        link.symlink_to(tmp_path / "elsewhere" / link.name)
    (root / "cello" / "frames.mp4").mkdir()  # a folder with a video's name
    (root / "flute").symlink_to(tmp_path / "deleted_class", target_is_directory=True)
    (root / "cello" / "readme.txt").symlink_to(tmp_path / "nothing")  # not a video: ignored
    with caplog.at_level(logging.WARNING, logger="data_modules"):
        catalog = VideoFolder(root)
        assert catalog.samples == [(good, 0)]
    assert catalog.raw_class_names == ["cello", "violin"]
    (line,) = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert "skipped 4 unreadable entries" in line
    for link in [*dangling, root / "flute"]:
        assert f"{link} (dangling link)" in line
    assert f"{root / 'cello' / 'frames.mp4'} (not a file)" in line
    assert "readme.txt" not in line
    _ = catalog.samples, catalog.class_names  # listed once: no second warning
    assert sum("unreadable" in r.getMessage() for r in caplog.records) == 1


def test_video_folder_missing_root_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        _ = VideoFolder(tmp_path / "nowhere").samples


# --- Kinetics-700 --------------------------------------------------------------------------
KINETICS_HEADER = "label,youtube_id,time_start,time_end,split\n"


def _kinetics_clip(root: Path, label: str, yid: str, start: int, split: str = "train") -> Path:
    return root / split / label / f"{yid}_{start:06d}_{start + 10:06d}.mp4"


def test_kinetics700_lists_clips_and_drops_missing(tmp_path: Path, ramp_videos, caplog) -> None:
    root = tmp_path / "k700"
    rows = [
        ("abseiling", "aaa", 0),
        ("playing cello", "bbb", 12),
        ("playing cello", "ccc", 7),
        ("passing American football (not in game)", "ddd", 3),
    ]
    for label, yid, start in rows:
        place(ramp_videos["mp4"], _kinetics_clip(root, label, yid, start))
    missing = _kinetics_clip(root, "abseiling", "gone", 5)
    lines = [f'"{label}",{yid},{start},{start + 10},train' for label, yid, start in rows]
    lines.insert(2, "abseiling,gone,5,15,train")  # listed but never downloaded
    lines.append("abseiling,val1,0,10,validate")  # another split: ignored
    csv_path = tmp_path / "train.csv"
    csv_path.write_text(KINETICS_HEADER + "\n".join(lines) + "\n")

    with caplog.at_level(logging.WARNING, logger="data_modules.datasets"):
        catalog = Kinetics700(root, csv_path, split="train")
        samples = catalog.samples
    classes = (Path("data_modules/class_lists/kinetics700_classes.txt")).read_text().splitlines()
    assert catalog.raw_class_names == classes and len(catalog.class_names) == 700
    assert [(Path(p).name, classes[y]) for p, y in samples] == [
        (f"{yid}_{start:06d}_{start + 10:06d}.mp4", label) for label, yid, start in rows
    ]
    assert catalog.class_names[classes.index("playing cello")] == "playing cello"
    assert catalog.missing == [str(missing)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "1 of 5" in warnings[0].getMessage()
    assert str(missing) in warnings[0].getMessage()


def test_kinetics700_label_case_differences_are_accepted(tmp_path: Path, ramp_videos) -> None:
    # Kinetics-600 spelled this class with a lower-case "american".
    label = "passing american football (not in game)"
    place(ramp_videos["mp4"], _kinetics_clip(tmp_path, label, "x", 0))
    csv_path = tmp_path / "train.csv"
    csv_path.write_text(KINETICS_HEADER + f"{label},x,0,10,train\n")
    ((_, y),) = Kinetics700(tmp_path, csv_path).samples
    assert Kinetics700(tmp_path, csv_path).raw_class_names[y] == (
        "passing American football (not in game)"
    )


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("label,youtube_id,time_start,split\nabseiling,a,0,train\n", 1, "missing column"),
        (KINETICS_HEADER + "abseiling,a,0,10,train\nflying carpets,b,0,10,train\n", 3, "unknown"),
        (KINETICS_HEADER + "abseiling,a,0,10,train\nabseiling,b,0,10\n", 3, "expected 5 fields"),
        (KINETICS_HEADER + "\nabseiling,a,zero,10,train\n", 3, "time_start"),
        (KINETICS_HEADER + "abseiling,a,10,10,train\n", 2, "time_end"),
    ],
)
def test_kinetics700_malformed_csv_names_file_and_line(
    tmp_path: Path, content: str, line: int, message: str
) -> None:
    (tmp_path / "train").mkdir()
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(content)
    with pytest.raises(AnnotationError, match=message) as error:
        _ = Kinetics700(tmp_path, csv_path).samples
    assert str(error.value).startswith(f"{csv_path}:{line}:")
    assert error.value.line == line


def test_kinetics700_paths_expand_environment_variables(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AURL_TEST_K700", str(tmp_path))
    classes = tmp_path / "classes.txt"
    classes.write_text("abseiling\nyoga\n")
    catalog = Kinetics700(
        "$AURL_TEST_K700",
        "${AURL_TEST_K700}/train.csv",
        class_list="${AURL_TEST_K700}/classes.txt",
    )
    assert (catalog.root, catalog.annotation_file, catalog.class_list) == (
        tmp_path,
        tmp_path / "train.csv",
        classes,
    )
    monkeypatch.delenv("AURL_UNSET_CLASSES", raising=False)
    with pytest.raises(ValueError, match=r"Kinetics700\.class_list.*AURL_UNSET_CLASSES"):
        Kinetics700(tmp_path, tmp_path / "train.csv", class_list="$AURL_UNSET_CLASSES/k.txt")


def test_kinetics700_missing_annotation_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"nope\.csv"):
        _ = Kinetics700(tmp_path, tmp_path / "nope.csv").samples


# --- UCF101 --------------------------------------------------------------------------------
UCF_CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "PlayingCello"]


@pytest.fixture
def ucf_layout(tmp_path: Path, ramp_videos) -> tuple[Path, Path, dict[str, list[str]]]:
    root, split_dir = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    split_dir.mkdir()
    (split_dir / "classInd.txt").write_text(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(UCF_CLASSES, start=1))
    )
    rel = {"train": [], "test": []}
    for c in UCF_CLASSES:
        # The official files spell this class's videos v_HandStandPushups_*.
        stem = "HandStandPushups" if c == "HandstandPushups" else c
        for group, subset in ((8, "train"), (9, "train"), (1, "test")):
            name = f"{c}/v_{stem}_g{group:02d}_c01.avi"
            place(ramp_videos["avi"], root / name)
            rel[subset].append(name)
    (split_dir / "trainlist01.txt").write_text(
        "".join(f"{r} {UCF_CLASSES.index(r.split('/')[0]) + 1}\n" for r in rel["train"])
    )
    (split_dir / "testlist01.txt").write_text("".join(f"{r}\n" for r in rel["test"]))
    return root, split_dir, rel


@pytest.mark.parametrize("subset", ["train", "test", "all"])
def test_ucf101_subsets(ucf_layout, subset: str) -> None:
    root, split_dir, rel = ucf_layout
    catalog = UCF101(root, split_dir, fold=1, subset=subset)
    wanted = rel["train"] + rel["test"] if subset == "all" else rel[subset]
    assert sorted(catalog.samples) == sorted(
        (str(root / r), UCF_CLASSES.index(r.split("/")[0])) for r in wanted
    )
    assert catalog.class_names == ["apply eye makeup", "handstand pushups", "playing cello"]


def test_ucf101_all_without_lists_reads_the_folders(ucf_layout) -> None:
    root, split_dir, rel = ucf_layout
    for name in ("trainlist01.txt", "testlist01.txt"):
        (split_dir / name).unlink()
    catalog = UCF101(root, split_dir, subset="all")
    assert len(catalog) == len(rel["train"]) + len(rel["test"]) == 9
    # Without split_dir: the shipped classInd (101 classes), videos from the class folders.
    shipped = UCF101(root)
    assert len(shipped.class_names) == 101
    assert {shipped.raw_class_names[y] for _, y in shipped.samples} == set(UCF_CLASSES)


@pytest.mark.parametrize(
    ("file", "content", "line", "message"),
    [
        ("classInd.txt", "1 ApplyEyeMakeup\n3 PlayingCello\n", 2, "out of order"),
        ("classInd.txt", "1 ApplyEyeMakeup\n2 ApplyEyeMakeup\n", 2, "duplicate"),
        ("classInd.txt", "1 ApplyEyeMakeup\nPlayingCello\n", 2, "expected"),
        (
            "testlist01.txt",
            "PlayingCello/v_PlayingCello_g01_c01.avi\nYoYo/v_YoYo.avi\n",
            2,
            "YoYo",
        ),
        ("trainlist01.txt", "PlayingCello/v_PlayingCello_g08_c01.avi 1\n", 1, "disagrees"),
        ("trainlist01.txt", "v_PlayingCello_g08_c01.avi 3\n", 1, "expected"),
    ],
)
def test_ucf101_malformed_lists_name_file_and_line(
    ucf_layout, file: str, content: str, line: int, message: str
) -> None:
    root, split_dir, _ = ucf_layout
    (split_dir / file).write_text(content)
    with pytest.raises(AnnotationError, match=message) as error:
        _ = UCF101(root, split_dir, subset="all").samples
    assert str(error.value).startswith(f"{split_dir / file}:{line}:")


# --- HMDB51 --------------------------------------------------------------------------------
HMDB_CLASSES = ["brush_hair", "fall_floor", "ride_bike"]


@pytest.fixture
def hmdb_layout(tmp_path: Path, ramp_videos) -> tuple[Path, Path, dict[str, list[str]]]:
    root, split_dir = tmp_path / "hmdb51", tmp_path / "testTrainMulti_7030_splits"
    split_dir.mkdir()
    by_id: dict[str, list[str]] = {"0": [], "1": [], "2": []}
    for c in HMDB_CLASSES:
        lines = []
        for k, split_id in enumerate(("1", "1", "2", "0")):
            video = f"{c}_clip_{k}.avi"
            place(ramp_videos["avi"], root / c / video)
            lines.append(f"{video} {split_id} \n")  # the official files end lines with a space
            by_id[split_id].append(f"{c}/{video}")
        (split_dir / f"{c}_test_split1.txt").write_text("".join(lines))
        # Another fold's file for the same class must not be read for fold 1.
        (split_dir / f"{c}_test_split2.txt").write_text(f"{c}_clip_0.avi 2\n")
    return root, split_dir, by_id


@pytest.mark.parametrize(("subset", "ids"), [("train", "1"), ("test", "2"), ("all", "012")])
def test_hmdb51_subsets(hmdb_layout, subset: str, ids: str) -> None:
    root, split_dir, by_id = hmdb_layout
    catalog = HMDB51(root, split_dir, fold=1, subset=subset)
    assert catalog.raw_class_names == HMDB_CLASSES
    assert catalog.class_names == ["brush hair", "fall on floor", "ride bike"]
    expected = [
        (str(root / r), HMDB_CLASSES.index(r.split("/")[0])) for i in ids for r in by_id[i]
    ]
    assert sorted(catalog.samples) == sorted(expected)


def test_hmdb51_malformed_split_files(hmdb_layout) -> None:
    root, split_dir, _ = hmdb_layout
    bad = split_dir / "ride_bike_test_split1.txt"
    bad.write_text("ride_bike_clip_0.avi 1\nride_bike_clip_1.avi 7\n")
    with pytest.raises(AnnotationError, match=re.escape("<0|1|2>")) as error:
        _ = HMDB51(root, split_dir).samples
    assert str(error.value).startswith(f"{bad}:2:")
    bad.unlink()
    unknown = split_dir / "flying_test_split1.txt"
    unknown.write_text("x.avi 1\n")
    with pytest.raises(AnnotationError, match="not an HMDB51 class"):
        _ = HMDB51(root, split_dir).samples


# --- SyntheticActions ----------------------------------------------------------------------
def _fail_rescan(*args: object, **kwargs: object) -> None:
    raise AssertionError("the SyntheticActions folder was generated or scanned again")


def test_synthetic_actions_parts(tmp_path: Path, monkeypatch) -> None:
    kwargs = dict(
        root=tmp_path,
        colours=["red", "blue"],
        shapes=["square", "circle"],
        motions=["moving left", "growing"],
        videos_per_class=2,
        num_frames=8,
        num_unseen=2,
        num_workers=1,
    )
    seen, unseen, every = (SyntheticActions(part=p, **kwargs) for p in ("seen", "unseen", "all"))
    seen.prepare()
    with monkeypatch.context() as patch:
        # Listing uses the manifest that prepare kept, without scanning the folder again.
        patch.setattr(
            "data_modules.datasets.synthetic_actions.generate_synthetic_actions", _fail_rescan
        )
        assert len(seen.class_names) == 6
    assert len(every.class_names) == 8 and len(unseen.class_names) == 2
    assert set(seen.class_names) | set(unseen.class_names) == set(every.class_names)
    assert not set(seen.class_names) & set(unseen.class_names)
    assert "red square moving left" in every.class_names
    for catalog in (seen, unseen):
        assert len(catalog) == 2 * len(catalog.class_names)
        for path, label in catalog.samples:
            assert Path(path).parent.name == catalog.raw_class_names[label]
            assert Path(path).is_file()


def test_class_lists_with_duplicates_or_nothing_are_rejected(tmp_path: Path) -> None:
    duplicate = tmp_path / "classes.txt"
    duplicate.write_text("abseiling\nyoga\n\nabseiling\n")
    with pytest.raises(AnnotationError, match="first on line 1") as error:
        read_class_list(duplicate)
    assert error.value.line == 4
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(AnnotationError, match="empty class list"):
        read_class_list(empty)
    (tmp_path / "train").mkdir()
    (tmp_path / "train.csv").write_text(KINETICS_HEADER + "abseiling,a,0,10,train\n")
    with pytest.raises(AnnotationError, match="duplicate"):
        _ = Kinetics700(tmp_path, tmp_path / "train.csv", class_list=duplicate).samples


def test_mirror_classes_are_a_property_of_the_catalog(tmp_path: Path) -> None:
    folder = VideoFolder(tmp_path)  # listing is lazy: no files needed for names
    assert folder.mirror_class_name("playing cello") == "playing cello"
    assert folder.mirror_class_name("turning left") is None
    assert folder.mirror_class_name("spinning clockwise") is None
    synthetic = SyntheticActions(tmp_path)
    assert synthetic.mirror_class_name("red square moving left") == "red square moving right"
    assert synthetic.mirror_class_name("blue cross rotating clockwise") == (
        "blue cross rotating anticlockwise"
    )
    assert synthetic.mirror_class_name("green circle moving up") == "green circle moving up"
