"""A run killed by SIGKILL between checkpoints resumes to the same final metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from train.wandb_files import find_run_files, read_run

STEPS = 200
ARGS = [
    "train", "--preset", "tiny", "--steps", str(STEPS), "--log-every", "10",
    "--checkpoint-every", "20", "--no-progress", "--wandb-mode", "offline",
]  # fmt: skip


def _command(out: Path, cache: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "train.cli",
        *ARGS,
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
    ]


def _environment() -> dict:
    return dict(os.environ, WANDB_SILENT="true")


def _run(out: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(out, cache),
        check=False,
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=300,
    )


def _kill_after_first_checkpoint(out: Path, cache: Path) -> int:
    """Start a run, SIGKILL it once a checkpoint exists, return the checkpoint step."""
    latest = out / "tiny" / "mlp" / "checkpoints" / "latest.json"
    process = subprocess.Popen(
        _command(out, cache),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_environment(),
    )
    deadline = time.monotonic() + 300
    while (
        not latest.exists() and process.poll() is None and time.monotonic() < deadline
    ):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return json.loads(latest.read_text())["step"]


def test_killed_run_resumes_to_same_metrics(tmp_path):
    cache = tmp_path / "cache"
    reference = _run(tmp_path / "reference", cache)
    assert reference.returncode == 0, reference.stderr

    interrupted = tmp_path / "interrupted"
    checkpoint_step = _kill_after_first_checkpoint(interrupted, cache)
    run_dir = interrupted / "tiny" / "mlp"
    assert checkpoint_step < STEPS
    assert not (run_dir / "final.json").exists()

    resumed = _run(interrupted, cache)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from the checkpoint at step {checkpoint_step}" in resumed.stderr

    expected = json.loads(
        (tmp_path / "reference" / "tiny" / "mlp" / "final.json").read_text()
    )
    final = json.loads((run_dir / "final.json").read_text())
    assert final == expected

    rows = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert [row["step"] for row in rows] == list(range(0, STEPS + 1, 10))

    # The resumed W&B run replays the checkpointed history, so it alone has every step.
    last_run = read_run(find_run_files(run_dir / "wandb")[-1])
    steps = [row["_step"] for row in last_run["history"] if "test/accuracy/twin" in row]
    assert steps == list(range(0, STEPS + 1, 10))
