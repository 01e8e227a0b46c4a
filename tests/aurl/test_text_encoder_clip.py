"""The CLIP text encoder on tiny randomly initialised CLIP models saved to a temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPTextConfig,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from aurl.text_encoders import ClipTextEncoder, create_text_encoder

PROJECTION_DIM = 24
TEXTS = ["playing cello", "playing violin", "apply eye makeup"]


def write_tokenizer_files(folder: Path) -> dict[str, int]:
    """Writes a tiny CLIP BPE vocabulary in the openai layout (vocab.json + merges.txt)."""
    characters = list("abcdefghijklmnopqrstuvwxyz.")
    # CLIP's BPE marks the last symbol of a word with "</w>".
    merges = [("p", "l"), ("pl", "a"), ("i", "n"), ("in", "g</w>"), ("e", "y"), ("ey", "e</w>")]
    vocab: dict[str, int] = {}
    for token in characters + [c + "</w>" for c in characters] + ["".join(m) for m in merges]:
        vocab[token] = len(vocab)
    for special in ["<|startoftext|>", "<|endoftext|>"]:
        vocab[special] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)
    )
    return vocab


def text_config(vocab: dict[str, int]) -> dict[str, int]:
    return {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 77,
        "projection_dim": PROJECTION_DIM,
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
    }


def save_tiny_clip(folder: Path, seed: int) -> Path:
    """Saves a randomly initialised tiny CLIPModel (text + vision tower) into ``folder``."""
    vocab = write_tokenizer_files(folder)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=text_config(vocab),
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 8,
            "patch_size": 4,
        },
        projection_dim=PROJECTION_DIM,
    )
    CLIPModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full CLIPModel (text + tiny vision tower) as save_pretrained writes it."""
    return save_tiny_clip(tmp_path_factory.mktemp("clip_full"), seed=1)


@pytest.fixture(scope="module")
def text_only_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIPTextModelWithProjection with a tokenizer.json written by save_pretrained."""
    source = tmp_path_factory.mktemp("tokenizer_source")
    vocab = write_tokenizer_files(source)
    folder = tmp_path_factory.mktemp("clip_text")
    CLIPTokenizer.from_pretrained(source, local_files_only=True).save_pretrained(folder)
    torch.manual_seed(2)
    CLIPTextModelWithProjection(CLIPTextConfig(**text_config(vocab))).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def encoder(clip_folder: Path) -> ClipTextEncoder:
    return ClipTextEncoder(clip_folder)


def reference_embeddings(folder: Path, prompts: list[str]) -> torch.Tensor:
    """CLIP's text features by hand: projection of the end-token state, L2-normalised."""
    tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True)
    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
    rows = []
    with torch.no_grad():
        for prompt in prompts:  # one at a time: no padding involved
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]  # (1, L)
            assert ids[0, -1] == tokenizer.eos_token_id
            # last_hidden_state is already layer-normed; CLIP pools the end token's state.
            hidden = model.text_model(input_ids=ids).last_hidden_state  # (1, L, 32)
            pooled = hidden[:, -1]  # (1, 32)
            rows.append(model.text_projection(pooled)[0])
    return F.normalize(torch.stack(rows), dim=1)


def test_shape_unit_norm_and_distinct_texts(encoder: ClipTextEncoder) -> None:
    embeddings = encoder.encode(TEXTS)
    assert encoder.dim == PROJECTION_DIM
    assert embeddings.shape == (3, PROJECTION_DIM)
    assert embeddings.dtype == torch.float32
    assert not embeddings.requires_grad
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    cosines = embeddings @ embeddings.T
    off_diagonal = cosines[~torch.eye(3, dtype=torch.bool)]
    assert off_diagonal.max() < 0.999


def test_matches_clip_text_features_computed_by_hand(
    encoder: ClipTextEncoder, clip_folder: Path
) -> None:
    torch.testing.assert_close(
        encoder.encode(TEXTS), reference_embeddings(clip_folder, TEXTS), atol=1e-5, rtol=1e-4
    )


def test_padding_in_a_batch_does_not_change_embeddings(clip_folder: Path) -> None:
    batched = ClipTextEncoder(clip_folder, batch_size=64).encode(TEXTS)
    one_by_one = ClipTextEncoder(clip_folder, batch_size=1).encode(TEXTS)
    torch.testing.assert_close(batched, one_by_one, atol=1e-5, rtol=1e-4)


def test_prompt_template_is_applied(encoder: ClipTextEncoder, clip_folder: Path) -> None:
    template = "a video of a person {}."
    prompted = ClipTextEncoder(clip_folder, prompt_template=template)
    assert prompted.prompts(["playing cello"]) == ["a video of a person playing cello."]
    expected = encoder.encode([f"a video of a person {text}." for text in TEXTS])
    torch.testing.assert_close(prompted.encode(TEXTS), expected)
    assert not torch.allclose(prompted.encode(TEXTS), encoder.encode(TEXTS))


def test_text_only_folder_with_tokenizer_json(text_only_folder: Path) -> None:
    encoder = create_text_encoder("clip", model_path=text_only_folder)
    assert isinstance(encoder, ClipTextEncoder)
    embeddings = encoder.encode(TEXTS)
    assert embeddings.shape == (3, PROJECTION_DIM)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))


def test_cache_key_tracks_model_and_template(clip_folder: Path, text_only_folder: Path) -> None:
    key = ClipTextEncoder(clip_folder).cache_key
    assert ClipTextEncoder(clip_folder).cache_key == key
    assert ClipTextEncoder(clip_folder, prompt_template="a {}").cache_key != key
    assert ClipTextEncoder(text_only_folder).cache_key != key
    assert ClipTextEncoder(clip_folder, batch_size=1).cache_key == key


def test_bad_arguments_are_named(clip_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_model"):
        ClipTextEncoder(tmp_path / "no_model")
    with pytest.raises(ValueError, match="'a video'"):
        ClipTextEncoder(clip_folder, prompt_template="a video")
    with pytest.raises(ValueError, match="batch_size"):
        ClipTextEncoder(clip_folder, batch_size=0)
