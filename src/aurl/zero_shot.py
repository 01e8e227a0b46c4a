"""Zero-shot classification of video files with a trained model, and its export file.

Example::

    classifier = ZeroShotClassifier.from_checkpoint("runs/smoke/checkpoints/last.ckpt")
    results = classifier.classify(["a.mp4", "b.mp4"], ["archery", "juggling balls"], top_k=1)
    results[0].class_names, results[0].probabilities  # ["archery"], [0.93]

The export file (:meth:`ZeroShotClassifier.export`) is a safetensors file: the tensors are the
towers' state dicts (keys ``visual_tower.*`` and ``semantic_tower.*``) and its metadata holds
``format`` (``"aurl-zero-shot"``), ``format_version`` (``"1"``) and ``spec``, a JSON object:

- ``visual_tower``, ``semantic_tower``: ``{"class_path", "init_args"}`` (semantic: or null);
- ``text_encoder``: ``{"class_path", "init_args"}`` of the training text encoder;
- ``text_encoder_cache_key``: its :attr:`~aurl.text_encoders.TextEncoder.cache_key` (the key
  of the class-embedding cache), or null when the encoder could not be built at export time;
- ``preprocessing``: the :class:`Preprocessing` fields; ``scale``: the logit scale.

Loading it runs no pickle: the classes named are imported and checked to be the expected kind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from aurl.text_encoders import ClassEmbeddingCache, TextEncoder, Word2VecEncoder
from aurl.towers import SemanticTower, VisualTower

log = logging.getLogger(__name__)

EXPORT_FORMAT = "aurl-zero-shot"
EXPORT_VERSION = "1"
# The inverse temperature of AURL's cosine logits, for a loss that has none.
DEFAULT_SCALE = 10.0

VideoInput = str | Path | Tensor


@dataclass(frozen=True)
class Preprocessing:
    """How clips are read and transformed: the datamodule's evaluation pipeline.

    Args:
        clip_len: frames per clip.
        frame_stride: step between the frames of a clip.
        size: frame height and width after the transform.
        transform: a name of :func:`data_modules.transforms.create_transform` (evaluation mode).
    """

    clip_len: int = 16
    frame_stride: int = 1
    size: int = 112
    transform: str = "aurl"

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> Preprocessing:
        """The fields found in a datamodule's hyperparameters (defaults for missing ones)."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in hparams.items() if key in names})


class EncodedVideos(NamedTuple):
    """Video embeddings: ``embeddings`` (N, D), L2-normalised, NaN rows where ``errors[i]``
    says why video i could not be read (None for the readable ones)."""

    embeddings: Tensor
    errors: list[str | None]


@dataclass
class Prediction:
    """The ranking of class names for one video, best first.

    Attributes:
        video: the path, or ``"<tensor i>"`` for the i-th input given as a tensor.
        class_names: the ``top_k`` best class names.
        probabilities: softmax of the scaled cosines over all candidate classes.
        scores: cosine similarities.
        error: why the video could not be read (then the lists are empty).
    """

    video: str
    class_names: list[str] = dataclasses.field(default_factory=list)
    probabilities: list[float] = dataclasses.field(default_factory=list)
    scores: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None


