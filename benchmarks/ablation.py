"""The paper's ablation in miniature, on the synthetic benchmark.

Each variant is an experiment fragment (``experiments/ablations/*.yaml``) stacked on a base
experiment and trained with several seeds through the real ``aurl fit`` command (training,
checkpoint selection on held-out seen classes, test on the unseen classes). A seed seeds the
model and the data (validation classes, held-out videos, order, clips). The table reports
unseen top-1 (mean +- sample std over seeds, and per seed), the paired per-seed difference of
top-1, Closeness and Dispersion against ``L_S``, top-5, the mean inter-centre distance, the
generalised zero-shot harmonic mean (plain and calibrated) and wall time.

    python -m benchmarks.ablation            # 6 variants x 3 seeds on experiments/smoke.yaml
    python -m benchmarks.ablation --quick    # 1 seed, 2 epochs: a check that it all runs
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import command_line, machine_info, markdown_table, write_results

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent

# (name, fragment, what it tests), in the order of the paper's ablation.
VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("align_only", "align_only.yaml", "E2E-style regression onto fixed class embeddings"),
    ("L_S", "ls_only.yaml", "contrastive loss over seen class embeddings"),
    ("L_S+L_C", "ls_lc.yaml", "+ learnable visual centres"),
    ("L_S+L_C+L_US dense", "aurl_dense.yaml", "+ original code's generator (interpolation)"),
    ("L_S+L_C+L_US pairwise", "aurl_pairwise.yaml", "+ paper's generator (inter/extrapolation)"),
    ("random text (control)", "random_text.yaml", "full AURL, class names as random vectors"),
)

METRICS = ("top1", "top5", "closeness", "dispersion", "mean_centre_distance")
# The variant that every other is compared with, seed by seed.
REFERENCE = "L_S"
PAIRED = ("top1", "closeness", "dispersion")


def read_test_metrics(run_dir: Path) -> dict[str, float]:
    """The ``test/...`` metrics of a run from its newest CSV log (each column's last value)."""
    files = sorted(
        (run_dir / "csv").glob("version_*/metrics.csv"),
        key=lambda f: int(f.parent.name.removeprefix("version_")),
    )
    if not files:
        raise FileNotFoundError(f"no CSV metrics under {run_dir / 'csv'}")
    metrics: dict[str, float] = {}
    with files[-1].open(newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key.startswith("test/") and value not in ("", None):
                    metrics[key] = float(value)
    return metrics


def fit_arguments(
    base: Path, fragment: Path, seed: int, run_dir: Path, overrides: Sequence[str]
) -> list[str]:
    """The ``aurl fit`` arguments of one variant and seed (also what marks its run as done).

    The W&B run of a variant is in the group ``<base>/<fragment>`` (the seeds of one variant
    side by side), tagged ``seed<N>``, job type ``ablation``; ``overrides`` may change them.
    """
    return [
        "fit",
        "--config",
        str(base),
        "--config",
        str(fragment),
        "--seed_everything",
        str(seed),
        "--trainer.default_root_dir",
        str(run_dir),
        "--trainer.enable_progress_bar",
        "false",
        "--wandb.group",
        f"{base.stem}/{fragment.stem}",
        "--wandb.tags",
        f"[seed{seed}]",
        "--wandb.job_type",
        "ablation",
        *overrides,
    ]


def run_variant(
    base: Path, fragment: Path, seed: int, run_dir: Path, overrides: Sequence[str]
) -> dict[str, Any]:
    """Trains and tests one variant with one seed; returns its test metrics and wall time.

    A run folder whose ``done`` file records the same arguments is reused; any other folder
    at ``run_dir`` (an interrupted or differently configured run) is deleted first.
    """
    arguments = fit_arguments(base, fragment, seed, run_dir, overrides)
    command = [sys.executable, "-m", "aurl.cli", *arguments]
    done_file = run_dir / "done"
    if done_file.is_file() and done_file.read_text().split("\n")[:-1] == arguments:
        # Finished earlier with the same arguments: an interrupted ablation resumes here.
        return {"wall_s": float((run_dir / "wall_s").read_text()), **read_test_metrics(run_dir)}
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a partial run: its logs would mix with the new one's
    run_dir.mkdir(parents=True)
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    with (run_dir / "stdout.log").open("w") as out:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{fragment.name} seed {seed} failed; see {run_dir / 'stdout.log'}")
    metrics = read_test_metrics(run_dir)
    (run_dir / "wall_s").write_text(f"{wall}\n")
    done_file.write_text("\n".join(arguments) + "\n")
    return {"wall_s": wall, **metrics}


def aggregate(runs: list[dict[str, Any]], target: str) -> dict[str, Any]:
    """Mean, sample std and per-seed values over seeds of every metric of the target set.

    Covers the target set's metrics, its GZSL set's and the wall time. The std has n - 1 in the
    denominator (0 for a single run); a metric that no run logged is ``None``.
    """

    def stats(key: str) -> dict[str, Any] | None:
        values = [run[key] for run in runs if key in run]
        if not values:
            return None
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return {"mean": statistics.fmean(values), "std": std, "n": len(values), "values": values}

    out = {name: stats(f"test/{target}/{name}") for name in METRICS}
    out["half_top1_mean"] = stats(f"test/{target}/half_top1_mean")
    for name in ("gzsl_seen", "gzsl_unseen", "gzsl_h", "gzsl_cal_h", "gzsl_gamma"):
        out[name] = stats(f"test/{target}_gzsl/{name}")
    out["wall_s"] = stats("wall_s")
    return out


def paired_differences(
    runs: list[dict[str, Any]], reference: list[dict[str, Any]], target: str
) -> dict[str, Any]:
    """Per-seed differences ``variant - reference`` of :data:`PAIRED` metrics.

    Runs are paired by position (the same seed, so the same data and initial draws where the
    variants share them). Each metric gets mean, sample std, the per-seed values and
    ``exceeds_noise``: whether ``|mean| > 2 * std / sqrt(n)`` (about a paired t-test at 5% for
    few seeds; never with one seed).
    """
    out: dict[str, Any] = {}
    for name in PAIRED:
        key = f"test/{target}/{name}"
        values = [
            run[key] - ref[key]
            for run, ref in zip(runs, reference, strict=False)
            if key in run and key in ref
        ]
        if not values:
            out[name] = None
            continue
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        mean = statistics.fmean(values)
        exceeds = len(values) > 1 and abs(mean) > 2 * std / len(values) ** 0.5
        out[name] = {
            "mean": mean,
            "std": std,
            "n": len(values),
            "values": values,
            "exceeds_noise": exceeds,
        }
    return out


def _paired(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 1) -> str:
    if stat is None:
        return "n/a"
    mark = " *" if stat["exceeds_noise"] else ""
    return f"{scale * stat['mean']:+.{digits}f} +- {scale * stat['std']:.{digits}f}{mark}"


def _pct(stat: dict[str, float] | None, with_std: bool = False) -> str:
    if stat is None:
        return "n/a"
    text = f"{100 * stat['mean']:.1f}"
    return f"{text} +- {100 * stat['std']:.1f}" if with_std else text


def _num(stat: dict[str, float] | None) -> str:
    return "n/a" if stat is None else f"{stat['mean']:.3f}"


def _per_seed(stat: dict[str, Any] | None) -> str:
    return "n/a" if stat is None else " / ".join(f"{100 * v:.1f}" for v in stat["values"])


def write_report(
    results: dict[str, Any],
    variants: Sequence[tuple[str, str, str]],
    args: argparse.Namespace,
    argv: Sequence[str],
    seeds: list[int],
    overrides: list[str],
    machine: dict[str, Any],
) -> str:
    """Writes the results of the variants done so far; returns the Markdown table.

    ``machine`` is :func:`machine_info` taken when the ablation started (its load average is
    the other work on the machine, before the ablation's own).
    """
    rows = []
    for name, _, what in variants:
        if name not in results:
            continue
        s = results[name]["summary"]
        paired = results[name].get(f"vs_{REFERENCE}") or dict.fromkeys(PAIRED)
        rows.append(
            [
                name,
                _pct(s["top1"], with_std=True),
                _per_seed(s["top1"]),
                _paired(paired["top1"]),
                _paired(paired["closeness"], 1.0, 3),
                _paired(paired["dispersion"], 1.0, 3),
                _pct(s["top5"]),
                _pct(s["half_top1_mean"]),
                _num(s["closeness"]),
                _num(s["dispersion"]),
                _num(s["mean_centre_distance"]),
                _pct(s["gzsl_h"]),
                _pct(s["gzsl_cal_h"]),
                f"{s['wall_s']['mean']:.0f}",
                what,
            ]
        )
    table = markdown_table(
        [
            "variant",
            "unseen top-1 %",
            "top-1 per seed",
            f"top-1 vs {REFERENCE} (paired)",
            f"Closeness vs {REFERENCE}",
            f"Dispersion vs {REFERENCE}",
            "top-5 %",
            "50% splits top-1 %",
            "Closeness",
            "Dispersion",
            "mean centre dist.",
            "GZSL H %",
            "GZSL H calibrated %",
            "wall s",
            "what it tests",
        ],
        rows,
    )
    name = "ablation_quick" if args.quick else "ablation"
    write_results(
        name,
        command_line("ablation", list(argv)),
        {
            "base": args.base,
            "seeds": seeds,
            "overrides": overrides,
            "machine": machine,
            "variants": results,
        },
        [
            (
                f"Unseen classes ({args.target}), {len(seeds)} seed(s) (each seeds the model "
                "and the data): means, top-1 +- sample std over seeds; paired differences "
                f"against {REFERENCE} seed by seed, mean +- sample std, * where |mean| > "
                "2 std / sqrt(n)",
                table,
            )
        ],
        **({"out_dir": args.out_dir} if args.out_dir else {}),
    )
    return table


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="experiments/smoke.yaml", help="base experiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", help="subset of variant names")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs")
    parser.add_argument(
        "--runs_dir", help="run folders (default runs/ablation, or runs/ablation_quick)"
    )
    parser.add_argument("--target", default="synthetic_unseen", help="test set name")
    parser.add_argument("--out_dir", default=None, help="results folder")
    parser.add_argument("overrides", nargs="*", help="extra `aurl fit` arguments for every run")
    cli_args = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(cli_args)
    seeds = args.seeds[:1] if args.quick else args.seeds
    overrides = [*(["--trainer.max_epochs", "2"] if args.quick else []), *args.overrides]
    known = [name for name, _, _ in VARIANTS]
    unknown = sorted(set(args.variants or ()) - set(known))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {known}")
    variants = [v for v in VARIANTS if not args.variants or v[0] in args.variants]
    # Quick runs get their own folders: their other arguments would discard the full runs.
    runs_dir = args.runs_dir or ("runs/ablation_quick" if args.quick else "runs/ablation")

    base = ROOT / args.base
    machine = machine_info()
    results: dict[str, Any] = {}
    for name, fragment, _ in variants:
        runs = []
        for seed in seeds:
            run_dir = ROOT / runs_dir / fragment.removesuffix(".yaml") / f"seed{seed}"
            log.info("ablation: %s, seed %d -> %s", name, seed, run_dir)
            runs.append(
                run_variant(
                    base, ROOT / "experiments/ablations" / fragment, seed, run_dir, overrides
                )
            )
            top1 = runs[-1].get(f"test/{args.target}/top1", float("nan"))
            print(f"{name} seed {seed}: top-1 {100 * top1:.1f}% ({runs[-1]['wall_s']:.0f} s)")
        results[name] = {"runs": runs, "summary": aggregate(runs, args.target)}
        if REFERENCE in results:
            for entry in results.values():
                entry[f"vs_{REFERENCE}"] = paired_differences(
                    entry["runs"], results[REFERENCE]["runs"], args.target
                )
        # Written after every variant: an interrupted ablation keeps what it measured.
        table = write_report(results, variants, args, cli_args, seeds, overrides, machine)
    print(table)

    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
