"""Training throughput: AURLModule through the Lightning Trainer against a plain PyTorch loop.

Both sides train the same components (visual and semantic towers, ``AURLLoss`` with its centres,
the pairwise ``ClassGenerator``), built from the same seed, with the same SGD optimiser and
warm-up + cosine schedule, on the same precomputed batches served by the same ``DataLoader``;
the plain loop is what one would write by hand: forward, loss, ``zero_grad``, ``backward``,
``step``, scheduler step. On the CPU (a narrow R(2+1)D on small clips) the two alternate over
several repeats; the ratio of their steps/s is taken between their fastest repeats (target
>= 0.95; the median of per-repeat ratios is reported too, see :func:`benchmarks.common.speedup`)
and their per-step losses are compared to show they did the same work.

The Trainer runs without progress bar, logger, checkpointing, model summary or validation. What
it still adds per step: the module's four ``self.log`` calls and its non-finite-loss check (a
host sync on a GPU), the automatic-optimisation closure and its hooks, the scheduler bookkeeping,
and fetching the next batch one step ahead (to know the last batch).

With a CUDA device (or ``--variants-device``), torchvision's R(2+1)D-18 on 16x112x112 clips,
batch 32, runs through the Trainer in fp32, bf16 autocast, bf16 + ``channels_last_3d`` and bf16
+ ``channels_last_3d`` + ``torch.compile`` of the visual tower, plus the plain loop in fp32;
clips/s and peak memory (``torch.cuda.max_memory_allocated``) with the card named. Batches live
on the device, so host-to-device copies are not measured.

Class names are embedded once by a seeded random text encoder (no model files needed): text
encoding happens before training and takes no part in a step.

Run: ``python -m benchmarks.train_throughput [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from aurl.callbacks import NonFiniteGuard
from aurl.class_generator import ClassGenerator
from aurl.class_space import ClassSpace
from aurl.losses import AURLLoss
from aurl.module import AURLModule
from aurl.optim import create_optimizer, create_warmup_cosine
from aurl.text_encoders import RandomTextEncoder
from aurl.towers import SemanticTower, VisualTower
from benchmarks.common import (
    clock,
    create_parser,
    cuda_peak_mib,
    interleave,
    machine_info,
    markdown_table,
    publish,
    speedup,
    summarize,
)

logger = logging.getLogger(__name__)

TARGET_TRAINER_VS_PLAIN = 0.95
LR, MOMENTUM, WEIGHT_DECAY, WARMUP_EPOCHS = 0.05, 0.9, 1e-4, 0.5


@dataclass(frozen=True)
class Setup:
    """One training configuration: model size, clip size, batch and step counts.

    Attributes:
        name: label in the results.
        backbone: a registered backbone name.
        backbone_kwargs: its arguments.
        clip_len: frames per clip (T).
        size: clip height and width.
        batch_size: clips per step.
        num_classes: training classes (rows of the semantic tower's input and of the centres).
        text_dim: text embedding size.
        fc_dim: the semantic tower's first layer.
        hidden_dim: projector hidden size (both towers).
        embed_dim: joint embedding size.
        steps: optimiser steps per run, warm-up included.
        warmup_steps: first steps left out of the timing (allocator, caches, compilation).
        num_batches: distinct precomputed batches, cycled.
        repeats: runs of each side (interleaved).
    """

    name: str
    backbone: str
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    clip_len: int = 8
    size: int = 32
    batch_size: int = 16
    num_classes: int = 32
    text_dim: int = 64
    fc_dim: int = 64
    hidden_dim: int = 128
    embed_dim: int = 128
    steps: int = 30
    warmup_steps: int = 5
    num_batches: int = 4
    repeats: int = 3


CPU_SMALL = Setup(
    name="cpu_small",
    backbone="r2plus1d_narrow",
    backbone_kwargs={"widths": (8, 16, 32, 64)},
    clip_len=8,
    size=32,
    steps=60,
    warmup_steps=10,
    repeats=5,
)
CPU_MEDIUM = Setup(
    name="cpu_medium",
    backbone="r2plus1d_narrow",
    backbone_kwargs={"widths": (16, 32, 64, 128)},
    clip_len=16,
    size=64,
    hidden_dim=256,
    embed_dim=256,
    steps=12,
    warmup_steps=2,
    repeats=3,
)
GPU_R2PLUS1D_18 = Setup(
    name="r2plus1d_18",
    backbone="r2plus1d_18",
    clip_len=16,
    size=112,
    batch_size=32,
    num_classes=600,
    text_dim=384,
    fc_dim=512,
    hidden_dim=2048,
    embed_dim=2048,
    steps=40,
    warmup_steps=10,
    repeats=1,
)
# A few milliseconds a step: smoke tests of the whole benchmark (--tiny).
CPU_TINY = replace(
    CPU_SMALL,
    name="cpu_tiny",
    backbone_kwargs={"widths": (4, 4, 8, 8)},
    clip_len=4,
    size=16,
    batch_size=4,
    num_classes=4,
    text_dim=8,
    fc_dim=16,
    hidden_dim=16,
    embed_dim=16,
    steps=4,
    warmup_steps=1,
    num_batches=2,
    repeats=1,
)
PRESETS = {
    "quick": [replace(CPU_SMALL, steps=20, warmup_steps=4, repeats=5)],
    "full": [CPU_SMALL, CPU_MEDIUM],
}
# Trainer settings of the accelerator variants.
VARIANTS = {
    "fp32": {"precision": "32-true", "channels_last": False, "compile": False},
    "bf16": {"precision": "bf16-mixed", "channels_last": False, "compile": False},
    "bf16_cl3d": {"precision": "bf16-mixed", "channels_last": True, "compile": False},
    "bf16_cl3d_compile": {"precision": "bf16-mixed", "channels_last": True, "compile": True},
}


def class_names(setup: Setup) -> list[str]:
    """The setup's training class names (labels index them)."""
    return [f"action {i}" for i in range(setup.num_classes)]


def create_components(setup: Setup, seed: int) -> dict[str, Any]:
    """Towers, loss, generator and text encoder, initialised from ``seed``."""
    torch.manual_seed(seed)
    return {
        "visual_tower": VisualTower(
            setup.backbone,
            dict(setup.backbone_kwargs),
            embed_dim=setup.embed_dim,
            hidden_dim=setup.hidden_dim,
        ),
        "semantic_tower": SemanticTower(
            setup.text_dim, setup.fc_dim, setup.hidden_dim, setup.embed_dim
        ),
        "loss": AURLLoss(),
        "class_generator": ClassGenerator("pairwise", seed=seed),
        "text_encoder": RandomTextEncoder(dim=setup.text_dim, seed=seed),
    }


def create_batches(setup: Setup, device: torch.device, seed: int) -> list[dict[str, Any]]:
    """``setup.num_batches`` random batches shaped like ``collate_skip``'s, on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    shape = (setup.batch_size, 3, setup.clip_len, setup.size, setup.size)
    batches = []
    for _ in range(setup.num_batches):
        labels = torch.randint(setup.num_classes, (setup.batch_size,), generator=generator)
        batches.append(
            {
                "video": torch.randn(shape, generator=generator).to(device),  # (B, C, T, H, W)
                "label": labels.to(device),  # (B,)
                "class_name": [f"action {int(y)}" for y in labels],
                "path": [f"clip{i}.mp4" for i in range(setup.batch_size)],
                "skipped": [],
            }
        )
    return batches


class CycledBatches(Dataset):
    """``length`` items cycling through ready-made batches (use with ``batch_size=None``)."""

    def __init__(self, batches: Sequence[dict[str, Any]], length: int) -> None:
        self.batches = list(batches)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.batches[index % len(self.batches)]


def create_batch_loader(batches: Sequence[dict[str, Any]], steps: int) -> DataLoader:
    """A loader yielding ``steps`` ready-made batches in the main process, as both sides use."""
    return DataLoader(CycledBatches(batches, steps), batch_size=None, num_workers=0)


class BenchData(L.LightningDataModule):
    """Serves the precomputed batches and the class names the module asks for."""

    def __init__(self, names: list[str], batches: Sequence[dict[str, Any]], steps: int) -> None:
        super().__init__()
        self.class_space = ClassSpace(names, [])
        self.batches = batches
        self.steps = steps

    def train_dataloader(self) -> DataLoader:
        return create_batch_loader(self.batches, self.steps)


class StepTimer(L.Callback):
    """Times training batches ``warmup .. steps - 1`` and the first one alone (where
    ``torch.compile`` compiles and cuDNN picks its algorithms), and keeps every step's loss."""

    def __init__(self, warmup: int, steps: int, cuda: bool) -> None:
        self.warmup, self.steps, self.cuda = warmup, steps, cuda
        self.start = self.end = float("nan")
        self.first_start = self.first_end = float("nan")
        self.losses: list[Tensor] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == 0:
            self.first_start = clock(self.cuda)
        if batch_idx == self.warmup:
            self.start = clock(self.cuda)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if outputs else torch.tensor(float("nan"))
        self.losses.append(loss.detach())
        if batch_idx == 0:
            self.first_end = clock(self.cuda)
        if batch_idx == self.steps - 1:
            self.end = clock(self.cuda)


def _record(setup: Setup, seconds: float, losses: Sequence[Tensor], peak: float | None) -> dict:
    timed = setup.steps - setup.warmup_steps
    return {
        "seconds": seconds,
        "steps_per_s": timed / seconds,
        "clips_per_s": timed * setup.batch_size / seconds,
        "losses": [float(x) for x in losses],
        "peak_memory_mib": peak,
    }


def _start(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def create_bench_module(
    components: dict[str, Any], channels_last: bool, root: str | Path
) -> AURLModule:
    """AURL with the benchmark's parts (:func:`create_components`) and SGD recipe, its class
    embeddings cached under ``root``."""
    return AURLModule(
        **components,
        optimizer="sgd",
        lr=LR,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        warmup_epochs=WARMUP_EPOCHS,
        channels_last=channels_last,
        embedding_cache_dir=f"{root}/embeddings",
    )


def create_bench_trainer(
    device: torch.device,
    precision: str,
    steps: int,
    callbacks: list[L.Callback],
    root: str | Path,
) -> L.Trainer:
    """A Trainer that only trains, ``steps`` steps on one device: no validation, logger,
    checkpoint, progress bar or summary (cuDNN autotuning on CUDA)."""
    return L.Trainer(
        accelerator=device.type,
        devices=[device.index or 0] if device.type == "cuda" else 1,
        precision=precision,
        max_epochs=1,
        max_steps=steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        benchmark=device.type == "cuda",
        callbacks=callbacks,
        default_root_dir=root,
    )


def run_trainer(
    setup: Setup,
    batches: Sequence[dict[str, Any]],
    device: torch.device,
    seed: int,
    precision: str = "32-true",
    channels_last: bool = False,
    compile_visual: bool = False,
) -> dict[str, Any]:
    """Trains ``setup.steps`` steps of AURLModule with ``Trainer.fit``.

    Returns:
        ``seconds`` of the timed steps, ``steps_per_s``, ``clips_per_s``, every step's loss,
        ``peak_memory_mib`` (CUDA only, else None), ``first_step_seconds`` (the first step
        alone: compilation, cuDNN autotuning), ``fit_seconds`` (the whole ``fit`` call, set-up
        included) and ``nonfinite_steps`` (skipped by :class:`NonFiniteGuard`).
    """
    _start(device)
    components = create_components(setup, seed)
    if compile_visual:
        components["visual_tower"].compile()
    timer = StepTimer(setup.warmup_steps, setup.steps, device.type == "cuda")
    with tempfile.TemporaryDirectory() as root:
        module = create_bench_module(components, channels_last, root)
        guard = NonFiniteGuard()  # listed by every experiment
        trainer = create_bench_trainer(device, precision, setup.steps, [timer, guard], root)
        start = time.perf_counter()
        trainer.fit(module, datamodule=BenchData(class_names(setup), batches, setup.steps))
        fit_seconds = time.perf_counter() - start
    peak = cuda_peak_mib(device) if device.type == "cuda" else None
    record = _record(setup, timer.end - timer.start, timer.losses, peak)
    return {
        **record,
        "first_step_seconds": timer.first_end - timer.first_start,
        "fit_seconds": fit_seconds,
        # The guard skips a step whose loss is not finite, which would make it look faster.
        "nonfinite_steps": guard.nonfinite_steps,
    }


def run_plain(
    setup: Setup, batches: Sequence[dict[str, Any]], device: torch.device, seed: int
) -> dict[str, Any]:
    """The same training as :func:`run_trainer` (fp32) in a hand-written loop.

    Returns:
        As :func:`run_trainer`; ``fit_seconds`` covers set-up and all steps, and
        ``nonfinite_steps`` counts non-finite losses (not skipped).
    """
    _start(device)
    start = time.perf_counter()
    cuda = device.type == "cuda"
    parts = create_components(setup, seed)
    visual, semantic, loss_fn = parts["visual_tower"], parts["semantic_tower"], parts["loss"]
    generator = parts["class_generator"]
    loss_fn.init_centres(setup.num_classes, setup.embed_dim)  # what AURLModule.setup does
    for part in (visual, semantic, loss_fn, generator):
        part.to(device).train()
    text = parts["text_encoder"].encode(class_names(setup)).to(device)  # (C, text_dim)
    params = [*visual.parameters(), *semantic.parameters(), *loss_fn.parameters()]
    optimizer = create_optimizer(params, "sgd", LR, MOMENTUM, WEIGHT_DECAY)
    warmup = max(1, round(WARMUP_EPOCHS * setup.steps))  # one epoch of `steps` batches
    scheduler = create_warmup_cosine(optimizer, warmup, setup.steps)
    losses: list[Tensor] = []
    t0 = float("nan")
    for i, batch in enumerate(create_batch_loader(batches, setup.steps)):
        video, labels = batch["video"].to(device), batch["label"].to(device)
        if i == setup.warmup_steps:
            t0 = clock(cuda)
        video_emb = visual(video)  # (B, D)
        class_emb = semantic(text)  # (C, D)
        out = loss_fn(video_emb, class_emb, labels, generator(class_emb, loss_fn.centres))
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        scheduler.step()
        losses.append(out["loss"].detach())
    t1 = clock(cuda)
    fit_seconds = time.perf_counter() - start
    peak = cuda_peak_mib(device) if cuda else None
    record = _record(setup, t1 - t0, losses, peak)
    nonfinite = sum(not math.isfinite(x) for x in record["losses"])
    return {**record, "fit_seconds": fit_seconds, "nonfinite_steps": nonfinite}


def bench_trainer_vs_plain(setup: Setup, seed: int) -> dict[str, Any]:
    """The CPU comparison: alternating fp32 runs of both sides, ``setup.repeats`` each.

    Returns:
        ``setup``, ``trainer`` and ``plain`` (median steps/s and clips/s, every run's record),
        ``ratio`` (trainer/plain throughput of the best repeats), ``ratio_paired_median``,
        ``target``, ``passed`` and
        ``loss_max_abs_diff`` (largest per-step loss difference between the first runs).
    """
    device = torch.device("cpu")
    batches = create_batches(setup, device, seed)
    train = {"trainer": run_trainer, "plain": run_plain}
    runs = interleave(
        {side: partial(fn, setup, batches, device, seed) for side, fn in train.items()},
        setup.repeats,
        label=setup.name,
    )
    times = {side: [r["seconds"] for r in records] for side, records in runs.items()}
    ratio = speedup(times["trainer"], times["plain"])
    first_t, first_p = runs["trainer"][0]["losses"], runs["plain"][0]["losses"]
    sides = {}
    for side, records in runs.items():
        median = summarize(times[side])["median"]
        timed_steps = setup.steps - setup.warmup_steps
        sides[side] = {
            "steps_per_s": timed_steps / median,
            "clips_per_s": timed_steps * setup.batch_size / median,
            "fit_seconds": summarize([r["fit_seconds"] for r in records])["median"],
            "runs": records,
        }
    return {
        "setup": asdict(setup),
        **sides,
        "ratio": ratio["best"],
        "ratio_paired_median": ratio["paired_median"],
        "target": TARGET_TRAINER_VS_PLAIN,
        "passed": ratio["best"] >= TARGET_TRAINER_VS_PLAIN,
        "loss_max_abs_diff": _max_abs_diff(first_t, first_p),
    }


def _max_abs_diff(a: Sequence[float], b: Sequence[float]) -> float:
    """Largest ``|a_i - b_i|``; NaN in both counts as equal, in one as infinitely far."""
    diffs = [
        0.0 if math.isnan(x) and math.isnan(y) else abs(x - y) for x, y in zip(a, b, strict=True)
    ]
    return max((math.inf if math.isnan(d) else d for d in diffs), default=0.0)


def bench_variants(
    setup: Setup, device: torch.device, variants: Sequence[str], seed: int
) -> dict[str, Any]:
    """Trainer runs in each precision/layout/compile variant, and the plain loop in fp32.

    Returns:
        ``setup``, ``device`` (its name), ``float32_matmul_precision`` and
        ``cudnn_allow_tf32`` (whether "fp32" convolutions may use TF32 tensor cores, PyTorch's
        default), and ``runs``: variant name (and ``"plain_fp32"``) -> the run's record.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the Trainer sets it too (benchmark=True)
    batches = create_batches(setup, device, seed)
    runs = {}
    for name in variants:
        logger.info("%s on %s: %s", setup.name, device, name)
        v = VARIANTS[name]
        runs[name] = run_trainer(
            setup, batches, device, seed, v["precision"], v["channels_last"], v["compile"]
        )
    logger.info("%s on %s: plain fp32 loop", setup.name, device)
    runs["plain_fp32"] = run_plain(setup, batches, device, seed)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "setup": asdict(setup),
        "device": name,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "runs": runs,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = create_parser("train_throughput", __doc__.split("\n")[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads on the CPU (1: OpenMP threads on a busy shared machine are erratic)",
    )
    parser.add_argument("--steps", type=int, help="override the CPU setups' steps per run")
    parser.add_argument("--warmup-steps", type=int, help="override the CPU setups' warm-up")
    parser.add_argument("--repeats", type=int, help="override the CPU setups' repeats")
    parser.add_argument("--tiny", action="store_true", help="a 4x16x16 clip setup (smoke tests)")
    parser.add_argument(
        "--variants-device",
        default="cuda",
        help="device of the precision/layout/compile variants ('cuda', 'cuda:1', 'cpu'); "
        "skipped when it is a CUDA device and none is available",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME"
    )
    return parser.parse_args(argv)


def _cpu_setups(args: argparse.Namespace) -> list[Setup]:
    setups = [CPU_TINY] if args.tiny else PRESETS["quick" if args.quick else "full"]
    overrides = {"steps": args.steps, "warmup_steps": args.warmup_steps, "repeats": args.repeats}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return [replace(s, **overrides) for s in setups]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark, prints its tables and writes ``train_throughput[_quick].{json,md}``.

    Returns:
        The results written to the JSON file (without ``name``, ``created``, ``command``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # Lightning's start-up notes (devices, tensor cores, few workers) are noise here.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)  # the CPU runs' threads; CUDA runs barely use the CPU
    try:
        machine = machine_info()
        cpu = {s.name: bench_trainer_vs_plain(s, args.seed) for s in _cpu_setups(args)}
        device = torch.device(args.variants_device)
        if device.type == "cuda" and not torch.cuda.is_available():
            variants: dict[str, Any] = {"skipped": "no CUDA device"}
        else:
            setup = GPU_R2PLUS1D_18 if device.type == "cuda" else _cpu_setups(args)[0]
            variants = bench_variants(setup, device, args.variants, args.seed)
    finally:
        torch.set_num_threads(threads)
    results = {
        "machine": machine,
        "params": {"quick": args.quick, "cpu_torch_threads": args.threads, "seed": args.seed},
        "trainer_vs_plain": cpu,
        "variants": variants,
    }
    quick = args.quick or args.tiny
    publish("train_throughput", argv, results, _markdown(results), args.out_dir, quick)
    return results


def _describe(setup: dict[str, Any]) -> str:
    widths = setup["backbone_kwargs"].get("widths")
    backbone = setup["backbone"] + (f" widths {tuple(widths)}" if widths else "")
    return (
        f"{backbone}, clips {setup['clip_len']}x{setup['size']}x{setup['size']}, batch "
        f"{setup['batch_size']}, {setup['num_classes']} classes, embed {setup['embed_dim']}; "
        f"{setup['steps'] - setup['warmup_steps']} timed steps after {setup['warmup_steps']} "
        f"warm-up, {setup['repeats']} repeat(s)"
    )


def _markdown(results: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    notes = []
    for name, r in results["trainer_vs_plain"].items():
        rows.append(
            [
                name,
                r["trainer"]["steps_per_s"],
                r["plain"]["steps_per_s"],
                r["trainer"]["clips_per_s"],
                r["plain"]["clips_per_s"],
                r["ratio"],
                r["ratio_paired_median"],
                f">= {r['target']}",
                r["passed"],
                f"{r['loss_max_abs_diff']:.2g}",
            ]
        )
        notes.append(f"- {name}: {_describe(r['setup'])}.")
    headers = [
        "setup",
        "Trainer steps/s",
        "plain steps/s",
        "Trainer clips/s",
        "plain clips/s",
        "ratio (best)",
        "ratio (median paired)",
        "target",
        "pass",
        "max loss diff",
    ]
    threads = results["params"]["cpu_torch_threads"]
    intro = (
        f"fp32 on the CPU, {threads} torch thread(s); steps/s are medians over alternating "
        "runs; the target is judged on the ratio of the fastest runs; max loss diff compares the "
        "per-step losses of the first Trainer and plain runs.\n\n"
    )
    body = intro + markdown_table(headers, rows) + "\n" + "\n".join(notes) + "\n"
    sections = [("Trainer vs plain loop (CPU)", body)]
    variants = results["variants"]
    if "skipped" in variants:
        sections.append(("Accelerator variants", f"Not run: {variants['skipped']}.\n"))
        return sections
    rows = [
        [
            name,
            r["steps_per_s"],
            r["clips_per_s"],
            r["peak_memory_mib"],
            r["fit_seconds"],
            r["losses"][-1] if r["losses"] else math.nan,
        ]
        for name, r in variants["runs"].items()
    ]
    headers = ["variant", "steps/s", "clips/s", "peak memory MiB", "whole run s", "last loss"]
    intro = (
        f"Device: {variants['device']}; {_describe(variants['setup'])}; float32 matmul "
        f"precision {variants['float32_matmul_precision']}, cuDNN TF32 "
        f"{variants['cudnn_allow_tf32']}. Variants run through the Trainer; "
        "plain_fp32 is the hand-written loop.\n\n"
    )
    sections.append(("Accelerator variants", intro + markdown_table(headers, rows)))
    return sections


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