class ZeroShotClassifier:
    """Ranks free-form class names for videos with a trained AURL model.

    Holds the visual tower, the semantic tower (None: the text embeddings are the class
    embeddings, as in E2E), the text encoder, the preprocessing the model was trained with
    and the logit scale. Build it with :meth:`from_checkpoint`, :meth:`from_export` or
    :meth:`from_module`.

    Args:
        visual_tower: clip -> embedding.
        semantic_tower: text embedding -> embedding, or None.
        text_encoder: encodes class names (see :class:`LazyTextEncoder` for one built on use).
        preprocessing: clip sampling and transform.
        scale: inverse temperature of the softmax over cosines (10: temperature 0.1).
        device: where the towers run.
        embedding_cache_dir: folder of the class-embedding cache (None: the default).
    """

    def __init__(
        self,
        visual_tower: VisualTower,
        semantic_tower: SemanticTower | None,
        text_encoder: TextEncoder,
        preprocessing: Preprocessing,
        scale: float = DEFAULT_SCALE,
        device: str | torch.device = "cpu",
        embedding_cache_dir: str | Path | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.visual_tower = visual_tower.eval().to(self.device)
        self.semantic_tower = semantic_tower
        if semantic_tower is not None:
            self.semantic_tower = semantic_tower.eval().to(self.device)
        self.text_encoder = text_encoder
        self.preprocessing = preprocessing
        self.scale = float(scale)
        self.embedding_cache = ClassEmbeddingCache(embedding_cache_dir)
        self.specs: dict[str, Any] = {}  # class_path/init_args of the components, when known

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        preprocessing: Preprocessing,
        device: str | torch.device | None = None,
    ) -> ZeroShotClassifier:
        """Wraps the towers and text encoder of an :class:`~aurl.module.AURLModule` (shared,
        not copied: they are put in eval mode). Such a classifier cannot :meth:`export`."""
        return cls(
            module.visual_tower,
            module.semantic_tower,
            module.text_encoder,
            preprocessing,
            getattr(module.loss, "scale", DEFAULT_SCALE),
            device if device is not None else next(module.parameters()).device,
            module.embedding_cache.cache_dir,
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        text_encoder: TextEncoder | str | Path | None = None,
    ) -> ZeroShotClassifier:
        """Loads a checkpoint written by ``aurl fit`` (read once, weights-only when possible).

        Args:
            path: the ``.ckpt`` file.
            device: where the towers run.
            text_encoder: replaces the training text encoder: a
                :class:`~aurl.text_encoders.TextEncoder`, or the path of a word-vector file
                (a Word2Vec encoder with the training encoder's options). Without it, the
                training encoder is built when class names are first encoded.

        Raises:
            ValueError: if the checkpoint lacks the model's configuration (not written by
                ``aurl fit``) or its weights do not fit it.
        """
        from aurl.checkpoint_io import load_checkpoint

        checkpoint = load_checkpoint(path)
        hparams = checkpoint.get("hyper_parameters") or {}
        missing = [key for key in ("visual_tower", "text_encoder") if key not in hparams]
        if missing or not isinstance(hparams["visual_tower"], Mapping):
            raise ValueError(
                f"checkpoint {path} holds no component configuration ({missing or 'visual_tower'}"
                " missing): it was not written by `aurl fit`; build the module and use "
                "ZeroShotClassifier.from_module"
            )
        loss_args = (hparams.get("loss") or {}).get("init_args") or {}
        specs = {
            "visual_tower": hparams["visual_tower"],
            "semantic_tower": hparams.get("semantic_tower"),
            "text_encoder": hparams["text_encoder"],
            "text_encoder_cache_key": None,
            "preprocessing": dataclasses.asdict(
                Preprocessing.from_hparams(checkpoint.get("datamodule_hyper_parameters") or {})
            ),
            "scale": float(loss_args.get("scale", DEFAULT_SCALE)),
        }
        return cls._from_specs(
            specs,
            checkpoint["state_dict"],
            str(path),
            device,
            text_encoder,
            hparams.get("embedding_cache_dir"),
        )

    @classmethod
    def from_export(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        text_encoder: TextEncoder | str | Path | None = None,
        embedding_cache_dir: str | Path | None = None,
    ) -> ZeroShotClassifier:
        """Loads a file written by :meth:`export` (no training config, no pickle).

        Args:
            path: the export file.
            device: where the towers run.
            text_encoder: as in :meth:`from_checkpoint`. Without it, class names whose
                embeddings are in the cache need no text model at all.
            embedding_cache_dir: folder of the class-embedding cache (None: the default of
                :class:`~aurl.text_encoders.ClassEmbeddingCache`).

        Raises:
            ValueError: if ``path`` is not an aurl export file.
        """
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"export file not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            state_dict = load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{path} is not a safetensors file: {error}") from error
        if metadata.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{path} is not an aurl export (metadata format is not aurl)")
        if metadata.get("format_version") != EXPORT_VERSION:
            raise ValueError(
                f"{path}: export format version {metadata.get('format_version')!r}, this aurl "
                f"reads {EXPORT_VERSION!r}"
            )
        return cls._from_specs(
            json.loads(metadata["spec"]),
            state_dict,
            str(path),
            device,
            text_encoder,
            embedding_cache_dir,
        )

    @classmethod
    def _from_specs(
        cls,
        specs: dict[str, Any],
        state_dict: Mapping[str, Tensor],
        where: str,
        device: str | torch.device,
        text_encoder: TextEncoder | str | Path | None,
        embedding_cache_dir: str | Path | None,
    ) -> ZeroShotClassifier:
        visual = _instantiate(specs["visual_tower"], VisualTower, where)
        _load_part(visual, state_dict, "visual_tower", where)
        semantic = None
        if specs.get("semantic_tower") is not None:
            semantic = _instantiate(specs["semantic_tower"], SemanticTower, where)
            _load_part(semantic, state_dict, "semantic_tower", where)
        if text_encoder is None:
            encoder: TextEncoder = LazyTextEncoder(
                specs["text_encoder"], specs.get("text_encoder_cache_key"), where
            )
        elif isinstance(text_encoder, TextEncoder):
            encoder = text_encoder
        else:
            encoder = _word2vec_like(text_encoder, specs["text_encoder"])
        classifier = cls(
            visual,
            semantic,
            encoder,
            Preprocessing(**specs["preprocessing"]),
            specs["scale"],
            device,
            embedding_cache_dir,
        )
        classifier.specs = specs
        return classifier

    # --- export ------------------------------------------------------------------------------
    def export(self, path: str | Path) -> Path:
        """Writes the towers and everything needed to use them to a safetensors file.

        The components' ``class_path``/``init_args`` come from the checkpoint or export this
        classifier was loaded from.

        Raises:
            ValueError: for a classifier built with :meth:`from_module` (no component specs).
        """
        from safetensors.torch import save_file

        if not self.specs:
            raise ValueError(
                "this classifier was not loaded from a checkpoint or an export, so the "
                "configuration of its components is unknown; load it with from_checkpoint"
            )
        specs = dict(self.specs)
        specs["text_encoder_cache_key"] = _cache_key_or_none(self.text_encoder)
        tensors = {f"visual_tower.{k}": v for k, v in self.visual_tower.state_dict().items()}
        if self.semantic_tower is not None:
            tensors |= {
                f"semantic_tower.{k}": v for k, v in self.semantic_tower.state_dict().items()
            }
        tensors = {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
        metadata = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "spec": json.dumps(specs),
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata=metadata)
        return path

    def fingerprint(self) -> str:
        """A digest of both towers' weights, the preprocessing and the scale: two classifiers
        with one fingerprint embed videos and class names alike (what an embedding index
        checks before mixing them)."""
        digest = hashlib.sha256()
        digest.update(json.dumps(dataclasses.asdict(self.preprocessing), sort_keys=True).encode())
        digest.update(repr(self.scale).encode())
        towers = [("visual_tower", self.visual_tower), ("semantic_tower", self.semantic_tower)]
        for prefix, tower in towers:
            for name, value in (tower.state_dict() if tower is not None else {}).items():
                digest.update(f"{prefix}.{name}".encode())
                digest.update(value.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]

    # --- embeddings --------------------------------------------------------------------------
    def encode_classes(
        self, class_names: Sequence[str], templates: Sequence[str] | None = None
    ) -> Tensor:
        """Class embeddings in the joint space, L2-normalised: ``(C, D)`` on :attr:`device`.

        Args:
            class_names: distinct names.
            templates: prompt templates with one ``{}`` (``"a video of {}"``); the embeddings
                of a class's prompts are averaged (after normalisation) and renormalised.
                None: the bare names.
        """
        class_names = list(class_names)
        prompts = [[t.format(name) for name in class_names] for t in templates or ["{}"]]
        embeddings = torch.stack([self._embed_texts(texts) for texts in prompts])  # (P, C, D)
        return F.normalize(embeddings.mean(dim=0), dim=-1)  # (C, D)

    @torch.no_grad()
    def _embed_texts(self, texts: list[str]) -> Tensor:
        text = self.embedding_cache.encode(self.text_encoder, texts).to(self.device)  # (C, T)
        if self.semantic_tower is None:
            return F.normalize(text, dim=-1)
        if text.shape[1] != self.semantic_tower.text_dim:
            raise ValueError(
                f"the text encoder gives {text.shape[1]}-d embeddings, the semantic tower "
                f"takes {self.semantic_tower.text_dim}-d ones: use the encoder it was trained with"
            )
        return F.normalize(self.semantic_tower(text), dim=-1)  # (C, D)

    @torch.no_grad()
    def encode_videos(
        self,
        videos: Sequence[VideoInput],
        num_clips: int = 1,
        batch_size: int = 8,
        num_workers: int = 0,
        progress: bool = True,
    ) -> EncodedVideos:
        """Embeds videos, read and shaped by a DataLoader in batches, normalised on the device.

        Files are decoded at the transform's planned size (as in training); frames given as
        tensors are scaled from their RGB values by the same scaler, so they can differ from
        their file's clip by a grey level or two (the file scales from its YUV planes).

        Args:
            videos: file paths, or uint8 tensors ``(T, H, W, 3)`` of decoded frames.
            num_clips: clips per video, sampled uniformly and averaged after projection.
            batch_size: videos per forward pass.
            num_workers: DataLoader worker processes reading the videos.
            progress: show a progress bar.

        Returns:
            The embeddings and, per video, why it could not be read (None when it could).
        """
        from tqdm import tqdm

        dataset = _VideoInputs(list(videos), self.preprocessing, num_clips)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
        )
        dim = self.visual_tower.embed_dim
        embeddings = torch.full((len(dataset), dim), float("nan"))  # (N, D)
        errors: list[str | None] = [None] * len(dataset)
        with tqdm(total=len(dataset), desc="videos", unit="video", disable=not progress) as bar:
            for batch in loader:
                for index, reason in batch["errors"]:
                    errors[index] = reason
                if batch["index"]:
                    video = batch["video"].to(self.device, non_blocking=True)  # uint8
                    video = dataset.transform.to_model_input(video)  # (B, [K,] C, T, H, W)
                    emb = F.normalize(self.visual_tower(video), dim=-1)  # (B, D)
                    embeddings[batch["index"]] = emb.float().cpu()
                bar.update(len(batch["index"]) + len(batch["errors"]))
        return EncodedVideos(embeddings, errors)

    # --- classification ----------------------------------------------------------------------
    def classify(
        self,
        videos: Sequence[VideoInput],
        class_names: Sequence[str],
        top_k: int | None = 5,
        templates: Sequence[str] | None = None,
        num_clips: int = 1,
        batch_size: int = 8,
        num_workers: int = 0,
        progress: bool = True,
    ) -> list[Prediction]:
        """Ranks ``class_names`` for each video.

        Args:
            videos: file paths or uint8 ``(T, H, W, 3)`` tensors.
            class_names: the candidate classes (at least 2, distinct).
            top_k: classes kept per video (None: all).
            templates: prompt templates, as in :meth:`encode_classes`.
            num_clips, batch_size, num_workers, progress: as in :meth:`encode_videos`.

        Returns:
            One :class:`Prediction` per video, in order; an unreadable video gets its
            ``error`` instead of a ranking.
        """
        class_names = list(class_names)
        if len(class_names) < 2:
            raise ValueError(f"give at least two class names, got {class_names}")
        class_emb = self.encode_classes(class_names, templates).cpu()  # (C, D)
        encoded = self.encode_videos(videos, num_clips, batch_size, num_workers, progress)
        scores = encoded.embeddings @ class_emb.T  # (N, C)
        probabilities = (self.scale * scores).softmax(dim=-1)  # (N, C)
        k = len(class_names) if top_k is None else min(top_k, len(class_names))
        top = scores.topk(k, dim=-1).indices  # (N, k)
        predictions = []
        for i, video in enumerate(videos):
            name = str(video) if not isinstance(video, Tensor) else f"<tensor {i}>"
            if encoded.errors[i] is not None:
                predictions.append(Prediction(name, error=encoded.errors[i]))
                continue
            best = top[i].tolist()
            predictions.append(
                Prediction(
                    name,
                    [class_names[j] for j in best],
                    probabilities[i, best].tolist(),
                    scores[i, best].tolist(),
                )
            )
        return predictions


