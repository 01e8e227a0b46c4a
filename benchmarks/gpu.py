"""GPU benchmark: what one accelerator trains per second, and whether the loader keeps up.

The stages of ``benchmarks/gpu.sh`` (``make bench-gpu``), each a subcommand that writes one JSON
part; ``report`` merges the parts into ``gpu.{json,md}``:

- ``check``: fails at once when the device (CUDA unless ``--tiny``) is missing.
- ``model``: R(2+1)D-18 on 16x112x112 clips, batch 32, through the Trainer
  (:func:`benchmarks.train_throughput.run_trainer`) on batches that live on the device, in the
  variants asked for: ``fp32``, ``bf16`` (autocast), ``bf16_cl3d`` (+ ``channels_last_3d``),
  ``bf16_cl3d_compile`` (+ ``torch.compile`` of the visual tower). Clips/s over the steps after
  the warm-up; the first step alone (compilation, cuDNN autotuning) is reported apart.
  ``gpu.sh`` runs the compile variant in its own process under a time limit.
- ``sources``: writes Kinetics-like source videos (10 s, 30 fps, 340x256, x264 defaults and an
  AAC track; :mod:`benchmarks.videos`) as ``<out>/<class>/<video>.mp4``, in parallel processes.
- ``loader``: the real training path: a :class:`~data_modules.ZeroShotDataModule` train loader
  over a folder of videos (``--videos``, a ``VideoFolder`` layout) with ``--workers`` workers
  feeding the model (bf16 + ``channels_last_3d``) through ``Trainer.fit``, measured by
  :class:`~aurl.callbacks.TrainThroughput`: data-wait share and clips/s over the steps after the
  warm-up. The videos are listed again under links until one epoch holds every step, so no
  epoch boundary (worker start) falls inside the measurement.
- ``report``: ratios to fp32 (measured by the same ``gpu.sh`` run), the targets (data wait
  < 10% of step time with the recommended workers; bf16 + ``channels_last_3d`` >= 2x fp32).

``--tiny`` is the CPU smoke setting (a narrow R(2+1)D on 4x16x16 clips, a few steps, tiny
videos) that tests run; without it a CUDA device is required, and its absence is an error.

Run: ``bash benchmarks/gpu.sh [--tiny] [--workers N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmarks.common import (
    RESULTS_DIR,
    machine_info,
    markdown_table,
    render_sections,
    write_results,
)

if TYPE_CHECKING:
    from benchmarks.train_throughput import Setup

# Lightning, aurl, data_modules and the training benchmark are imported by the stages that use
# them: the report stage and the CUDA check then start in a few seconds.
logger = logging.getLogger(__name__)

TARGET_DATA_WAIT = 0.10  # share of step time, with the recommended workers
TARGET_BF16_CL3D_VS_FP32 = 2.0
LOADER_VARIANT = "bf16_cl3d"  # the recommended training setting that the loader feeds

# The keys of benchmarks.train_throughput.VARIANTS.
MODEL_VARIANTS = ("fp32", "bf16", "bf16_cl3d", "bf16_cl3d_compile")
# The settings of a GPU run and of the CPU smoke run (--tiny).
LOADER_STEPS = {"gpu": (300, 30), "tiny": (6, 1)}  # (steps, warm-up steps)
SOURCES = {
    "gpu": {"count": 48, "classes": 8, "seconds": 10.0, "height": 256, "width": 340},
    "tiny": {"count": 4, "classes": 2, "seconds": 1.0, "height": 144, "width": 192},
}
DEFAULT_WORKERS = {"gpu": 12, "tiny": 2}


def model_setup(size: str) -> Setup:
    """The model of a GPU run (``"gpu"``: R(2+1)D-18, 16x112x112, batch 32, 40 timed steps
    after 10) or of the CPU smoke run (``"tiny"``)."""
    from benchmarks.train_throughput import CPU_TINY, GPU_R2PLUS1D_18

    return replace(GPU_R2PLUS1D_18, steps=50, warmup_steps=10) if size == "gpu" else CPU_TINY


def resolve_device(name: str | None, tiny: bool) -> torch.device:
    """The device to run on: ``name``, else CUDA (the CPU for ``tiny``).

    Raises:
        SystemExit: if a CUDA device is asked for and none is available.
    """
    device = torch.device(name or ("cpu" if tiny else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"benchmarks.gpu: device {str(device)!r} asked for but CUDA is not available "
            f"(torch {torch.__version__}); the CPU smoke run is --tiny"
        )
    return device


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def bench_model(
    setup: Setup, device: torch.device, variants: Sequence[str], seed: int
) -> dict[str, Any]:
    """Trainer runs of ``setup`` in each variant, one after the other, on device batches.

    Returns:
        ``setup``, ``device`` (its name), ``float32_matmul_precision``, ``cudnn_allow_tf32``
        and ``runs``: variant -> ``clips_per_s``, ``steps_per_s``, ``seconds`` (timed steps),
        ``first_step_seconds``, ``fit_seconds``, ``peak_memory_mib``, ``last_loss``,
        ``nonfinite_steps``.
    """
    from benchmarks.train_throughput import VARIANTS, create_batches, run_trainer

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batches = create_batches(setup, device, seed)
    runs = {}
    for name in variants:
        logger.info("model on %s: %s", device, name)
        v = VARIANTS[name]
        record = run_trainer(
            setup, batches, device, seed, v["precision"], v["channels_last"], v["compile"]
        )
        losses = record.pop("losses")
        runs[name] = {**record, "last_loss": losses[-1] if losses else math.nan}
    return {
        "setup": asdict(setup),
        "device": _device_name(device),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "runs": runs,
    }


def _write_source(job: tuple[Path, int, dict[str, Any]]) -> Path:
    from benchmarks import videos

    path, seed, spec = job
    fps = 30
    frames = videos.kinetics_like_frames(
        seed, round(spec["seconds"] * fps), spec["height"], spec["width"]
    )  # (T, H, W, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    return videos.encode_kinetics_like(path, frames, fps, seed=seed)


def write_sources(out: Path, spec: dict[str, Any], processes: int) -> list[Path]:
    """Writes ``spec["count"]`` Kinetics-like videos as ``out/action_<k>/video_<i>.mp4``.

    Args:
        out: the folder (a ``VideoFolder`` root).
        spec: ``count``, ``classes`` (videos go round-robin into them), ``seconds``,
            ``height``, ``width``.
        processes: parallel writers.

    Returns:
        The written paths.
    """
    jobs = [
        (out / f"action_{i % spec['classes']}" / f"video_{i:04d}.mp4", i, spec)
        for i in range(spec["count"])
    ]
    with ProcessPoolExecutor(max(1, min(processes, len(jobs)))) as pool:
        return list(pool.map(_write_source, jobs))


def list_videos(root: Path) -> list[Path]:
    """The videos of a ``VideoFolder`` root (``root/<class>/<file>``), sorted.

    Raises:
        FileNotFoundError: if ``root`` holds no video in a class folder.
    """
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in (".mp4", ".avi", ".mkv"))
    if not files:
        raise FileNotFoundError(f"{root}: no videos in class folders (expected root/<class>/*)")
    return files


def link_epoch(files: Sequence[Path], out: Path, count: int) -> None:
    """Lists ``files`` round-robin under ``count`` links ``out/<class>/<n>_<name>`` (the class
    is the file's folder), so that one epoch holds ``count`` items."""
    for n in range(count):
        source = files[n % len(files)]
        link = out / source.parent.name / f"{n:06d}_{source.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source.resolve())


def bench_loader(
    videos_dir: Path,
    setup: Setup,
    device: torch.device,
    workers: int,
    steps: int,
    warmup_steps: int,
    seed: int,
) -> dict[str, Any]:
    """The ZeroShotDataModule train loader with ``workers`` workers feeding ``setup``'s model.

    Returns:
        ``setup``, ``device``, ``variant``, ``workers``, ``videos`` (distinct files),
        ``steps``, ``timed_steps``, ``data_wait`` (share of step time), ``clips_per_s``
        (per device), ``fit_seconds`` and ``nonfinite_steps``.
    """
    from aurl.callbacks import NonFiniteGuard, TrainThroughput
    from benchmarks.train_throughput import (
        VARIANTS,
        create_bench_module,
        create_bench_trainer,
        create_components,
    )
    from data_modules.datamodule import ZeroShotDataModule
    from data_modules.datasets import VideoFolder
    from data_modules.video_reader import probe_video

    if steps < warmup_steps + 3:
        raise ValueError(f"need steps >= warm-up + 3, got {steps} and {warmup_steps}")
    files = list_videos(videos_dir)
    variant = VARIANTS[LOADER_VARIANT]
    # TrainThroughput skips the epoch's first step; the window leaves out the warm-up.
    timed_steps = steps - 1 - warmup_steps
    meter = TrainThroughput(window=timed_steps, prog_bar=False)
    guard = NonFiniteGuard()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        link_epoch(files, root / "train", (steps + 1) * setup.batch_size)
        # The datamodule wants a target catalog; training never reads it.
        link_epoch(files[:1], root / "test" / "unseen", 1)
        data = ZeroShotDataModule(
            source=VideoFolder(root / "train"),
            targets=[VideoFolder(root / "test" / "unseen")],
            val_fraction=0.0,
            overlap_tau=0.0,
            clip_len=setup.clip_len,
            size=setup.size,
            batch_size=setup.batch_size,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            seed=seed,
        )
        module = create_bench_module(
            create_components(setup, seed), variant["channels_last"], root
        )
        trainer = create_bench_trainer(device, variant["precision"], steps, [meter, guard], root)
        start = time.perf_counter()
        trainer.fit(module, datamodule=data)
        fit_seconds = time.perf_counter() - start
    metrics = trainer.callback_metrics
    if trainer.global_step != steps or "perf/data_wait" not in metrics:
        raise RuntimeError(
            f"the loader run stopped after {trainer.global_step} of {steps} steps "
            f"(logged: {sorted(metrics)})"
        )
    return {
        "setup": asdict(setup),
        "device": _device_name(device),
        "variant": LOADER_VARIANT,
        "workers": workers,
        "videos": len(files),
        "video_size": list(probe_video(files[0])[2:4]),  # [height, width] of the first
        "steps": steps,
        "timed_steps": timed_steps,
        "data_wait": float(metrics["perf/data_wait"]),
        "clips_per_s": float(metrics["perf/clips_per_s_per_device"]),
        "fit_seconds": fit_seconds,
        "nonfinite_steps": guard.nonfinite_steps,
    }


def build_report(
    model: dict[str, Any],
    compiled: dict[str, Any] | None,
    compile_status: str,
    compile_limit: float | None,
    loader: dict[str, Any],
) -> dict[str, Any]:
    """Merges the parts: every variant's run, its ratio to fp32, compile and loader results.

    Args:
        model: the ``model`` part (with an ``fp32`` run).
        compiled: the ``model`` part of the compile variant, or None when it did not finish.
        compile_status: ``ok``, ``timeout``, ``failed`` or ``skipped``.
        compile_limit: the compile stage's time limit in seconds (None: none).
        loader: the ``loader`` part.

    Returns:
        ``model`` (setup, device, runs), ``ratios_vs_fp32``, ``compile`` (``status``,
        ``limit_seconds``, ``first_step_seconds``: compilation included), ``loader`` and
        ``targets`` (each with its value, threshold and ``passed``).

    Raises:
        ValueError: if the model part has no fp32 run, or ``compile_status`` is ``ok``
            without a compile part.
    """
    runs = dict(model["runs"])
    if "fp32" not in runs:
        raise ValueError(f"the model part has no fp32 run (runs: {sorted(runs)})")
    if compile_status == "ok":
        if compiled is None:
            raise ValueError("compile_status 'ok' but no compile part")
        runs.update(compiled["runs"])
    fp32 = runs["fp32"]["clips_per_s"]
    ratios = {name: run["clips_per_s"] / fp32 for name, run in runs.items()}
    compile_run = runs.get("bf16_cl3d_compile")
    targets = {
        "data_wait": {
            "value": loader["data_wait"],
            "below": TARGET_DATA_WAIT,
            "passed": loader["data_wait"] < TARGET_DATA_WAIT,
        }
    }
    if "bf16_cl3d" in ratios:
        targets["bf16_cl3d_vs_fp32"] = {
            "value": ratios["bf16_cl3d"],
            "at_least": TARGET_BF16_CL3D_VS_FP32,
            "passed": ratios["bf16_cl3d"] >= TARGET_BF16_CL3D_VS_FP32,
        }
    return {
        "model": {**model, "runs": runs},
        "ratios_vs_fp32": ratios,
        "compile": {
            "status": compile_status,
            "limit_seconds": compile_limit,
            "first_step_seconds": compile_run["first_step_seconds"] if compile_run else None,
        },
        "loader": loader,
        "targets": targets,
    }


def _markdown(report: dict[str, Any]) -> list[tuple[str, str]]:
    model = report["model"]
    setup = model["setup"]
    rows = [
        [
            name,
            run["clips_per_s"],
            report["ratios_vs_fp32"][name],
            run["first_step_seconds"],
            run["peak_memory_mib"],
            run["nonfinite_steps"],
        ]
        for name, run in model["runs"].items()
    ]
    headers = ["variant", "clips/s", "x fp32", "first step s", "peak memory MiB", "skipped steps"]
    compiled = report["compile"]
    intro = (
        f"Device: {model['device']}; {setup['backbone']}, clips {setup['clip_len']}x"
        f"{setup['size']}x{setup['size']}, batch {setup['batch_size']}; "
        f"{setup['steps'] - setup['warmup_steps']} timed steps after {setup['warmup_steps']} "
        f"warm-up; batches on the device. torch.compile: {compiled['status']} (limit "
        f"{compiled['limit_seconds']} s; its first step, compilation included, is its "
        "`first step s`).\n\n"
    )
    sections = [("Model", intro + markdown_table(headers, rows))]
    loader = report["loader"]
    rows = [
        [
            loader["workers"],
            loader["variant"],
            loader["clips_per_s"],
            100 * loader["data_wait"],
            f"< {100 * TARGET_DATA_WAIT:g}",
            report["targets"]["data_wait"]["passed"],
        ]
    ]
    headers = ["workers", "model", "clips/s", "data wait %", "target %", "pass"]
    intro = (
        f"ZeroShotDataModule train loader over {loader['videos']} videos (listed again under "
        f"links for one long epoch) feeding the model through Trainer.fit; TrainThroughput over "
        f"{loader['timed_steps']} steps after the warm-up.\n\n"
    )
    sections.append(("Loader feeding the model", intro + markdown_table(headers, rows)))
    lines = [
        f"- {name}: {t['value']:.3g} ({'pass' if t['passed'] else 'FAIL'})"
        for name, t in report["targets"].items()
    ]
    sections.append(("Targets", "\n".join(lines) + "\n"))
    return sections


def _read_part(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _write_part(path: Path, part: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(part, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The stage and its options (``check``, ``model``, ``sources``, ``loader``, ``report``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu", description=__doc__.split("\n")[0]
    )
    stages = parser.add_subparsers(dest="stage", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--tiny", action="store_true", help="the CPU smoke setting")
    common.add_argument("--seed", type=int, default=0)
    device = argparse.ArgumentParser(add_help=False)
    device.add_argument("--device", help="default: cuda (cpu with --tiny)")
    model = stages.add_parser("model", parents=[common, device], help="training clips/s")
    model.add_argument(
        "--variants", nargs="+", choices=MODEL_VARIANTS, default=["fp32"], metavar="NAME"
    )
    model.add_argument("--json", type=Path, required=True, help="the part to write")
    sources = stages.add_parser("sources", parents=[common], help="write source videos")
    sources.add_argument("--out", type=Path, required=True)
    sources.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    loader = stages.add_parser("loader", parents=[common, device], help="loader + model")
    loader.add_argument("--videos", type=Path, required=True, help="root/<class>/<video>")
    loader.add_argument("--workers", type=int, help="DataLoader workers (default 12; tiny 2)")
    loader.add_argument("--steps", type=int, help="training steps, warm-up included")
    loader.add_argument("--warmup-steps", type=int)
    loader.add_argument("--json", type=Path, required=True, help="the part to write")
    stages.add_parser("check", parents=[common, device], help="fail now if the device is missing")
    report = stages.add_parser("report", parents=[common], help="merge the parts")
    report.add_argument("--model", type=Path, required=True)
    report.add_argument("--compile", type=Path, help="the compile variant's part, if any")
    report.add_argument(
        "--compile-status", choices=["ok", "timeout", "failed", "skipped"], required=True
    )
    report.add_argument("--compile-limit", type=float)
    report.add_argument("--loader", type=Path, required=True)
    report.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    report.add_argument("--command", default="bash benchmarks/gpu.sh", help="as recorded")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Runs one stage; returns what it wrote (a part, or the report without its header)."""
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    size = "tiny" if args.tiny else "gpu"
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    if args.stage == "sources":
        paths = write_sources(args.out, SOURCES[size], args.processes)
        return {"videos": [str(p) for p in paths]}
    if args.stage == "report":
        model, loader = _read_part(args.model), _read_part(args.loader)
        if model is None or loader is None:
            raise SystemExit(f"benchmarks.gpu report: missing part {args.model} or {args.loader}")
        report = build_report(
            model, _read_part(args.compile), args.compile_status, args.compile_limit, loader
        )
        results = {"machine": machine_info(), "params": {"tiny": args.tiny}, **report}
        sections = _markdown(report)
        name = "gpu_quick" if args.tiny else "gpu"
        paths = write_results(name, args.command, results, sections, args.out_dir)
        print(render_sections(sections))
        print(f"wrote {paths[0]} and {paths[1]}")
        return results
    device = resolve_device(args.device, args.tiny)
    if args.stage == "check":
        return {"device": str(device)}
    if args.stage == "model":
        part = bench_model(model_setup(size), device, args.variants, args.seed)
    else:
        steps, warmup = LOADER_STEPS[size]
        part = bench_loader(
            args.videos,
            model_setup(size),
            device,
            args.workers if args.workers is not None else DEFAULT_WORKERS[size],
            args.steps or steps,
            args.warmup_steps if args.warmup_steps is not None else warmup,
            args.seed,
        )
    _write_part(args.json, part)
    return part


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
