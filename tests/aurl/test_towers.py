"""Visual and semantic towers: structure, shapes, multi-clip averaging, BatchNorm modes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from aurl.towers import SemanticTower, VisualTower, mlp_projector

NARROW = {"widths": (4, 4, 8, 8), "layers": (1, 1, 1, 1)}


def _tiny_visual(**kwargs) -> VisualTower:
    defaults = {
        "backbone": "r2plus1d_narrow",
        "backbone_kwargs": NARROW,
        "embed_dim": 6,
        "hidden_dim": 10,
    }
    return VisualTower(**(defaults | kwargs))


def test_mlp_projector_layout() -> None:
    proj = mlp_projector(3, 5, 7)
    kinds = [type(m) for m in proj]
    assert kinds == [
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
        nn.BatchNorm1d,
    ]
    assert (proj[0].in_features, proj[0].out_features) == (3, 5)
    assert (proj[3].in_features, proj[3].out_features) == (5, 5)
    assert (proj[6].in_features, proj[6].out_features) == (5, 7)
    assert proj[7].num_features == 7


def test_default_visual_tower_matches_reference_dims() -> None:
    tower = VisualTower()
    assert tower.backbone.out_dim == 512
    assert tower.dropout.p == 0.05
    assert (tower.projector[0].in_features, tower.projector[0].out_features) == (512, 2048)
    assert tower.projector[6].out_features == 2048


@pytest.mark.parametrize(("backbone", "feat_dim"), [("s3d", 1024), ("swin3d_t", 768)])
@pytest.mark.parametrize("projector", ["mlp", "linear"])
def test_visual_tower_sizes_its_projector_to_the_backbone(
    backbone: str, feat_dim: int, projector: str
) -> None:
    tower = _tiny_visual(backbone=backbone, backbone_kwargs=None, projector=projector).eval()
    first = tower.projector[0] if projector == "mlp" else tower.projector
    assert first.in_features == tower.backbone.out_dim == feat_dim
    with torch.no_grad():
        assert tower(torch.randn(2, 3, 8, 32, 32)).shape == (2, 6)


@pytest.mark.parametrize("training", [True, False])
def test_visual_tower_single_and_multi_clip_shapes(training: bool) -> None:
    tower = _tiny_visual().train(training)
    assert tower(torch.randn(3, 3, 8, 32, 32)).shape == (3, 6)
    assert tower(torch.randn(2, 4, 3, 8, 32, 32)).shape == (2, 6)


def test_multi_clip_is_mean_of_per_clip_projections_in_eval() -> None:
    tower = _tiny_visual(backbone_kwargs=NARROW | {"pool": "avgmax"})
    # Give BatchNorm non-trivial running statistics first.
    tower.train()
    for _ in range(3):
        tower(torch.randn(4, 3, 8, 32, 32))
    tower.eval()
    video = torch.randn(2, 3, 3, 8, 32, 32)  # (B, K, C, T, H, W)
    with torch.no_grad():
        per_clip = torch.stack([tower(video[:, k]) for k in range(3)], dim=1)  # (B, K, E)
        torch.testing.assert_close(tower(video), per_clip.mean(dim=1), rtol=1e-5, atol=1e-6)


def test_linear_projector_for_e2e() -> None:
    tower = _tiny_visual(projector="linear", embed_dim=5)
    assert isinstance(tower.projector, nn.Linear)
    assert (tower.projector.in_features, tower.projector.out_features) == (8, 5)
    assert tower(torch.randn(1, 3, 8, 32, 32)).shape == (1, 5)  # no BatchNorm1d: batch 1 is fine


def test_visual_tower_errors() -> None:
    with pytest.raises(ValueError, match="projector"):
        _tiny_visual(projector="conv")
    with pytest.raises(ValueError, match="dropout"):
        _tiny_visual(dropout=1.0)
    tower = _tiny_visual()
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        tower(torch.randn(3, 8, 32, 32))
    with pytest.raises(ValueError, match="at least 2"):
        tower(torch.randn(1, 3, 8, 32, 32))
    assert tower.eval()(torch.randn(1, 3, 8, 32, 32)).shape == (1, 6)


def test_semantic_tower_layout_and_shape() -> None:
    tower = SemanticTower(text_dim=7, fc_dim=5, hidden_dim=9, embed_dim=6)
    assert (tower.fc.in_features, tower.fc.out_features) == (7, 5)
    assert (tower.projector[0].in_features, tower.projector[0].out_features) == (5, 9)
    assert tower(torch.randn(4, 7)).shape == (4, 6)
    with pytest.raises(ValueError, match=r"\(C, 7\)"):
        tower(torch.randn(4, 8))


def test_semantic_tower_batchnorm_train_vs_eval() -> None:
    tower = SemanticTower(text_dim=7, fc_dim=5, hidden_dim=9, embed_dim=6)
    text = torch.randn(5, 7)
    tower.train()
    train_out = tower(text)
    # In training, each row depends on the others (batch statistics over the class set) ...
    torch.testing.assert_close(tower(text)[:3], train_out[:3])
    assert not torch.allclose(tower(text[:3]), train_out[:3], atol=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        tower(text[:1])
    # ... in eval mode rows are independent, so one unseen class can be embedded alone.
    tower.eval()
    with torch.no_grad():
        all_rows = tower(text)
        torch.testing.assert_close(tower(text[2:3]), all_rows[2:3])
