"""The ``aurl`` command end to end: every experiment file, W&B, resume, predict, check-data, DDP.

Runs go through the real CLI (``aurl.cli.run_lightning_cli``, in this process unless a test
needs a fresh one) on a tiny synthetic benchmark and tiny copies of the Kinetics-700, UCF101 and
HMDB51 layouts, with a narrow backbone; every run writes under ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import yaml
from jsonargparse import Namespace

from aurl.backbones import list_backbones
from aurl.cli import link_data_seed
from aurl.cli import main as aurl_main
from aurl.commands import read_class_names
from aurl.losses import AlignOnlyLoss, AURLLoss
from aurl.module import AURLModule
from data_modules.datasets import SyntheticActions
from data_modules.transforms import KINETICS_MEAN, KINETICS_STD
from data_modules.video_reader import probe_video, read_clip
from data_modules.video_writer import write_video
from tests.cli_helpers import (
    CPU_TRAINER,
    EXPERIMENTS,
    TINY_SYNTHETIC,
    assert_config_contains,
    at_key,
    aurl_subprocess,
    build_hmdb51,
    build_kinetics700,
    build_ucf101,
    cli_exit,
    flatten,
    free_port,
    load_yaml,
    printed_config,
    real_data_class_names,
    referenced_files,
    run_cli,
    stated_keys,
    subprocess_env,
    vocabulary,
    wandb_history_and_summary,
    wandb_run_info,
    without_keys,
    write_tiny_overrides,
    write_word2vec,
)
from tests.metrics_csv import last_metrics, per_step
from tests.tiny import write_cli_checkpoint, write_colour_videos

SYNTHETIC_EXPERIMENTS = ["smoke.yaml", "synthetic.yaml"]
PAPER_RECIPE = "k700_ucf101_hmdb51.yaml"
COMPLETE_EXPERIMENTS = sorted(p.name for p in EXPERIMENTS.glob("*.yaml"))
ABLATIONS = sorted(p.name for p in (EXPERIMENTS / "ablations").glob("*.yaml"))
TEXT_ENCODERS = sorted(p.name for p in (EXPERIMENTS / "text_encoders").glob("*.yaml"))
# Fragments stack on the full synthetic benchmark (their comments say so).
FRAGMENT_BASE = EXPERIMENTS / "synthetic.yaml"
SMOKE = EXPERIMENTS / "smoke.yaml"
# The house plugins, loggers and callbacks: every experiment names these files for these keys.
DEFAULTS = EXPERIMENTS / "defaults"
HOUSE_DEFAULTS = {
    "trainer.plugins": DEFAULTS / "plugins.yaml",
    "trainer.logger": DEFAULTS / "loggers.yaml",
    "trainer.callbacks": DEFAULTS / "callbacks.yaml",
}
# Steps per epoch of the tiny benchmark: 8 training videos, batch size 2.
STEPS_PER_EPOCH = 4


TORCH_LOAD = torch.load


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One cache folder for this file (tiny synthetic set, class embeddings, W&B), offline."""
    cache = tmp_path_factory.mktemp("aurl_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AURL_CACHE_DIR", str(cache))
        patch.setenv("WANDB_MODE", "offline")
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
            patch.setenv(name, str(cache / "wandb"))
        yield cache


