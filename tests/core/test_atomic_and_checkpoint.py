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


def test_a_killed_save_leaves_a_temporary_that_the_next_save_and_load_remove(tmp_path: Path) -> None:
    """SIGKILL a process inside ``atomic_path``: its temporary stays behind until the next
    save (or load) of the same destination removes it; a live writer's temporary is kept."""
    target = tmp_path / "step_000000010.pt"
    save_checkpoint(target, {"x": torch.zeros(1)})
    writer = textwrap.dedent(f"""
        import os, signal
        from robokit.core.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half a checkpoint")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    process = subprocess.run([sys.executable, "-c", writer], timeout=120)
    assert process.returncode == -signal.SIGKILL
    leftovers = list(tmp_path.glob(".step_000000010.pt.*.tmp"))
    assert len(leftovers) == 1, "the simulated killed save left no temporary file"
    live = tmp_path / f".step_000000010.pt.{os.getpid()}.abcd1234.tmp"  # a writer of this (live) process
    live.write_bytes(b"in progress")
    load_checkpoint(target)
    assert not leftovers[0].exists() and live.exists()
    leftovers[0].write_bytes(b"again")
    save_checkpoint(target, {"x": torch.ones(1)})
    assert not leftovers[0].exists() and live.exists()


def test_csv_logger_rewrite_is_atomic(tmp_path: Path, monkeypatch) -> None:
    """A new column rewrites metrics.csv; a crash in that rewrite keeps the previous file whole
    (it used to truncate the file in place first)."""
    import csv

    from robokit.core.logging import CSVLogger

    logger = CSVLogger(tmp_path)
    logger.log({"a": 1.0}, step=1)
    logger.log({"a": 2.0}, step=2)
    before = (tmp_path / "metrics.csv").read_text()

    def crash(self, rows):
        raise OSError("killed mid-rewrite")

    monkeypatch.setattr(csv.DictWriter, "writerows", crash)
    with pytest.raises(OSError):
        logger.log({"a": 3.0, "b": 1.0}, step=3)  # new column -> full rewrite
    assert (tmp_path / "metrics.csv").read_text() == before


def test_a_killed_dataset_write_leaves_a_folder_that_the_next_write_removes(tmp_path: Path) -> None:
    """The same for the folder writer of Minari datasets (``atomic_directory``)."""
    from robokit.data.formats.common import atomic_directory

    target = tmp_path / "dataset-v0"
    writer = textwrap.dedent(f"""
        import os, pathlib, signal
        from robokit.data.formats.common import atomic_directory
        with atomic_directory(pathlib.Path({str(target)!r})) as tmp:
            (tmp / "main_data.hdf5").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert subprocess.run([sys.executable, "-c", writer], timeout=120).returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".dataset-v0.*.tmp"))) == 1
    with atomic_directory(target) as tmp:
        (tmp / "main_data.hdf5").write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["dataset-v0"]
