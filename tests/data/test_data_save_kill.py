"""A process killed (SIGKILL) while saving a buffer leaves the previous file intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from robokit.data import ReplayBuffer

CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from robokit.data import ReplayBuffer

    path = sys.argv[1]
    small = ReplayBuffer(100, (3,), 2, seed=5)
    for t in range(60):
        small.add(np.full(3, t), np.zeros(2), float(t), np.full(3, t + 1), False, t % 20 == 19)
    small.save(path)
    print("first-save-done", flush=True)
    big = ReplayBuffer(250_000, (64,), 8, seed=6)
    big.storage.write({name: np.ones((250_000, *spec.shape), spec.dtype)
                       for name, spec in big.storage.specs.items()})
    while True:  # keep overwriting the same file until killed
        big.save(path)
""")


def _temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(".replay.npz.") and p.name.endswith(".tmp")]


def test_sigkill_during_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "replay.npz"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert child.stdout.readline().strip() == "first-save-done"
        deadline = time.monotonic() + 120
        while not _temp_files(tmp_path):  # the big save has started writing its temporary file
            assert time.monotonic() < deadline, "the child never started its second save"
            assert child.poll() is None, "the child exited early"
            time.sleep(0.005)
        time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    loaded = ReplayBuffer.load(path)  # the first, complete save
    assert len(loaded) == 60 and loaded.obs_shape == (3,)
    np.testing.assert_array_equal(loaded.gather_transitions(np.arange(60))["reward"], np.arange(60))
