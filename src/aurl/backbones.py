"""Video backbones: a name-keyed registry of clip encoders.

The registry holds torchvision's video zoo by its own names (:data:`TORCHVISION_VIDEO`: R(2+1)D,
R3D, MC3, S3D, MViT, Swin3D) and a narrow R(2+1)D for CPU runs. Every backbone maps a clip batch
``(B, C, T, H, W)`` to pooled features ``(B, out_dim)`` and exposes ``out_dim`` so a projector can
be sized without running it. Backbones are randomly initialised (AURL trains from scratch);
``weights_path`` loads a local file, nothing is downloaded.
Callers may convert a backbone and its input to ``torch.channels_last_3d``; nothing here depends
on the memory layout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchvision.models import get_model
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D

from aurl.registry import Registry

log = logging.getLogger(__name__)

BACKBONES = Registry[nn.Module]("backbone")

# Keys under which common checkpoint formats nest the model's state_dict.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")
# Top-level modules that hold a classifier in torchvision's video models.
_HEAD_PREFIXES = ("fc.", "head.", "classifier.")


class BackboneWeightsError(ValueError):
    """A ``weights_path`` file exists but does not fit the backbone."""


def create_backbone(name: str, **kwargs: Any) -> nn.Module:
    """Builds the backbone registered as ``name``.

    Args:
        name: a registered backbone name (see :func:`list_backbones`).
        **kwargs: the backbone's own arguments, e.g. ``weights_path`` or ``widths``.

    Returns:
        A module mapping ``(B, C, T, H, W)`` to ``(B, out_dim)`` with an ``out_dim`` attribute.
    """
    return BACKBONES.create(name, **kwargs)


def list_backbones() -> list[str]:
    """The registered backbone names, sorted."""
    return BACKBONES.names()


def load_backbone_weights(model: nn.Module, path: str | Path, prefix: str = "") -> None:
    """Loads a local state_dict or checkpoint file into ``model`` strictly.

    The file may hold a bare state_dict or a checkpoint dict that nests it under ``state_dict``
    (Lightning), ``model_state_dict`` or ``model``. A ``module.`` prefix (DDP) is stripped. Keys of
    a classifier head (``fc.*``, ``head.*``, ``classifier.*``) are dropped when the model has no
    parameters under that name, so a torchvision classification checkpoint loads into the
    headless backbone.

    Args:
        model: the backbone to fill.
        path: the file, read with ``torch.load(weights_only=True)``.
        prefix: only keys starting with ``prefix`` are used, with it removed (e.g.
            ``"visual_tower.backbone."`` to take the backbone out of a full-model checkpoint).

    Raises:
        FileNotFoundError: the file does not exist.
        BackboneWeightsError: the file cannot be read as tensors or its keys or shapes differ
            from the model's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or pickled-code files
        raise BackboneWeightsError(f"cannot read backbone weights from {path}: {err}") from err
    state = _extract_state_dict(obj, path)
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise BackboneWeightsError(f"no key in {path} starts with prefix {prefix!r}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    for head in _HEAD_PREFIXES:
        if not any(k.startswith(head) for k in own):
            state = {k: v for k, v in state.items() if not k.startswith(head)}

    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise BackboneWeightsError(
            f"backbone weights in {path} do not match {type(model).__name__}: "
            f"{len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if v.shape != own[k].shape
    ]
    if wrong:
        raise BackboneWeightsError(
            f"backbone weights in {path} have {len(wrong)} shape mismatches: {wrong[:5]}"
        )
    model.load_state_dict(state, strict=True)
    log.info("loaded backbone weights from %s", path)


def _extract_state_dict(obj: object, path: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping):
        for key in _CHECKPOINT_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    ):
        raise BackboneWeightsError(
            f"{path} holds no state_dict (a mapping of names to tensors, possibly under one of "
            f"{', '.join(_CHECKPOINT_KEYS)})"
        )
    return dict(obj)


@dataclass(frozen=True)
class TorchvisionVideoModel:
    """How a model of torchvision's video zoo becomes a headless backbone.

    Attributes:
        head: the attribute holding the classifier, replaced by ``nn.Identity``.
        out_dim: the size of the feature the head received.
        pool: a fixed-size pooling attribute, made adaptive so that clips of any size work.
        clip: the ``(T, H, W)`` the model requires (MViT's positional grid is fixed), if any.
    """

    head: str
    out_dim: int
    pool: str | None = None
    clip: tuple[int, int, int] | None = None


# torchvision's video models by name (`torchvision.models.list_models(module=video)`).
TORCHVISION_VIDEO: dict[str, TorchvisionVideoModel] = {
    "r2plus1d_18": TorchvisionVideoModel("fc", 512),
    "r3d_18": TorchvisionVideoModel("fc", 512),
    "mc3_18": TorchvisionVideoModel("fc", 512),
    "s3d": TorchvisionVideoModel("classifier", 1024, pool="avgpool"),
    "mvit_v1_b": TorchvisionVideoModel("head", 768, clip=(16, 224, 224)),
    "mvit_v2_s": TorchvisionVideoModel("head", 768, clip=(16, 224, 224)),
    "swin3d_t": TorchvisionVideoModel("head", 768),
    "swin3d_s": TorchvisionVideoModel("head", 768),
    "swin3d_b": TorchvisionVideoModel("head", 1024),
}