class LazyTextEncoder(TextEncoder):
    """The training text encoder, built from its ``class_path``/``init_args`` on first use.

    With a known ``cache_key``, class names already in the embedding cache need no text model
    at all (a Word2Vec model's vector file may be gone).

    Args:
        spec: ``{"class_path", "init_args"}`` of a :class:`~aurl.text_encoders.TextEncoder`.
        cache_key: the encoder's cache key, when known without building it.
        where: the file the spec comes from, for error messages.
    """

    def __init__(self, spec: Mapping[str, Any], cache_key: str | None, where: str) -> None:
        self.spec = dict(spec)
        self._cache_key = cache_key
        self.where = where
        self._encoder: TextEncoder | None = None

    @property
    def encoder(self) -> TextEncoder:
        """The encoder itself (built on first access)."""
        if self._encoder is None:
            try:
                self._encoder = _instantiate(self.spec, TextEncoder, self.where)
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"cannot build the text encoder of {self.where} ({error}); pass "
                    "text_encoder= (an encoder, or a word-vector file) to use another"
                ) from error
        return self._encoder

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def cache_key(self) -> str:
        return self._cache_key if self._cache_key is not None else self.encoder.cache_key

    def _encode(self, texts: list[str]) -> Tensor:
        return self.encoder._encode(texts)


