"""experiments/slurm.sbatch in its dry mode: the srun command it would run and its resume point.

The script runs with bash, as sbatch would start it, with the variables SLURM sets for a job
and fake checkpoint files in a temporary submit folder; ``AURL_SLURM_DRY_RUN=1`` prints the
command instead of running it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import REPO

SCRIPT = REPO / "experiments" / "slurm.sbatch"
RUN = "runs/k700_ucf101_hmdb51"  # the script's default run folder (the config's default_root_dir)

pytestmark = pytest.mark.slow  # each test starts bash


def dry_run(submit_dir: Path, **env: str) -> list[str]:
    """The command the script prints in ``submit_dir`` for a 2-node x 4-task job: the
    ``SRUN_CPUS_PER_TASK=<n>`` it exports, then srun and its arguments."""
    venv = submit_dir / ".venv" / "bin"
    venv.mkdir(parents=True, exist_ok=True)
    (venv / "activate").write_text("")  # the script sources the repository's venv
    job = {
        "SLURM_SUBMIT_DIR": str(submit_dir),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_NTASKS_PER_NODE": "4",
        "SLURM_CPUS_PER_TASK": "12",
        "AURL_SLURM_DRY_RUN": "1",
    }
    data = ("K700_ROOT", "K700_ANNOTATIONS", "UCF101_ROOT", "UCF101_SPLITS", "HMDB51_ROOT")
    data += ("HMDB51_SPLITS", "WORD2VEC")
    fake_data = {f"AURL_{name}": f"/data/{name.lower()}" for name in data}
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SRUN_", "AURL_"))}
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**keep, **job, **fake_data, **env},
        cwd=submit_dir,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def ckpt_path(command: list[str]) -> str | None:
    if "--ckpt_path" not in command:
        return None
    return command[command.index("--ckpt_path") + 1]


def touch(path: Path, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.utime(path, (mtime, mtime))
    return path


def test_command_gives_srun_the_cores_and_lightning_the_layout(tmp_path: Path) -> None:
    environment, *command = dry_run(tmp_path)
    # srun (Slurm >= 22.05) reads SRUN_CPUS_PER_TASK, not the job's --cpus-per-task.
    assert environment == "SRUN_CPUS_PER_TASK=12"
    assert command[0] == "srun"
    assert "--cpus-per-task=12" in command
    fit = command[command.index("aurl") :]
    assert fit[:4] == ["aurl", "fit", "--config", "experiments/k700_ucf101_hmdb51.yaml"]
    options = dict(zip(fit[2::2], fit[3::2], strict=True))
    assert options["--trainer.num_nodes"] == "2"
    assert options["--trainer.devices"] == "4"
    assert options["--trainer.default_root_dir"] == RUN


def test_log_and_requeue_directives() -> None:
    lines = SCRIPT.read_text().splitlines()
    # SLURM opens the log before the script runs: in the submit folder, which exists.
    (output,) = [line for line in lines if line.startswith("#SBATCH --output=")]
    assert "/" not in output.removeprefix("#SBATCH --output=")
    assert "#SBATCH --requeue" in lines
    assert "#SBATCH --signal=SIGUSR1@120" in lines


def test_fresh_run_has_no_checkpoint(tmp_path: Path) -> None:
    assert ckpt_path(dry_run(tmp_path)) is None


def test_only_last_checkpoint_resumes_from_it(tmp_path: Path) -> None:
    touch(tmp_path / RUN / "checkpoints" / "last.ckpt", 1_000)
    assert ckpt_path(dry_run(tmp_path)) == f"{RUN}/checkpoints/last.ckpt"


def test_hpc_checkpoint_wins_over_an_older_last_checkpoint(tmp_path: Path) -> None:
    touch(tmp_path / RUN / "checkpoints" / "last.ckpt", 1_000)
    # Lightning numbers them 1, 2, ...: the highest number, not the last in text order.
    touch(tmp_path / RUN / "hpc_ckpt_9.ckpt", 2_000)
    touch(tmp_path / RUN / "hpc_ckpt_10.ckpt", 3_000)
    assert ckpt_path(dry_run(tmp_path)) == f"{RUN}/hpc_ckpt_10.ckpt"


def test_hpc_checkpoint_alone_resumes_from_it(tmp_path: Path) -> None:
    touch(tmp_path / RUN / "hpc_ckpt_1.ckpt", 2_000)
    assert ckpt_path(dry_run(tmp_path)) == f"{RUN}/hpc_ckpt_1.ckpt"


def test_newer_last_checkpoint_wins_over_a_stale_hpc_checkpoint(tmp_path: Path) -> None:
    # Resumed from hpc_ckpt_1, trained on past an epoch end, then lost without SIGUSR1.
    touch(tmp_path / RUN / "hpc_ckpt_1.ckpt", 1_000)
    touch(tmp_path / RUN / "checkpoints" / "last.ckpt", 2_000)
    assert ckpt_path(dry_run(tmp_path)) == f"{RUN}/checkpoints/last.ckpt"


def test_newest_of_the_last_checkpoints_wins(tmp_path: Path) -> None:
    # last-in-epoch.ckpt is written every 30 minutes of training, last.ckpt at epoch ends.
    checkpoints = tmp_path / RUN / "checkpoints"
    touch(tmp_path / RUN / "hpc_ckpt_1.ckpt", 1_000)
    touch(checkpoints / "last.ckpt", 2_000)
    touch(checkpoints / "last-in-epoch.ckpt", 3_000)
    assert ckpt_path(dry_run(tmp_path)) == f"{RUN}/checkpoints/last-in-epoch.ckpt"
    touch(checkpoints / "last.ckpt", 4_000)
    assert ckpt_path(dry_run(tmp_path)) == f"{RUN}/checkpoints/last.ckpt"


def test_run_folder_and_config_can_be_overridden(tmp_path: Path) -> None:
    touch(tmp_path / "runs" / "other" / "hpc_ckpt_3.ckpt", 1_000)
    command = dry_run(tmp_path, AURL_RUN_DIR="runs/other", AURL_CONFIG="experiments/x.yaml")
    assert command[command.index("--config") + 1] == "experiments/x.yaml"
    assert command[command.index("--trainer.default_root_dir") + 1] == "runs/other"
    assert ckpt_path(command) == "runs/other/hpc_ckpt_3.ckpt"