@pytest.fixture(scope="module")
def tiny_set(cli_env: Path) -> SyntheticActions:
    """The tiny synthetic benchmark, generated once into the cache folder."""
    catalog = SyntheticActions(part="all", **TINY_SYNTHETIC)
    catalog.prepare()
    return catalog


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs from an empty folder, so any relative path a config names lands in tmp_path."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def tiny_fit(
    experiment: Path, root: Path, *extra: str, configs: tuple[Path, ...] = ()
) -> list[str]:
    """``aurl fit`` arguments for ``experiment`` on tiny data and model, writing to ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    tiny = write_tiny_overrides(experiment, root.parent / f"{root.name}_tiny.yaml")
    args = ["fit", "--config", str(experiment), "--config", str(tiny)]
    for config in configs:
        args += ["--config", str(config)]
    return [*args, "--trainer.default_root_dir", str(root), *extra]


def logged_test_metrics(cli: Any) -> dict[str, float]:
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("test/")}


def assert_valid_test_metrics(metrics: dict[str, float], sets: list[str]) -> None:
    for name in sets:
        for metric in ("top1", "top5", "closeness", "dispersion"):
            value = metrics[f"test/{name}/{metric}"]
            assert math.isfinite(value), f"test/{name}/{metric} = {value}"
        assert 0.0 <= metrics[f"test/{name}/top1"] <= metrics[f"test/{name}/top5"] <= 1.0


# --- 1. every experiment parses and runs --------------------------------------------------
def test_every_experiment_has_a_fast_dev_run_test() -> None:
    assert sorted([*SYNTHETIC_EXPERIMENTS, PAPER_RECIPE]) == COMPLETE_EXPERIMENTS


@pytest.mark.parametrize("experiment", COMPLETE_EXPERIMENTS)
def test_experiment_names_the_house_defaults(experiment: str) -> None:
    references = referenced_files(load_yaml(EXPERIMENTS / experiment), EXPERIMENTS)
    assert {k: v for k, v in references.items() if k in HOUSE_DEFAULTS} == HOUSE_DEFAULTS


def test_every_defaults_file_is_named_by_an_experiment() -> None:
    # The fast-dev-run tests of the experiments then run every file of defaults/.
    named = set()
    for experiment in COMPLETE_EXPERIMENTS:
        named |= set(referenced_files(load_yaml(EXPERIMENTS / experiment), EXPERIMENTS).values())
    assert sorted(DEFAULTS.glob("*.yaml")) == sorted(named)


@pytest.mark.parametrize("experiment", COMPLETE_EXPERIMENTS)
def test_experiment_parses_to_what_the_file_says(experiment: str, workdir: Path) -> None:
    path = EXPERIMENTS / experiment
    config = printed_config(["fit", "--config", str(path)])
    stated = load_yaml(path)
    references = referenced_files(stated, path.parent)
    assert_config_contains(without_keys(stated, references), config)
    # A key that names a file holds what the file holds, as when the file is given for the key
    # on the command line.
    args = [arg for key, file in references.items() for arg in (f"--{key}", str(file))]
    loaded = printed_config(["fit", *args])
    for key in references:
        assert at_key(config, key) == at_key(loaded, key), key


@pytest.mark.parametrize(
    "fragment",
    [f"ablations/{n}" for n in ABLATIONS] + [f"text_encoders/{n}" for n in TEXT_ENCODERS],
)
def test_fragment_stacks_on_the_base(fragment: str, workdir: Path) -> None:
    base = printed_config(["fit", "--config", str(FRAGMENT_BASE)])
    config = printed_config(
        ["fit", "--config", str(FRAGMENT_BASE), "--config", str(EXPERIMENTS / fragment)]
    )
    stated = load_yaml(EXPERIMENTS / fragment)
    assert_config_contains(stated, config)
    # Everything the fragment does not state is as in the base experiment.
    allowed = stated_keys(stated, base)
    before, after = flatten(base), flatten(config)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    for key in changed:
        assert any(key == a or key.startswith(a + ".") for a in allowed), key


@pytest.mark.slow
@pytest.mark.parametrize("experiment", SYNTHETIC_EXPERIMENTS)
def test_synthetic_experiment_fast_dev_run(experiment: str, tiny_set, workdir: Path) -> None:
    root = workdir.parent / "run"
    cli = run_cli(tiny_fit(EXPERIMENTS / experiment, root, "--trainer.fast_dev_run", "true"))
    assert cli.trainer.global_step == 1
    assert_valid_test_metrics(
        logged_test_metrics(cli), ["synthetic_unseen", "synthetic_unseen_gzsl"]
    )
    assert sorted(p.name for p in (root / "plots").iterdir()) == sorted(
        f"synthetic_unseen{gz}_{kind}.png"
        for gz in ("", "_gzsl")
        for kind in ("embeddings", "per_class_top1", "confusion")  # both sets <= 60 classes
    )
    assert list(workdir.iterdir()) == [], "the run wrote outside its default_root_dir"


@pytest.fixture(scope="module")
def real_layouts(tmp_path_factory: pytest.TempPathFactory, tiny_set) -> dict[str, str]:
    """Tiny Kinetics-700 (all 700 classes, one clip each), UCF101 and HMDB51 layouts, and a
    300-d word2vec file covering every word of their class names; as the recipe's env vars."""
    root = tmp_path_factory.mktemp("real")
    mp4 = Path(tiny_set.samples[0][0])
    avi = root / "clip.avi"
    frames = read_clip(mp4, list(range(probe_video(mp4).num_frames))).numpy()
    write_video(avi, frames, fps=8, codec="mpeg4")
    k700, annotations = build_kinetics700(root / "kinetics700", mp4)
    ucf, ucf_splits = build_ucf101(root / "UCF-101", root / "ucfTrainTestlist", avi)
    hmdb, hmdb_splits = build_hmdb51(root / "hmdb51", root / "testTrainMulti_7030_splits", avi)
    words = vocabulary(real_data_class_names())
    vectors = write_word2vec(root / "GoogleNews-vectors-negative300.bin", words)
    return {
        "AURL_K700_ROOT": str(k700),
        "AURL_K700_ANNOTATIONS": str(annotations),
        "AURL_UCF101_ROOT": str(ucf),
        "AURL_UCF101_SPLITS": str(ucf_splits),
        "AURL_HMDB51_ROOT": str(hmdb),
        "AURL_HMDB51_SPLITS": str(hmdb_splits),
        "AURL_WORD2VEC": str(vectors),
    }


