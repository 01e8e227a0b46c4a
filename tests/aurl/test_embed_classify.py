"""`aurl embed` and `aurl classify`: an index of video embeddings ranked against new classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aurl import commands
from aurl.embedding_index import EmbeddingIndex
from aurl.zero_shot import ZeroShotClassifier
from tests.tiny import write_cli_checkpoint, write_colour_videos

NAMES = ["red square", "green circle", "blue triangle", "yellow square"]
NEW_NAMES = ["blue circle", "green square", "red triangle"]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.ckpt"
    write_cli_checkpoint(path, tmp_path / "cache")
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_colour_videos(tmp_path_factory.mktemp("videos"), 5)


def test_classifying_the_index_equals_classifying_the_videos(
    checkpoint: Path, videos: list[Path], tmp_path: Path
) -> None:
    classifier = ZeroShotClassifier.from_checkpoint(checkpoint)
    paths = [str(p) for p in videos]
    commands.embed(classifier, paths, tmp_path / "index.npz", batch_size=2, chunk=2)
    for names in (NAMES, NEW_NAMES):  # a new taxonomy needs no new embedding pass
        ranked = commands.classify_index(classifier, tmp_path / "index.npz", names, top_k=2)
        direct = commands.predict(classifier, paths, names, top_k=2, batch_size=3)
        assert [r["path"] for r in ranked] == paths
        for got, want in zip(ranked, direct, strict=True):
            assert [p["class_name"] for p in got["predictions"]] == [
                p["class_name"] for p in want["predictions"]
            ]
            for key in ("score", "probability"):
                assert [p[key] for p in got["predictions"]] == pytest.approx(
                    [p[key] for p in want["predictions"]], abs=2e-4
                )


def test_embedding_resumes_and_keeps_unreadable_videos_apart(
    checkpoint: Path, videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    classifier = ZeroShotClassifier.from_checkpoint(checkpoint)
    index_path = tmp_path / "index.npz"
    first = [str(p) for p in videos[:2]]
    commands.embed(classifier, first, index_path)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(videos[0].read_bytes()[:200])
    embedded: list[list[str]] = []
    real = classifier.encode_videos

    def recording(paths, *args, **kwargs):
        embedded.append(list(paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(classifier, "encode_videos", recording)
    everything = [*first, str(broken), *(str(p) for p in videos[2:]), str(videos[2])]
    index = commands.embed(classifier, everything, index_path, chunk=2)
    assert embedded == [[str(broken), str(videos[2])], [str(videos[3]), str(videos[4])]]
    assert index.paths == [*first, *(str(p) for p in videos[2:])]
    assert list(index.failed) == [str(broken)]
    assert EmbeddingIndex.load(index_path).paths == index.paths
    embedded.clear()
    commands.embed(classifier, everything, index_path)
    assert embedded == []  # nothing left, the unreadable video is not retried
    results = commands.classify_index(classifier, index_path, NAMES, top_k=1)
    assert results[-1] == {"path": str(broken), "error": index.failed[str(broken)]}


def test_an_index_of_another_model_is_refused(
    checkpoint: Path, videos: list[Path], tmp_path: Path
) -> None:
    classifier = ZeroShotClassifier.from_checkpoint(checkpoint)
    index_path = tmp_path / "index.npz"
    commands.embed(classifier, [str(videos[0])], index_path)
    other = tmp_path / "other.ckpt"
    torch.manual_seed(1)  # other initial weights: another model
    write_cli_checkpoint(other, tmp_path / "cache")
    stranger = ZeroShotClassifier.from_checkpoint(other)
    assert stranger.fingerprint() != classifier.fingerprint()
    with pytest.raises(ValueError, match=r"index\.npz was embedded by another model"):
        commands.classify_index(stranger, index_path, NAMES)
    with pytest.raises(ValueError, match=r"index\.npz holds embeddings of another model"):
        commands.embed(stranger, [str(videos[1])], index_path)


def test_the_commands_embed_a_folder_and_classify_it(
    checkpoint: Path, videos: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_path, out = tmp_path / "index.npz", tmp_path / "ranked.json"
    folder = videos[0].parent
    assert (
        commands.main(
            [
                "embed",
                str(folder),
                "--checkpoint",
                str(checkpoint),
                "--output",
                str(index_path),
                "--num_workers",
                "0",
            ]
        )
        == 0
    )
    assert "5 videos embedded, 0 unreadable" in capsys.readouterr().out
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(NEW_NAMES) + "\n")
    assert (
        commands.main(
            [
                "classify",
                "--index",
                str(index_path),
                "--checkpoint",
                str(checkpoint),
                "--classes",
                str(classes),
                "--top_k",
                "3",
                "--format",
                "json",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads(out.read_text())
    assert [r["path"] for r in results] == [str(p) for p in sorted(videos)]
    assert all(len(r["predictions"]) == 3 for r in results)
    with pytest.raises(FileNotFoundError, match="video or folder not found"):
        commands.video_paths([tmp_path / "nowhere"])
