"""Backbone registry, shapes, parameter counts and local weight loading."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.video import r2plus1d_18 as tv_r2plus1d_18

from aurl.backbones import (
    BACKBONES,
    BackboneWeightsError,
    NarrowR2Plus1d,
    create_backbone,
    list_backbones,
)

TINY = {"widths": (4, 4, 8, 8), "layers": (1, 1, 1, 1)}


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_both_backbones() -> None:
    assert {"r2plus1d_18", "r2plus1d_narrow"} <= set(list_backbones())
    assert "r2plus1d_18" in BACKBONES
    with pytest.raises(KeyError, match="unknown backbone 'nope'"):
        create_backbone("nope")


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