class _VideoInputs(Dataset):
    """Items ``(index, uint8 clips (T, H, W, 3) or (K, T, H, W, 3))`` or ``(index, error
    reason)``."""

    def __init__(
        self, videos: list[VideoInput], preprocessing: Preprocessing, num_clips: int
    ) -> None:
        from data_modules.clip_sampling import create_clip_sampler
        from data_modules.transforms import create_transform

        self.videos = videos
        self.sampler = create_clip_sampler(
            "uniform", preprocessing.clip_len, num_clips, preprocessing.frame_stride
        )
        self.transform = create_transform(
            preprocessing.transform, train=False, size=preprocessing.size
        )

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> tuple[int, Tensor | str]:
        from data_modules.video_reader import VideoDecodeError, read_sampled_clips

        video = self.videos[index]
        if isinstance(video, Tensor):
            if video.dtype != torch.uint8 or video.dim() != 4 or video.shape[-1] != 3:
                return index, f"expected uint8 frames (T, H, W, 3), got {video.dtype} " + str(
                    tuple(video.shape)
                )
            clips = [
                self.transform(video[list(c.frame_indices)]) for c in self.sampler(video.shape[0])
            ]  # K x (T, H, W, 3)
        else:
            try:
                clips = read_sampled_clips(
                    video,
                    lambda info: [c.frame_indices for c in self.sampler(info.num_frames)],
                    None,  # one decoder thread: the workers are the parallelism
                    plan_clip=lambda info: self.transform.plan(info.height, info.width),
                )
            except VideoDecodeError as error:
                return index, error.reason
        return index, clips[0] if len(clips) == 1 else torch.stack(clips)  # (K, T, H, W, 3)


