"""Atomic writes survive a kill; checkpoints round-trip and reject damaged files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from robokit.core.atomic import atomic_open, atomic_path, atomic_write_text
from robokit.core.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    atomic_write_text(target, "first")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as handle:
        handle.write("half-written")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"], "temporary file left behind"


def test_atomic_file_gets_umask_permissions_not_mkstemp_0600(tmp_path: Path) -> None:
    plain, atomic = tmp_path / "plain.txt", tmp_path / "atomic.txt"
    plain.write_text("x")
    atomic_write_text(atomic, "x")
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_atomic_open_refuses_read_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="for writing"), atomic_open(tmp_path / "x", "rb"):
        pass


def test_kill_during_save_leaves_previous_file_intact(tmp_path: Path) -> None:
    """A writer SIGKILLed in the middle of a large save never damages the existing file."""
    target = tmp_path / "buffer.npy"
    original = np.arange(1000, dtype=np.int64)
    with atomic_path(target) as tmp:
        np.save(tmp.open("wb"), original)
    started = tmp_path / "started"
    writer = textwrap.dedent(f"""
        import numpy as np, pathlib
        from robokit.core.atomic import atomic_open
        with atomic_open({str(target)!r}, "wb") as handle:
            pathlib.Path({str(started)!r}).touch()
            chunk = np.ones(1 << 20, dtype=np.uint8).tobytes()
            while True:  # never finishes on its own: the test kills it mid-write
                handle.write(chunk)
    """)
    process = subprocess.Popen([sys.executable, "-c", writer])
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert process.poll() is None, "writer exited before it started writing"
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.05)
        time.sleep(0.3)  # let it write some megabytes into the temporary file
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    np.testing.assert_array_equal(np.load(target), original)


def test_checkpoint_round_trip_and_latest(tmp_path: Path) -> None:
    net = torch.nn.Linear(3, 2)
    for step in (10, 200, 30):
        save_checkpoint(tmp_path / f"step_{step}.pt", {"step": step, "net": net.state_dict()})
    newest = latest_checkpoint(tmp_path)
    assert newest is not None and newest.name == "step_200.pt"
    state = load_checkpoint(newest)
    assert state["step"] == 200
    torch.testing.assert_close(state["net"]["weight"], net.weight.detach())


def test_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    good = save_checkpoint(tmp_path / "good.pt", {"x": torch.ones(1000)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": 1}, foreign)
    with pytest.raises(CheckpointError, match="not a robokit checkpoint"):
        load_checkpoint(foreign)
