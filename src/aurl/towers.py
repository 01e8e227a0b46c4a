"""The two towers that embed videos and class names into one space.

BatchNorm in the projectors: in training mode each BatchNorm1d normalises over the rows it is
given, so a training batch needs at least two rows (a clear ValueError says so; use
``drop_last=True`` for training loaders). The semantic tower sees all C seen classes at once, so
its batch statistics are statistics over the class set; in eval mode both towers use the running
averages gathered in training, which lets unseen class names be embedded one at a time.
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor, nn

from aurl.backbones import create_backbone


def mlp_projector(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """The AURL projector: Linear-BN-ReLU, Linear-BN-ReLU, Linear-BN.

    Args:
        in_dim: input feature size.
        hidden_dim: size of the two hidden layers.
        out_dim: embedding size.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim),
        nn.BatchNorm1d(out_dim),
    )


def _check_batch(module: nn.Module, rows: int, what: str) -> None:
    if module.training and rows < 2:
        raise ValueError(
            f"{type(module).__name__} got {rows} {what} in training mode; its BatchNorm needs at "
            "least 2 (drop the last incomplete batch, or call .eval() to embed one at a time)"
        )


class VisualTower(nn.Module):
    """Backbone, dropout, then a projector into the joint embedding space.

    Args:
        backbone: a name registered in :data:`aurl.backbones.BACKBONES` (``aurl fit --help``
            lists them); the projector takes its ``out_dim`` features.
        backbone_kwargs: arguments for the backbone (e.g. ``{"weights_path": ...}``).
        embed_dim: joint embedding size.
        hidden_dim: hidden size of the MLP projector (unused by ``"linear"``).
        projector: ``"mlp"`` (AURL's 3-layer MLP) or ``"linear"`` (one Linear layer, the E2E
            baseline's 512 -> 300 regressor).
        dropout: dropout on the backbone feature.
    """

    def __init__(
        self,
        backbone: str = "r2plus1d_18",
        backbone_kwargs: dict[str, Any] | None = None,
        embed_dim: int = 2048,
        hidden_dim: int = 2048,
        projector: Literal["mlp", "linear"] = "mlp",
        dropout: float = 0.05,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.backbone = create_backbone(backbone, **(backbone_kwargs or {}))
        self.dropout = nn.Dropout(dropout)
        feat_dim = self.backbone.out_dim
        if projector == "mlp":
            self.projector = mlp_projector(feat_dim, hidden_dim, embed_dim)
        elif projector == "linear":
            self.projector = nn.Linear(feat_dim, embed_dim)  # no BatchNorm: any batch size
        else:
            raise ValueError(f"projector must be 'mlp' or 'linear', got {projector!r}")
        self.embed_dim = embed_dim

    def forward(self, video: Tensor) -> Tensor:
        """Embeds clips; several clips of one video are averaged after projection.

        Args:
            video: ``(B, C, T, H, W)`` or multi-clip ``(B, K, C, T, H, W)``.

        Returns:
            ``(B, embed_dim)`` embeddings (not normalised).
        """
        if video.dim() == 5:
            return self._embed_clips(video)  # (B, E)
        if video.dim() == 6:
            b, k = video.shape[:2]
            clips = video.flatten(0, 1)  # (B*K, C, T, H, W)
            emb = self._embed_clips(clips)  # (B*K, E)
            return emb.view(b, k, -1).mean(dim=1)  # (B, E)
        raise ValueError(
            f"video must be (B, C, T, H, W) or (B, K, C, T, H, W), got shape {tuple(video.shape)}"
        )

    def _embed_clips(self, clips: Tensor) -> Tensor:
        if isinstance(self.projector, nn.Sequential):  # the MLP's BatchNorm1d needs >= 2 rows
            _check_batch(self, clips.shape[0], "clips")
        feat = self.backbone(clips)  # (N, F)
        return self.projector(self.dropout(feat))  # (N, E)


class SemanticTower(nn.Module):
    """Projects class-name text embeddings into the joint space: FC, then the MLP projector.

    Args:
        text_dim: size of the text encoder's output.
        fc_dim: output of the first Linear layer (512 in AURL).
        hidden_dim: hidden size of the MLP projector.
        embed_dim: joint embedding size.
    """

    def __init__(
        self, text_dim: int, fc_dim: int = 512, hidden_dim: int = 2048, embed_dim: int = 2048
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, fc_dim)
        self.projector = mlp_projector(fc_dim, hidden_dim, embed_dim)
        self.text_dim = text_dim
        self.embed_dim = embed_dim

    def forward(self, text_emb: Tensor) -> Tensor:
        """Embeds class names.

        Args:
            text_emb: ``(C, text_dim)``; in training, all seen classes at once (C >= 2).

        Returns:
            ``(C, embed_dim)`` embeddings (not normalised).
        """
        if text_emb.dim() != 2 or text_emb.shape[1] != self.text_dim:
            raise ValueError(
                f"text embeddings must be (C, {self.text_dim}), got {tuple(text_emb.shape)}"
            )
        _check_batch(self, text_emb.shape[0], "class embeddings")
        return self.projector(self.fc(text_emb))  # (C, E)