def _collate(items: list[tuple[int, Tensor | str]]) -> dict[str, Any]:
    good = [(i, clip) for i, clip in items if isinstance(clip, Tensor)]
    return {
        "index": [i for i, _ in good],
        "video": (  # (B, [K,] T, H, W, 3) uint8
            torch.stack([clip for _, clip in good]) if good else torch.empty(0, dtype=torch.uint8)
        ),
        "errors": [(i, reason) for i, reason in items if isinstance(reason, str)],
    }


def _instantiate(spec: Any, kind: type, where: str) -> Any:
    """Builds ``class_path(**init_args)``, refusing anything that is not a ``kind``."""
    if not isinstance(spec, Mapping) or "class_path" not in spec:
        raise ValueError(f"{where}: expected a class_path/init_args spec of a {kind.__name__}")
    module_name, _, class_name = str(spec["class_path"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{where}: cannot import {spec['class_path']}: {error}") from error
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise ValueError(f"{where}: {spec['class_path']} is not a {kind.__name__}")
    return cls(**(spec.get("init_args") or {}))


def _load_part(
    module: nn.Module, state_dict: Mapping[str, Tensor], prefix: str, where: str
) -> None:
    part = {k[len(prefix) + 1 :]: v for k, v in state_dict.items() if k.startswith(f"{prefix}.")}
    try:
        module.load_state_dict(part)
    except RuntimeError as error:
        raise ValueError(
            f"{where}: the {prefix} weights do not fit its config: {error}"
        ) from error


def _word2vec_like(path: str | Path, spec: Mapping[str, Any]) -> Word2VecEncoder:
    """A Word2Vec encoder of ``path`` with the options of ``spec`` when it is one too."""
    options: dict[str, Any] = {}
    if str(spec.get("class_path", "")).endswith("Word2VecEncoder"):
        options = {k: v for k, v in (spec.get("init_args") or {}).items() if k != "path"}
    return Word2VecEncoder(path, **options)


def _cache_key_or_none(encoder: TextEncoder) -> str | None:
    try:
        return encoder.cache_key
    except ValueError as error:
        log.warning("exporting without a class-embedding cache key: %s", error)
        return None