@pytest.mark.slow
def test_paper_recipe_fast_dev_run_on_tiny_layouts(
    real_layouts: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in real_layouts.items():
        monkeypatch.setenv(name, value)
    root = workdir / "run"
    report = workdir / "overlap_removal.tsv"
    args = tiny_fit(
        EXPERIMENTS / PAPER_RECIPE,
        root,
        "--trainer.fast_dev_run",
        "true",
        *CPU_TRAINER,
        "--data.overlap_report",
        str(report),
    )
    cli = run_cli(args)
    metrics = logged_test_metrics(cli)
    assert_valid_test_metrics(metrics, ["ucf101", "hmdb51"])
    for name in ("ucf101", "hmdb51"):
        assert 0.0 <= metrics[f"test/{name}/half_top1_mean"] <= 1.0
    # Overlap removal ran on the real Kinetics list: "playing cello" is also a UCF101 class.
    dm = cli.datamodule
    assert "playing cello" in dm.overlap.removed
    space = dm.class_space
    assert "playing cello" not in space.train_classes + space.val_classes
    assert len(space.train_classes) + len(space.val_classes) == 700 - len(dm.overlap.removed)
    rows = {
        row[0]: row[1:] for row in (line.split("\t") for line in report.read_text().splitlines())
    }
    assert len(rows) == 1 + 700
    status, nearest, distance = rows["playing cello"]
    assert (status, nearest) == ("removed", "playing cello") and float(distance) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("fragment", ABLATIONS)
def test_ablation_fast_dev_run(fragment: str, tiny_set, workdir: Path) -> None:
    path = EXPERIMENTS / "ablations" / fragment
    root = workdir / "run"
    cli = run_cli(tiny_fit(FRAGMENT_BASE, root, "--trainer.fast_dev_run", "true", configs=(path,)))
    assert_valid_test_metrics(logged_test_metrics(cli), ["synthetic_unseen"])
    # The fragment's choices reached the instantiated model.
    model, wanted = cli.model, load_yaml(path).get("model", {})
    if "loss" in wanted:
        loss_class = {"AURLLoss": AURLLoss, "AlignOnlyLoss": AlignOnlyLoss}
        assert type(model.loss) is loss_class[wanted["loss"]["class_path"].rsplit(".", 1)[1]]
    for key in ("semantic_tower", "class_generator"):
        if key in wanted and wanted[key] is None:
            assert getattr(model, key) is None, f"{fragment}: model.{key} should be off"
    weights = (wanted.get("loss") or {}).get("init_args", {})
    for key, value in weights.items():
        assert getattr(model.loss, key) == value, f"{fragment}: loss.{key}"


@pytest.fixture(scope="module")
def tiny_clip_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A randomly initialised tiny CLIP saved as save_pretrained writes it, and its text dim."""
    from tests.aurl.test_text_encoder_clip import PROJECTION_DIM, save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("clip"), seed=0), PROJECTION_DIM


@pytest.mark.slow
@pytest.mark.parametrize("encoder", [n.removesuffix(".yaml") for n in TEXT_ENCODERS])
def test_text_encoder_fragment_fast_dev_run(
    encoder: str,
    tiny_set,
    tiny_clip_folder: tuple[Path, int],
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = []
    if encoder == "word2vec":
        path = write_word2vec(workdir.parent / "w2v.bin", vocabulary(tiny_set.class_names))
        monkeypatch.setenv("AURL_WORD2VEC", str(path))
    elif encoder == "clip":
        folder, dim = tiny_clip_folder
        monkeypatch.setenv("AURL_CLIP_MODEL", str(folder))
        extra = ["--model.semantic_tower.init_args.text_dim", str(dim)]
    fragment = EXPERIMENTS / "text_encoders" / f"{encoder}.yaml"
    args = tiny_fit(
        FRAGMENT_BASE,
        workdir / "run",
        "--trainer.fast_dev_run",
        "true",
        *extra,
        configs=(fragment,),
    )
    cli = run_cli(args)
    wanted = load_yaml(fragment)["model"]["text_encoder"]["class_path"].rsplit(".", 1)[1]
    assert type(cli.model.text_encoder).__name__ == wanted
    assert_valid_test_metrics(logged_test_metrics(cli), ["synthetic_unseen"])


@pytest.mark.slow
def test_fast_dev_run_with_small_eval_batches(tiny_set, workdir: Path) -> None:
    # One batch of 2 videos per test set cannot cover every 50% split nor both GZSL parts.
    args = tiny_fit(SMOKE, workdir / "run", "--trainer.fast_dev_run", "true")
    metrics = logged_test_metrics(run_cli([*args, "--data.eval_batch_size", "2"]))
    for name in ("synthetic_unseen", "synthetic_unseen_gzsl"):
        assert 0.0 <= metrics[f"test/{name}/top1"] <= metrics[f"test/{name}/top5"] <= 1.0
    assert 0.0 <= metrics["test/synthetic_unseen/half_top1_mean"] <= 1.0  # from the splits seen
    # The batch holds seen-class videos only: the unseen part, and so H, are undefined, not 0.
    assert (
        metrics["test/synthetic_unseen_gzsl/gzsl_seen"]
        == metrics["test/synthetic_unseen_gzsl/top1"]
    )
    assert math.isnan(metrics["test/synthetic_unseen_gzsl/gzsl_unseen"])
    assert math.isnan(metrics["test/synthetic_unseen_gzsl/gzsl_h"])


@pytest.mark.slow
def test_test_prints_one_result_table(
    tiny_set, workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    tiny = write_tiny_overrides(SMOKE, workdir / "tiny.yaml")
    run_cli(
        [
            "test",
            "--config",
            str(SMOKE),
            "--config",
            str(tiny),
            "--trainer.default_root_dir",
            str(workdir / "run"),
        ]
    )
    out = capfd.readouterr().out
    # RunSummary's table; Lightning's per-test-set tables would repeat every set's values.
    assert out.count("aurl run summary") == 1
    assert "synthetic_unseen_gzsl" in out
    assert "Test metric" not in out


def test_help_lists_the_backbones() -> None:
    code, out, _ = cli_exit(["fit", "--help"])
    assert code in (0, None)
    epilog = out[out.index("backbones (model.visual_tower.init_args.backbone)") :]
    listed = " ".join(epilog.split())  # argparse wraps the line
    for name in list_backbones():
        assert f" {name}" in listed, name
    assert "mvit_v2_s" in listed and "r2plus1d_narrow" in listed


@pytest.mark.slow
def test_print_config_stdout_is_pure_yaml(tmp_path: Path) -> None:
    done = aurl_subprocess(
        ["fit", "--config", str(SMOKE), "--print_config"],
        subprocess_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert yaml.safe_load(done.stdout) == printed_config(["fit", "--config", str(SMOKE)])


# --- 6. config errors -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "yaml_text", "named"),
    [
        (["--model.lrr", "0.1"], None, "model.lrr"),
        (["--data.batch_size", "abc"], None, "data.batch_size"),
        ([], "model:\n  lrr: 0.1\n", "model.lrr"),
        ([], "trainer:\n  max_epochs: many\n", "trainer.max_epochs"),
        ([], "data:\n  source:\n    init_args:\n      videos_per_clas: 3\n", "videos_per_clas"),
    ],
)
def test_bad_config_fails_naming_the_key(
    args: list[str], yaml_text: str | None, named: str, tmp_path: Path
) -> None:
    extra = list(args)
    if yaml_text is not None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml_text)
        extra = ["--config", str(bad)]
    code, _, err = cli_exit(["fit", "--config", str(SMOKE), *extra])
    assert code not in (0, None)
    message = err[err.rindex("error:") :]
    assert named in message, message


# --- 2. W&B and the run folder -------------------------------------------------------------
WANDB_OPTIONS = (
    *("--wandb.group", "tiny", "--wandb.tags", "[seed0, smoke]", "--wandb.job_type", "check"),
    *("--wandb.notes", "a short run", "--wandb.log_model", "true"),
)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory, tiny_set) -> dict[str, Any]:
    """A real 2-epoch fit of smoke.yaml on the tiny data, with W&B offline, then its test."""
    base = tmp_path_factory.mktemp("short_run")
    root = base / "run"
    args = tiny_fit(
        SMOKE,
        root,
        "--trainer.max_epochs",
        "2",
        "--trainer.log_every_n_steps",
        "1",
        *WANDB_OPTIONS,
    )
    cli = run_cli(args)
    (wandb_logger,) = [lg for lg in cli.trainer.loggers if type(lg).__name__ == "WandbLogger"]
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    kept = base / "trained.ckpt"
    shutil.copyfile(best, kept)
    return {
        "args": args,
        "root": root,
        "checkpoint": kept,
        "best_checkpoint": str(best),
        "global_step": cli.trainer.global_step,
        "wandb_id": wandb_logger.version,
        "wandb_init": dict(wandb_logger._wandb_init),
    }


@pytest.mark.slow
def test_wandb_offline_run_holds_the_metrics(short_run: dict[str, Any]) -> None:
    root = short_run["root"]
    run_id = (root / "wandb_run_id").read_text().strip()
    assert run_id == short_run["wandb_id"]
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    assert run_dir.name.endswith(f"-{run_id}")
    (log_file,) = run_dir.glob("run-*.wandb")
    history, summary = wandb_history_and_summary(log_file)
    csv_path = root / "csv" / "version_0" / "metrics.csv"
    # Every training step's loss reached W&B, as it reached the CSV logger.
    wandb_loss = {
        row["trainer/global_step"]: row["train/loss"] for row in history if "train/loss" in row
    }
    csv_loss = per_step(csv_path, "train/loss")
    assert sorted(wandb_loss) == sorted(csv_loss) == list(range(short_run["global_step"]))
    assert wandb_loss == pytest.approx(csv_loss, abs=1e-6)
    logged = last_metrics(csv_path)
    tested = [k for k in logged if k.startswith("test/")]
    assert "test/synthetic_unseen/top1" in tested and "test/synthetic_unseen_gzsl/gzsl_h" in tested
    for key in ["val/top1", *tested]:
        assert summary[key] == pytest.approx(logged[key], abs=1e-6), key
    # The PNGs of EmbeddingPlots went to W&B as well as to the run folder.
    for name in ("synthetic_unseen", "synthetic_unseen_gzsl"):
        for kind in ("embeddings", "per_class_top1", "confusion"):
            assert summary[f"test/{name}/{kind}/_type"] == "images/separated", (name, kind)
    assert list((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert (root / "plots" / "synthetic_unseen_embeddings.png").is_file()
    # The resolved config is saved with the run (LightningCLI's SaveConfigCallback), complete:
    # the house callbacks themselves, not the name of their file; and it parses again.
    saved_path = root / "csv" / "version_0" / "config.yaml"
    saved = yaml.safe_load(saved_path.read_text())
    assert saved["trainer"]["max_epochs"] == 2
    assert saved["trainer"]["default_root_dir"] == str(root)
    house = load_yaml(HOUSE_DEFAULTS["trainer.callbacks"])
    assert [c["class_path"] for c in saved["trainer"]["callbacks"]] == [
        c["class_path"] for c in house
    ]
    reparsed = printed_config(["fit", "--config", str(saved_path)])
    assert reparsed["trainer"]["callbacks"] == saved["trainer"]["callbacks"]


@pytest.mark.slow
def test_wandb_run_holds_its_fields_config_checkpoints_and_embeddings(
    short_run: dict[str, Any],
) -> None:
    root = short_run["root"]
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    (log_file,) = run_dir.glob("run-*.wandb")
    info = wandb_run_info(log_file)
    # The --wandb.* options reached wandb.init.
    assert (info["group"], info["tags"], info["job_type"], info["notes"]) == (
        "tiny",
        ["seed0", "smoke"],
        "check",
        "a short run",
    )
    # The run config holds the whole resolved config (the saved config.yaml), trainer included.
    saved = yaml.safe_load((root / "csv" / "version_0" / "config.yaml").read_text())
    for key in ("trainer", "model", "data", "seed_everything", "wandb"):
        assert info["config"][key] == saved[key], key
    assert info["config"]["trainer"]["max_epochs"] == 2
    # --wandb.log_model: best and last checkpoints, versions of one model artifact.
    artifacts = [a for a in info["artifacts"] if a["type"] == "model"]
    assert {a["name"] for a in artifacts} == {f"model-{short_run['wandb_id']}"}
    assert all(a["files"] == ["model.ckpt"] for a in artifacts)
    # W&B gives `latest` to each version it logs; the last one logged, last.ckpt, keeps it.
    logged = [(a["metadata"]["original_filename"], set(a["aliases"])) for a in artifacts]
    assert logged == [
        (Path(short_run["best_checkpoint"]).name, {"best", "latest"}),
        ("last.ckpt", {"latest"}),
    ]
    # The test embeddings went to W&B as one table: class names and videos of every set.
    _, summary = wandb_history_and_summary(log_file)
    assert summary["test/embedding_table/_type"] == "table-file"
    table = json.loads((run_dir / "files" / summary["test/embedding_table/path"]).read_text())
    assert table["columns"] == ["set", "kind", "index", "class", "embedding"]
    sets = {(row[0], row[1]) for row in table["data"]}
    assert sets == {
        (name, kind)
        for name in ("synthetic_unseen", "synthetic_unseen_gzsl")
        for kind in ("video", "class name")
    }
    assert len({len(row[4]) for row in table["data"]}) == 1


@pytest.mark.slow
def test_resume_continues_the_same_wandb_run(
    short_run: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "run"
    shutil.copytree(short_run["root"], root)
    args = [*short_run["args"], "--trainer.default_root_dir", str(root)]
    resumed_from = torch.load(root / "checkpoints" / "last.ckpt", weights_only=False)
    cli = run_cli(
        [*args, "--trainer.max_epochs", "3", "--ckpt_path", "last", "--test_after_fit", "false"]
    )
    steps = per_step(root / "csv" / "version_1" / "metrics.csv", "train/loss")
    assert min(steps) == resumed_from["global_step"] == short_run["global_step"]
    (wandb_logger,) = [lg for lg in cli.trainer.loggers if type(lg).__name__ == "WandbLogger"]
    assert wandb_logger.version == short_run["wandb_id"]
    assert (root / "wandb_run_id").read_text().strip() == short_run["wandb_id"]
    runs = sorted((root / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(short_run["wandb_id"]) for r in runs)
    assert cli.trainer.global_step == 3 * STEPS_PER_EPOCH
    # A fresh job in the same folder (no --ckpt_path) starts a new W&B run.
    fresh = run_cli([*args, "--trainer.max_epochs", "1", "--test_after_fit", "false"])
    (fresh_logger,) = [lg for lg in fresh.trainer.loggers if type(lg).__name__ == "WandbLogger"]
    assert fresh_logger.version != short_run["wandb_id"]


@pytest.mark.slow
def test_last_checkpoint_holds_the_final_state(short_run: dict[str, Any]) -> None:
    # The tiny set has one validation class: val/top1 is 1.0 every epoch and never improves,
    # which is when ModelCheckpoint(monitor=..., save_last=True) would leave last.ckpt behind.
    last = torch.load(short_run["root"] / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == short_run["global_step"] == 2 * STEPS_PER_EPOCH


@pytest.mark.slow
def test_wandb_logger_resumes_the_run_online(short_run: dict[str, Any]) -> None:
    # Lightning's WandbLogger passes resume="allow" so that a reused id continues the run
    # online too; the CLI must not replace it with an explicit None.
    assert short_run["wandb_init"].get("resume") == "allow", short_run["wandb_init"]


# --- 3. resume -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory: pytest.TempPathFactory, tiny_set) -> dict[str, Any]:
    """Deterministic runs of smoke.yaml (dropout on) on the tiny data:

    - ``full``: 2 epochs in one go, keeping a checkpoint after every epoch;
    - ``first`` + ``extended``: 1 epoch, then resumed from its last.ckpt with max_epochs 2;
    - ``boundary``: resumed from ``full``'s checkpoint after its first epoch, same max_epochs.
    """
    base = tmp_path_factory.mktemp("resume")
    common = [
        "--trainer.deterministic",
        "true",
        "--test_after_fit",
        "false",
        "--trainer.log_every_n_steps",
        "1",
    ]
    runs: dict[str, Any] = {}

    def fit(name: str, *extra: str) -> None:
        cli = run_cli(tiny_fit(SMOKE, base / name, *common, *extra))
        csv_path = base / name / "csv" / "version_0" / "metrics.csv"
        runs[name] = {
            "step": cli.trainer.global_step,
            "state": {
                k: v.detach().clone()
                for k, v in cli.model.state_dict().items()
                if torch.is_tensor(v)
            },
            # The first parameter group (the second holds the centres).
            "lr": per_step(csv_path, "lr-AdamW/pg1"),
            "loss": per_step(csv_path, "train/loss"),
        }

    every = base / "every_epoch"
    fit(
        "full",
        "--trainer.max_epochs",
        "2",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.dirpath",
        str(every),
        "--trainer.callbacks.filename",
        "{epoch}",
        "--trainer.callbacks.save_top_k",
        "-1",
        # Only for a state key distinct from the experiment's monitor-less last.ckpt callback.
        "--trainer.callbacks.mode",
        "max",
    )
    fit("first", "--trainer.max_epochs", "1")
    last = base / "first" / "checkpoints" / "last.ckpt"
    fit("extended", "--trainer.max_epochs", "2", "--ckpt_path", str(last))
    fit("boundary", "--trainer.max_epochs", "2", "--ckpt_path", str(every / "epoch=0.ckpt"))
    return runs


@pytest.mark.slow
def test_resume_with_more_epochs_continues_step_and_schedule(resume_runs: dict[str, Any]) -> None:
    first, extended, full = (resume_runs[k] for k in ("first", "extended", "full"))
    assert first["step"] == STEPS_PER_EPOCH
    assert extended["step"] == full["step"] == 2 * STEPS_PER_EPOCH
    lr_extended, lr_full = extended["lr"], full["lr"]
    assert sorted(lr_extended) == list(range(STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH))
    # After its first step the resumed schedule is the uninterrupted 2-epoch schedule.
    for step in range(STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH):
        assert lr_extended[step] == pytest.approx(lr_full[step], rel=1e-12), step


@pytest.mark.slow
def test_first_resumed_step_uses_the_replanned_learning_rate(resume_runs: dict[str, Any]) -> None:
    step = STEPS_PER_EPOCH
    assert resume_runs["extended"]["lr"][step] == pytest.approx(resume_runs["full"]["lr"][step])


@pytest.mark.slow
def test_resume_at_an_epoch_boundary_matches_an_uninterrupted_run(
    resume_runs: dict[str, Any],
) -> None:
    boundary, full = resume_runs["boundary"], resume_runs["full"]
    assert boundary["step"] == full["step"]
    assert sorted(boundary["loss"]) == list(range(STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH))
    assert boundary["lr"] == {s: full["lr"][s] for s in boundary["lr"]}
    assert boundary["loss"] == {s: full["loss"][s] for s in boundary["loss"]}
    assert boundary["state"].keys() == full["state"].keys()
    for key, value in full["state"].items():
        if torch.is_tensor(value):
            assert torch.equal(boundary["state"][key], value), key


# --- 4. aurl predict and aurl check-data ---------------------------------------------------
def reference_scores(module: AURLModule, path: str, class_names: list[str]) -> torch.Tensor:
    """Cosine similarities of one video to each class name, computed here: ``(C,)``.

    The checkpoint was trained with 4-frame clips, frame stride 2 and 32x32 frames (the video
    size, so no resize): ``aurl predict`` must read frames 0, 2, 4, 6 and only normalise them.
    """
    frames = read_clip(path, [0, 2, 4, 6]).float() / 255  # (T, H, W, 3)
    mean, std = torch.tensor(KINETICS_MEAN), torch.tensor(KINETICS_STD)
    video = ((frames - mean) / std).permute(3, 0, 1, 2)  # (C, T, H, W)
    with torch.no_grad():
        video_emb = module.visual_tower(video[None])  # (1, D)
        class_emb = module.semantic_tower(module.text_encoder.encode(class_names))  # (C, D)
    return F.cosine_similarity(video_emb, class_emb)  # (C,)


@pytest.mark.slow
def test_predict_ranks_classes_by_cosine_similarity(
    short_run: dict[str, Any], tiny_set, capsys: pytest.CaptureFixture
) -> None:
    checkpoint = short_run["checkpoint"]
    hparams = torch.load(checkpoint, weights_only=False)["datamodule_hyper_parameters"]
    assert (hparams["clip_len"], hparams["frame_stride"], hparams["size"]) == (4, 2, 32)
    names = tiny_set.class_names
    videos = [tiny_set.samples[k][0] for k in (0, 10, 23)]
    code = aurl_main(
        [
            "predict",
            *videos,
            "--checkpoint",
            str(checkpoint),
            "--classes",
            ",".join(names),
            "--top_k",
            "3",
            "--format",
            "json",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    module = AURLModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    assert [r["path"] for r in results] == videos
    for result in results:
        cosine = reference_scores(module, result["path"], names)
        top = cosine.argsort(descending=True)[:3].tolist()
        predictions = result["predictions"]
        assert [p["class_name"] for p in predictions] == [names[i] for i in top]
        scores = [p["score"] for p in predictions]
        assert scores == sorted(scores, reverse=True)
        assert scores == pytest.approx(cosine[top].tolist(), abs=6e-5)  # printed to 4 decimals


def test_predict_from_an_export_prints_what_the_checkpoint_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "tiny.ckpt"
    write_cli_checkpoint(checkpoint, tmp_path / "cache")
    videos = [str(path) for path in write_colour_videos(tmp_path / "videos", 3)]
    names = "red square,green circle,blue triangle"
    args = ["--classes", names, "--top_k", "3", "--format", "json", "--num_workers", "0"]
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or TORCH_LOAD(*a, **k))
    assert aurl_main(["predict", *videos, "--checkpoint", str(checkpoint), *args]) == 0
    assert len(loads) == 1  # the checkpoint is read once
    from_checkpoint = json.loads(capsys.readouterr().out)
    export = tmp_path / "tiny.safetensors"
    assert aurl_main(["export", "--checkpoint", str(checkpoint), "--output", str(export)]) == 0
    assert capsys.readouterr().out.strip() == str(export)
    assert aurl_main(["predict", *videos, "--checkpoint", str(export), *args]) == 0
    assert json.loads(capsys.readouterr().out) == from_checkpoint
    assert [r["path"] for r in from_checkpoint] == videos
    for result in from_checkpoint:
        probabilities = [p["probability"] for p in result["predictions"]]
        assert sum(probabilities) == pytest.approx(1.0, abs=2e-4)  # rounded to 4 decimals


def test_predict_reports_an_unreadable_video_and_ranks_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    checkpoint = tmp_path / "tiny.ckpt"
    write_cli_checkpoint(checkpoint, tmp_path / "cache")
    (video,) = write_colour_videos(tmp_path / "videos", 1)
    missing = tmp_path / "missing.mp4"
    args = ["--checkpoint", str(checkpoint), "--classes", "red square,green circle"]
    assert aurl_main(["predict", str(missing), str(video), *args, "--format", "json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert results[0]["path"] == str(missing) and results[0]["error"]
    assert len(results[1]["predictions"]) == 2


def test_read_class_names_reports_duplicates_naming_the_source(tmp_path: Path) -> None:
    classes = tmp_path / "classes.txt"
    classes.write_text("# unseen\nyoga\ncello\n\nyoga\n")
    with pytest.raises(ValueError, match=r"classes\.txt: .*\['yoga'\]"):
        read_class_names(str(classes))
    with pytest.raises(ValueError, match=r"--classes: .*\['yoga'\]"):
        read_class_names("yoga, cello,yoga")
    assert read_class_names("yoga, cello") == ["yoga", "cello"]


# A small benchmark that smoke.yaml trains on in one short epoch: 4 colours x 4 shapes x 4
# motions = 64 classes, 6 of them unseen, 16 videos each.
TRAINED_SYNTHETIC: dict[str, Any] = {
    "colours": ["red", "green", "blue", "yellow"],
    "shapes": ["square", "circle", "triangle", "cross"],
    "motions": ["moving left", "moving right", "moving up", "moving down"],
    "videos_per_class": 16,
    "num_unseen": 6,
}


@pytest.mark.slow
def test_predict_reproduces_the_logged_test_top1_after_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zero-shot prediction with a trained checkpoint reproduces the logged test top-1.

    ``aurl predict`` gets every video of the 6 unseen classes and those 6 names (the
    zero-shot protocol: the candidates are exactly the classes never trained on). The
    fraction of videos whose first-ranked name is the true one must equal the test top-1 that
    the run logged for the same set (how high it is depends on the CPU; that is not tested).
    """
    monkeypatch.chdir(tmp_path)
    catalog = "data_modules.datasets.SyntheticActions"
    overrides = tmp_path / "benchmark.yaml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "source": {
                        "class_path": catalog,
                        "init_args": {"part": "seen", **TRAINED_SYNTHETIC},
                    },
                    "targets": [
                        {
                            "class_path": catalog,
                            "init_args": {"part": "unseen", **TRAINED_SYNTHETIC},
                        }
                    ],
                    "gzsl": False,
                    "num_workers": 1,
                }
            }
        )
    )
    root = tmp_path / "run"
    cli = run_cli(
        [
            "fit",
            "--config",
            str(SMOKE),
            "--config",
            str(overrides),
            "--trainer.max_epochs",
            "1",
            "--trainer.default_root_dir",
            str(root),
        ]
    )
    logged_top1 = float(cli.trainer.callback_metrics["test/synthetic_unseen/top1"])
    checkpoint = cli.trainer.checkpoint_callback.best_model_path

    unseen = SyntheticActions(part="unseen", **TRAINED_SYNTHETIC)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(unseen.class_names) + "\n")
    videos = [path for path, _ in unseen.samples]
    capsys.readouterr()
    args = ["--checkpoint", checkpoint, "--classes", str(classes), "--top_k", "1"]
    assert aurl_main(["predict", *videos, *args, "--format", "json", "--device", "cpu"]) == 0
    results = json.loads(capsys.readouterr().out)
    hits = [
        result["predictions"][0]["class_name"] == unseen.class_names[label]
        for result, (_, label) in zip(results, unseen.samples, strict=True)
    ]
    accuracy = sum(hits) / len(hits)
    assert accuracy == pytest.approx(logged_top1, abs=1.5 / len(videos))


