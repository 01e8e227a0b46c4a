"""Backbone registry (torchvision's video zoo and the narrow R(2+1)D), shapes, parameter counts
and local weight loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import get_model, list_models
from torchvision.models.video import r2plus1d_18 as tv_r2plus1d_18

from aurl.backbones import (
    BACKBONES,
    TORCHVISION_VIDEO,
    BackboneWeightsError,
    NarrowR2Plus1d,
    create_backbone,
    list_backbones,
)

TINY = {"widths": (4, 4, 8, 8), "layers": (1, 1, 1, 1)}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Clip shapes that every model of the zoo takes; MViT's positional grid fixes its clip.
TINY_CLIP = (2, 3, 8, 32, 32)
MVIT_CLIP = (1, 3, 16, 224, 224)
# Swin3D-S and -B (50M and 88M parameters) take seconds to build.
FORWARD_ON_TINY_CLIPS = [
    pytest.param(n, marks=pytest.mark.slow) if n in ("swin3d_s", "swin3d_b") else n
    for n in sorted(TORCHVISION_VIDEO)
    if TORCHVISION_VIDEO[n].clip is None
]
MVITS = sorted(n for n, m in TORCHVISION_VIDEO.items() if m.clip is not None)


def test_registry_lists_the_torchvision_zoo_and_the_narrow_backbone() -> None:
    zoo = {"r2plus1d_18", "r3d_18", "mc3_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t"}
    assert zoo | {"r2plus1d_narrow"} <= set(list_backbones())
    assert set(TORCHVISION_VIDEO) <= set(list_models(module=torchvision.models.video))
    assert "r2plus1d_18" in BACKBONES
    with pytest.raises(KeyError, match=r"unknown backbone 'nope'; available: .*mvit_v2_s.*s3d"):
        create_backbone("nope")


@pytest.mark.parametrize("name", FORWARD_ON_TINY_CLIPS)
def test_zoo_backbone_builds_headless_and_gives_its_feature_size(name: str) -> None:
    spec = TORCHVISION_VIDEO[name]
    model = create_backbone(name).eval()
    assert isinstance(getattr(model, spec.head), nn.Identity)
    assert model.out_dim == spec.out_dim
    with torch.no_grad():
        out = model(torch.randn(TINY_CLIP))
    assert out.shape == (TINY_CLIP[0], spec.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MVITS)
def test_mvit_declares_its_feature_size_and_clip(name: str) -> None:
    model = create_backbone(name)
    assert isinstance(model.head, nn.Identity)
    # The head reads the class token after this LayerNorm.
    assert model.norm.normalized_shape == (model.out_dim,) == (768,)
    with pytest.raises(ValueError, match=rf"{name}.*\(16, 224, 224\).*\(2, 3, 8, 32, 32\)"):
        model(torch.randn(TINY_CLIP))


@pytest.mark.slow
@pytest.mark.parametrize("name", MVITS)
def test_mvit_forward_gives_its_feature_size(name: str) -> None:
    model = create_backbone(name).eval()
    with torch.no_grad():
        out = model(torch.randn(MVIT_CLIP))
    assert out.shape == (1, 768)


@pytest.mark.parametrize(("name", "head"), [("s3d", "classifier"), ("swin3d_t", "head")])
def test_zoo_backbone_loads_a_torchvision_checkpoint_with_its_head(
    tmp_path: Path, name: str, head: str
) -> None:
    source = get_model(name, weights=None)  # with its classifier, as a torchvision file is
    path = tmp_path / f"{name}.pth"
    torch.save(source.state_dict(), path)
    model = create_backbone(name, weights_path=str(path))
    state = model.state_dict()
    assert not any(k.startswith(f"{head}.") for k in state)
    for key, value in state.items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_zoo_backbone_refuses_torchvision_weights() -> None:
    with pytest.raises(ValueError, match="weights_path"):
        create_backbone("mc3_18", weights="DEFAULT")


def test_zoo_backbone_passes_builder_arguments() -> None:
    model = create_backbone("swin3d_t", dropout=0.3)
    assert model.pos_drop.p == 0.3


def test_r2plus1d_18_parameter_count_forward_and_random_init() -> None:
    model = create_backbone("r2plus1d_18")
    assert model.out_dim == 512
    assert isinstance(model.fc, nn.Identity)
    # torchvision's R(2+1)D-18 with its 400-way head has ~31.5M parameters; the head is
    # 512 * 400 + 400 of them.
    headless = _n_params(model)
    assert abs(headless + 512 * 400 + 400 - 31.5e6) < 0.05e6
    assert abs(headless - 31.30e6) < 0.01e6
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 32, 32))
    assert out.shape == (1, 512)
    # Randomly initialised: a second instance differs.
    assert not torch.equal(create_backbone("r2plus1d_18").stem[0].weight, model.stem[0].weight)


def test_r2plus1d_18_loads_torchvision_checkpoint_with_head(tmp_path) -> None:
    source = tv_r2plus1d_18(weights=None)  # with its fc head, as a torchvision file would be
    path = tmp_path / "r2plus1d_18.pth"
    torch.save(source.state_dict(), path)
    model = create_backbone("r2plus1d_18", weights_path=str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


@pytest.mark.parametrize("wrap", ["bare", "lightning", "ddp"])
def test_narrow_weights_round_trip(tmp_path, wrap: str) -> None:
    source = NarrowR2Plus1d(**TINY)
    state = source.state_dict()
    prefix = ""
    if wrap == "lightning":
        prefix = "visual_tower.backbone."
        state = {"state_dict": {prefix + k: v for k, v in state.items()}, "epoch": 3}
    elif wrap == "ddp":
        state = {"module." + k: v for k, v in state.items()}
    path = tmp_path / "w.pt"
    torch.save(state, path)
    model = create_backbone(
        "r2plus1d_narrow", **TINY, weights_path=path, weights_prefix=prefix
    ).eval()
    source.eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), source(x))


def test_weights_errors_name_the_file(tmp_path) -> None:
    missing = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match=r"absent\.pt"):
        create_backbone("r2plus1d_narrow", **TINY, weights_path=missing)

    wider = tmp_path / "wider.pt"
    torch.save(NarrowR2Plus1d(widths=(4, 4, 8, 16)).state_dict(), wider)
    with pytest.raises(BackboneWeightsError, match=r"wider\.pt.*shape"):
        create_backbone("r2plus1d_narrow", **TINY, weights_path=wider)

    deeper = tmp_path / "deeper.pt"
    torch.save(NarrowR2Plus1d(widths=(4, 4, 8, 8), layers=(2, 1, 1, 1)).state_dict(), deeper)
    with pytest.raises(BackboneWeightsError, match=r"deeper\.pt.*unexpected keys"):
        create_backbone("r2plus1d_narrow", **TINY, weights_path=deeper)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(BackboneWeightsError, match=r"garbage\.pt"):
        create_backbone("r2plus1d_narrow", **TINY, weights_path=garbage)

    not_a_state = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], not_a_state)
    with pytest.raises(BackboneWeightsError, match=r"list\.pt holds no state_dict"):
        create_backbone("r2plus1d_narrow", **TINY, weights_path=not_a_state)


@pytest.mark.parametrize(
    ("shape", "pool", "out_dim"),
    [
        ((2, 3, 8, 32, 32), "avg", 8),
        ((2, 3, 8, 32, 32), "avgmax", 16),
        ((1, 3, 16, 64, 48), "avgmax", 16),
        ((2, 3, 1, 8, 8), "avg", 8),
    ],
)
def test_narrow_shapes(shape: tuple[int, ...], pool: str, out_dim: int) -> None:
    model = create_backbone("r2plus1d_narrow", **TINY, pool=pool).eval()
    assert model.out_dim == out_dim
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], out_dim)
    assert torch.isfinite(out).all()


def test_narrow_avgmax_is_mean_and_max_of_last_stage() -> None:
    model = NarrowR2Plus1d(**TINY, pool="avgmax").eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        h = model.layer4(model.layer3(model.layer2(model.layer1(model.stem(x)))))
        assert h.shape == (2, 8, 1, 2, 2)  # 8x32x32 does not shrink to nothing
        expected = torch.cat([h.flatten(2).mean(-1), h.flatten(2).max(-1).values], dim=1)
        torch.testing.assert_close(model(x), expected)


def test_narrow_default_is_small() -> None:
    model = create_backbone("r2plus1d_narrow")
    assert model.out_dim == 128
    assert _n_params(model) < 1e6


def test_channels_last_3d_gives_same_output() -> None:
    model = NarrowR2Plus1d(**TINY, pool="avgmax").eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last_3d)
        out = model(x.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (4, 4, 8)}, "widths"),
        ({"widths": (4, 0, 8, 8)}, "widths"),
        ({"layers": (1, 1, 0, 1)}, "layers"),
        ({"pool": "max"}, "pool"),
    ],
)
def test_narrow_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NarrowR2Plus1d(**kwargs)
