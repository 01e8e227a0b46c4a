"""ZeroShotClassifier: checkpoint and export loading, batched reading, errors, templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from aurl.module import AURLModule
from aurl.zero_shot import Preprocessing, ZeroShotClassifier
from data_modules.transforms import create_transform
from data_modules.video_reader import probe_video, read_clip
from tests.tiny import TINY_PREPROCESSING, write_cli_checkpoint, write_colour_videos

NAMES = ["red square", "green circle", "blue triangle", "yellow square"]


@pytest.fixture
def trained(tmp_path: Path) -> tuple[Path, AURLModule]:
    """A tiny checkpoint in the ``aurl fit`` layout and the module it holds."""
    checkpoint = tmp_path / "tiny.ckpt"
    return checkpoint, write_cli_checkpoint(checkpoint, tmp_path / "cache")


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_colour_videos(tmp_path_factory.mktemp("videos"), 5)


def module_embeddings(module: AURLModule, path: Path) -> torch.Tensor:
    """The module's own embedding of a video's first clip (frames 0-3), ``(D,)``, read as the
    datamodule's evaluation loader reads it and normalised as its batch hook does."""
    transform = create_transform("aurl", train=False, size=TINY_PREPROCESSING["size"])
    info = probe_video(path)
    clip = read_clip(path, [0, 1, 2, 3], plan=transform.plan(info.height, info.width))
    with torch.no_grad():
        return module.embed_videos(transform.to_model_input(clip[None]))[0]


def test_classify_from_a_checkpoint_matches_the_module(
    trained: tuple[Path, AURLModule], videos: list[Path]
) -> None:
    checkpoint, module = trained
    classifier = ZeroShotClassifier.from_checkpoint(checkpoint)
    assert classifier.preprocessing.clip_len == 4 and classifier.scale == 10.0
    with torch.no_grad():
        class_emb = module.embed_classes(NAMES)  # (C, D)
    assert torch.allclose(classifier.encode_classes(NAMES), class_emb, atol=1e-6)
    expected = torch.stack([module_embeddings(module, path) for path in videos])  # (N, D)
    encoded = classifier.encode_videos(videos, batch_size=2, progress=False)
    assert encoded.errors == [None] * len(videos)
    assert torch.allclose(encoded.embeddings, expected, atol=1e-5)
    cosines = expected @ class_emb.T  # (N, C)
    results = classifier.classify(videos, NAMES, top_k=2, batch_size=2, progress=False)
    for result, row in zip(results, cosines, strict=True):
        top = row.topk(2).indices.tolist()
        assert result.class_names == [NAMES[j] for j in top]
        assert result.scores == pytest.approx(row[top].tolist(), abs=1e-5)
        assert result.probabilities == pytest.approx((10 * row).softmax(0)[top].tolist(), 1e-5)


def test_probabilities_of_all_classes_sum_to_one(
    trained: tuple[Path, AURLModule], videos: list[Path]
) -> None:
    classifier = ZeroShotClassifier.from_checkpoint(trained[0])
    for result in classifier.classify(videos, NAMES, top_k=None, progress=False):
        assert sorted(result.class_names) == sorted(NAMES)
        assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-5)
        assert result.scores == sorted(result.scores, reverse=True)


def test_frames_given_as_a_tensor_are_shaped_like_the_file(
    trained: tuple[Path, AURLModule], videos: list[Path]
) -> None:
    checkpoint, module = trained
    classifier = ZeroShotClassifier.from_checkpoint(checkpoint)
    frames = read_clip(videos[0], list(range(6)))  # (T, H, W, 3) uint8
    encoded = classifier.encode_videos([frames, videos[0]], progress=False)
    transform = create_transform("aurl", train=False, size=TINY_PREPROCESSING["size"])
    clip = transform(frames[:4])  # (4, 16, 16, 3): the uniform clip of 6 frames, frames 0-3
    with torch.no_grad():
        expected = module.embed_videos(transform.to_model_input(clip[None]))[0]
    assert torch.allclose(encoded.embeddings[0], expected, atol=1e-5)
    # These videos are at the model's size: no resampling, so the file gives the same pixels.
    # (At other sizes tensors are scaled from RGB, files from YUV: test_video_reader bounds it.)
    assert torch.allclose(encoded.embeddings[0], encoded.embeddings[1])
    (result,) = classifier.classify([frames], NAMES, progress=False)
    assert result.video == "<tensor 0>"