def test_check_data_lists_exactly_the_corrupt_file(
    tiny_set, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "videos"
    for k, (path, _) in enumerate(tiny_set.samples[:4]):
        target = root / f"class_{k % 2}" / f"{k}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    data = Path(tiny_set.samples[0][0]).read_bytes()
    corrupt = root / "class_1" / "truncated.mp4"
    corrupt.write_bytes(data[: len(data) // 2])
    config = tmp_path / "catalog.yaml"
    config.write_text(
        yaml.safe_dump(
            {"class_path": "data_modules.datasets.VideoFolder", "init_args": {"root": str(root)}}
        )
    )
    assert aurl_main(["check-data", str(config), "--workers", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(corrupt)]
    assert lines[0].split("\t")[1].strip()  # a reason is given
    corrupt.unlink()
    assert aurl_main(["check-data", str(config), "--workers", "1"]) == 0
    assert capsys.readouterr().out == ""


# --- 5. DDP --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_test_metrics_equal_a_single_process_evaluation(tiny_set, tmp_path: Path) -> None:
    root = tmp_path / "ddp"
    args = tiny_fit(
        SMOKE,
        root,
        "--trainer.max_epochs",
        "1",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        # Uneven shards and partial batches: 9 and 13 test videos, 4 per batch per rank.
        "--data.eval_batch_size",
        "4",
    )
    env = subprocess_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    done = aurl_subprocess(args, env, cwd=tmp_path, timeout=420)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Starting with 2 processes" in output, output[-4000:]
    # Epoch values come from synced metrics or gathered embeddings: nothing to add sync_dist to.
    assert "sync_dist" not in output
    ddp = last_metrics(root / "csv" / "version_0" / "metrics.csv", "test/")
    # W&B runs on rank 0 only: one run for the job.
    assert len(list((root / "wandb").glob("offline-run-*"))) == 1
    (best,) = (root / "checkpoints").glob("best-*.ckpt")

    tiny = root.parent / f"{root.name}_tiny.yaml"
    single_root = tmp_path / "single"
    cli = run_cli(
        [
            "test",
            "--config",
            str(SMOKE),
            "--config",
            str(tiny),
            "--trainer.default_root_dir",
            str(single_root),
            "--ckpt_path",
            str(best),
        ]
    )
    single = logged_test_metrics(cli)
    assert sorted(ddp) == sorted(single)
    assert "test/synthetic_unseen_gzsl/gzsl_h" in ddp
    for key, value in single.items():
        assert ddp[key] == pytest.approx(value, abs=1e-5), key


@pytest.mark.parametrize(
    ("seed_everything", "data_seed", "expected"),
    [(3, None, 3), (3, 5, 5), (False, None, None), (True, None, None)],
)
def test_data_seed_follows_seed_everything_unless_given(
    seed_everything: int | bool, data_seed: int | None, expected: int | None
) -> None:
    config = Namespace(seed_everything=seed_everything, data=Namespace(seed=data_seed))
    link_data_seed(config)
    assert config.data.seed == expected