def create_torchvision_backbone(
    name: str,
    weights_path: str | Path | None = None,
    weights_prefix: str = "",
    **kwargs: Any,
) -> nn.Module:
    """A model of torchvision's video zoo, randomly initialised, classifier removed.

    Every name of :data:`TORCHVISION_VIDEO` is registered as a backbone through this function.
    S3D's fixed 2x7x7 average pooling becomes global average pooling (the same for its 16x224x224
    clips), so smaller clips work; MViT takes clips of exactly 16x224x224 and says so otherwise.

    Args:
        name: a key of :data:`TORCHVISION_VIDEO`.
        weights_path: optional local state_dict or checkpoint, see :func:`load_backbone_weights`;
            a torchvision checkpoint with its classifier loads.
        weights_prefix: key prefix to select and strip inside ``weights_path``.
        **kwargs: arguments of torchvision's builder (e.g. ``dropout``,
            ``stochastic_depth_prob``); ``weights`` is refused, nothing is downloaded.

    Returns:
        torchvision's model with its head replaced by ``nn.Identity`` and ``out_dim`` set.

    Raises:
        ValueError: ``weights`` was given.
    """
    spec = TORCHVISION_VIDEO[name]
    if "weights" in kwargs:
        raise ValueError(
            f"backbone {name!r}: torchvision weights are not downloaded; save them to a file "
            "and pass weights_path"
        )
    model = get_model(name, weights=None, **kwargs)
    setattr(model, spec.head, nn.Identity())
    if spec.pool is not None:
        setattr(model, spec.pool, nn.AdaptiveAvgPool3d(1))
    if spec.clip is not None:
        model.register_forward_pre_hook(partial(_check_clip, name, spec.clip))
    model.out_dim = spec.out_dim
    if weights_path is not None:
        load_backbone_weights(model, weights_path, prefix=weights_prefix)
    return model


def _check_clip(
    name: str, clip: tuple[int, int, int], module: nn.Module, args: tuple[Tensor, ...]
) -> None:
    (x,) = args  # (B, C, T, H, W)
    if tuple(x.shape[2:]) != clip:
        raise ValueError(
            f"backbone {name!r} takes clips of exactly T, H, W = {clip}, got {tuple(x.shape)}; "
            "set the data's clip_len and size to match"
        )


for _name in TORCHVISION_VIDEO:
    BACKBONES.register(_name)(partial(create_torchvision_backbone, _name))


@BACKBONES.register("r2plus1d_narrow")
class NarrowR2Plus1d(nn.Module):
    """A narrow R(2+1)D for CPU experiments on small clips (e.g. 8 frames of 32x32).

    It is torchvision's R(2+1)D assembled from the same ``BasicBlock`` and ``Conv2Plus1D`` blocks
    with configurable widths and depths. The stem halves H and W; stages 2-4 halve T, H and W.
    Convolutions are padded, so no size reaches zero (8x32x32 ends at 1x2x2) and adaptive pooling
    handles whatever remains.

    Args:
        widths: channels of the four stages.
        layers: residual blocks per stage.
        pool: ``"avg"`` for spatio-temporal mean pooling, or ``"avgmax"`` for the concatenation of
            mean and max pooling (a prototype found it much better for small moving objects; it
            doubles ``out_dim``).
        weights_path: optional local state_dict or checkpoint, see :func:`load_backbone_weights`.
        weights_prefix: key prefix to select and strip inside ``weights_path``.
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64, 128),
        layers: Sequence[int] = (1, 1, 1, 1),
        pool: Literal["avg", "avgmax"] = "avg",
        weights_path: str | Path | None = None,
        weights_prefix: str = "",
    ) -> None:
        super().__init__()
        widths, layers = tuple(widths), tuple(layers)
        if len(widths) != 4 or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be 4 positive ints, got {widths}")
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive ints, got {layers}")
        if pool not in ("avg", "avgmax"):
            raise ValueError(f"pool must be 'avg' or 'avgmax', got {pool!r}")
        self.pool = pool
        self.out_dim = widths[-1] * (2 if pool == "avgmax" else 1)

        # torchvision's stem uses 45 mid channels for 64 outputs; keep that ratio.
        stem_mid = max(1, round(widths[0] * 45 / 64))
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, widths[0], (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        in_planes = widths[0]
        stages = []
        for i, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            stride = 1 if i == 0 else 2
            stages.append(_make_stage(in_planes, planes, blocks, stride))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages

        # Same initialisation as torchvision's VideoResNet.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if weights_path is not None:
            load_backbone_weights(self, weights_path, prefix=weights_prefix)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)  # (B, w0, T, H/2, W/2)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)  # (B, w3, T', H', W')
        mean = x.mean(dim=(2, 3, 4))  # (B, w3)
        if self.pool == "avg":
            return mean
        return torch.cat([mean, x.amax(dim=(2, 3, 4))], dim=1)  # (B, 2 * w3)


def _make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_planes != planes:
        downsample = nn.Sequential(
            nn.Conv3d(
                in_planes,
                planes,
                kernel_size=1,
                stride=Conv2Plus1D.get_downsample_stride(stride),
                bias=False,
            ),
            nn.BatchNorm3d(planes),
        )
    modules = [BasicBlock(in_planes, planes, Conv2Plus1D, stride, downsample)]
    modules += [BasicBlock(planes, planes, Conv2Plus1D) for _ in range(blocks - 1)]
    return nn.Sequential(*modules)