def test_an_unreadable_video_is_an_error_item(
    trained: tuple[Path, AURLModule], videos: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(videos[0].read_bytes()[:200])
    inputs = [videos[0], broken, tmp_path / "missing.mp4", videos[1]]
    classifier = ZeroShotClassifier.from_checkpoint(trained[0])
    results = classifier.classify(inputs, NAMES, top_k=1, batch_size=2, progress=False)
    assert [r.video for r in results] == [str(path) for path in inputs]
    assert [r.error is None for r in results] == [True, False, False, True]
    assert all(r.error for r in results[1:3]) and not results[1].class_names
    reference = classifier.classify([videos[0], videos[1]], NAMES, top_k=1, progress=False)
    for result, alone in zip([results[0], results[3]], reference, strict=True):
        assert result.class_names == alone.class_names
        assert result.scores == pytest.approx(alone.scores, abs=1e-5)  # other batch, other sums


def test_templates_average_the_normalised_prompt_embeddings(
    trained: tuple[Path, AURLModule],
) -> None:
    checkpoint, module = trained
    classifier = ZeroShotClassifier.from_checkpoint(checkpoint)
    templates = ["a video of {}", "{} in motion"]
    with torch.no_grad():
        prompts = [module.embed_classes([t.format(n) for n in NAMES]) for t in templates]
    expected = F.normalize(prompts[0] + prompts[1], dim=-1)  # (C, D)
    assert torch.allclose(classifier.encode_classes(NAMES, templates), expected, atol=1e-6)


def test_export_reloads_to_identical_outputs(
    trained: tuple[Path, AURLModule], videos: list[Path], tmp_path: Path
) -> None:
    classifier = ZeroShotClassifier.from_checkpoint(trained[0])
    exported = classifier.export(tmp_path / "model.safetensors")
    reloaded = ZeroShotClassifier.from_export(exported, embedding_cache_dir=tmp_path / "cache")
    assert reloaded.preprocessing == classifier.preprocessing
    assert reloaded.scale == classifier.scale
    kwargs = {"top_k": None, "batch_size": 2, "progress": False}
    assert reloaded.classify(videos, NAMES, **kwargs) == classifier.classify(
        videos, NAMES, **kwargs
    )


def test_an_export_needs_no_word_vectors_for_cached_classes(
    tmp_path: Path, word_vectors: Path, videos: list[Path]
) -> None:
    """A Word2Vec model's vector file may be gone once its class embeddings are cached; a
    checkpoint whose file has moved takes the new path as ``text_encoder``."""
    moved = tmp_path / "moved" / word_vectors.name
    moved.parent.mkdir()
    moved.write_bytes(word_vectors.read_bytes())
    spec = {"class_path": "aurl.text_encoders.Word2VecEncoder", "init_args": {"path": str(moved)}}
    checkpoint = tmp_path / "w2v.ckpt"
    write_cli_checkpoint(checkpoint, tmp_path / "cache", text_encoder=spec)
    expected = ZeroShotClassifier.from_checkpoint(checkpoint).encode_classes(NAMES)
    exported = ZeroShotClassifier.from_checkpoint(checkpoint).export(tmp_path / "w2v.safetensors")
    moved.unlink()

    lost = ZeroShotClassifier.from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match=r"text_encoder="):
        lost.encode_classes(["red circle", "blue square"])  # not cached
    relocated = ZeroShotClassifier.from_checkpoint(checkpoint, text_encoder=word_vectors)
    assert torch.allclose(relocated.encode_classes(NAMES), expected)
    from_export = ZeroShotClassifier.from_export(exported, embedding_cache_dir=tmp_path / "cache")
    assert torch.allclose(from_export.encode_classes(NAMES), expected)


def test_from_module_shares_the_module_towers(
    trained: tuple[Path, AURLModule], videos: list[Path], tmp_path: Path
) -> None:
    checkpoint, module = trained
    wrapped = ZeroShotClassifier.from_module(module, Preprocessing(**TINY_PREPROCESSING))
    loaded = ZeroShotClassifier.from_checkpoint(checkpoint)
    assert torch.allclose(wrapped.encode_classes(NAMES), loaded.encode_classes(NAMES))
    embeddings = [c.encode_videos(videos, progress=False).embeddings for c in (wrapped, loaded)]
    assert torch.allclose(*embeddings)
    with pytest.raises(ValueError, match="load it with from_checkpoint"):
        wrapped.export(tmp_path / "m.safetensors")


def test_from_checkpoint_refuses_a_checkpoint_without_component_configs(
    tmp_path: Path,
) -> None:
    checkpoint = tmp_path / "python.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 0.1}}, checkpoint)
    with pytest.raises(ValueError, match=r"python\.ckpt.*not written by `aurl fit`"):
        ZeroShotClassifier.from_checkpoint(checkpoint)


def test_from_export_refuses_another_safetensors_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"spec": json.dumps({})})
    with pytest.raises(ValueError, match=r"other\.safetensors is not an aurl export"):
        ZeroShotClassifier.from_export(other)


def test_workers_read_the_same_clips(trained: tuple[Path, AURLModule], videos: list[Path]) -> None:
    classifier = ZeroShotClassifier.from_checkpoint(trained[0])
    serial = classifier.encode_videos(videos, batch_size=2, progress=False)
    parallel = classifier.encode_videos(videos, batch_size=2, num_workers=2, progress=False)
    assert torch.equal(serial.embeddings, parallel.embeddings)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_an_export_runs_on_the_gpu_as_on_the_cpu(
    trained: tuple[Path, AURLModule], videos: list[Path], tmp_path: Path
) -> None:
    exported = ZeroShotClassifier.from_checkpoint(trained[0]).export(tmp_path / "m.safetensors")
    cache = tmp_path / "cache"
    cpu = ZeroShotClassifier.from_export(exported, "cpu", embedding_cache_dir=cache)
    gpu = ZeroShotClassifier.from_export(exported, "cuda", embedding_cache_dir=cache)
    kwargs = {"top_k": None, "batch_size": 2, "progress": False}
    for on_cpu, on_gpu in zip(
        cpu.classify(videos, NAMES, **kwargs), gpu.classify(videos, NAMES, **kwargs), strict=True
    ):
        # cuDNN convolutions may use TF32: close, not equal.
        scores = dict(zip(on_gpu.class_names, on_gpu.scores, strict=True))
        assert [scores[name] for name in on_cpu.class_names] == pytest.approx(
            on_cpu.scores, abs=2e-3
        )
