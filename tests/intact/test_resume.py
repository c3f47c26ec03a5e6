"""`robokit robustness train --resume`: a run killed (SIGKILL) mid-training continues from its
newest checkpoint and ends with exactly the weights, teacher, curriculum and metrics of a run
that was never interrupted. All three runs are real subprocesses with one torch thread."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from robokit.core.checkpoint import checkpoint_steps, load_checkpoint

EPOCHS = 8
TINY = ["--method", "intact", "--backbone", "pointnet", "--dataset", "procedural",
        "--epochs", str(EPOCHS), "--warmup-epochs", "1", "--width", "0.25", "--num-points", "64",
        "--train-per-class", "4", "--test-per-class", "2", "--dataset-points", "128",
        "--batch-size", "16", "--task-clouds", "8", "--no-progress", "--checkpoint-every", "1",
        "--threshold", "0.0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _train(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "robokit", "robustness", "train", "--out", str(out),
                             *TINY, *extra], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _rows(out: Path) -> list[dict]:
    with open(out / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_killed_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(tmp_path):
    reference = _train(tmp_path / "ref")
    killed = _train(tmp_path / "run")
    deadline = time.monotonic() + 300
    # kill as soon as two epochs are checkpointed (well before the 8th)
    while not (tmp_path / "run" / "checkpoints" / "step_000000002.pt").exists():
        assert killed.poll() is None, killed.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert reference.wait(timeout=300) == 0, reference.communicate()[0]
    assert not (tmp_path / "run" / "final.pt").exists(), "the run finished before the kill"
    done = checkpoint_steps(tmp_path / "run" / "checkpoints")[0][0]
    assert 2 <= done < EPOCHS

    # without --resume the folder is refused; with it the run continues from `done`
    refused = _train(tmp_path / "run")
    assert refused.wait(timeout=300) == 2 and "--resume" in refused.communicate()[0]
    resumed = _train(tmp_path / "run", "--resume")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert f"resumed from {tmp_path / 'run' / 'checkpoints'}" in output, output
    assert f"(step {done})" in output, output

    ref, res = load_checkpoint(tmp_path / "ref" / "final.pt"), load_checkpoint(tmp_path / "run" / "final.pt")
    for key in ("model", "teacher"):
        assert all(torch.equal(ref[key][k], res[key][k]) for k in ref[key]), f"{key} diverged"
    assert ref["curriculum"] == res["curriculum"] and ref["curriculum"]["history"]
    assert res["epoch"] == EPOCHS and res["step"] == ref["step"]
    # metrics.csv: every epoch once, the same numbers as the uninterrupted run
    assert _rows(tmp_path / "run") == _rows(tmp_path / "ref")
    assert [int(row["step"]) for row in _rows(tmp_path / "run")] == list(range(1, EPOCHS + 1))
