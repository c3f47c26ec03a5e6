"""``robokit sweep``: Ray Tune trials are normal run folders; a killed driver's sweep resumes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.distributed.conftest import ENV_ID, REPO_ROOT

SWEEP = f"""
algo: sac
seeds: [0, 1, 2]
base:
  env: {ENV_ID}
  online_steps: 250
  eval_every: 0
  eval_episodes: 1
  agent: {{hidden_dims: [8, 8], batch_size: 16, warmup_steps: 100}}
"""


def _sweep(config: Path, *extra: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "robokit", "sweep", str(config), "--workers", "1", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_sweep_resumes_after_its_driver_is_killed(tmp_path):
    pytest.importorskip("ray", reason="needs the 'distributed' extra (ray)")
    out = tmp_path / "sweep"
    config = tmp_path / "sweep.yaml"
    config.write_text(SWEEP + f"out: {out}\n")
    driver = _sweep(config, start_new_session=True)
    deadline = time.time() + 400
    while time.time() < deadline and driver.poll() is None and not list(out.glob("trials/*/summary.json")):
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)  # the driver dies mid-sweep ...
    driver.wait()
    time.sleep(1)
    try:
        os.killpg(driver.pid, signal.SIGKILL)  # ... and with it whatever Ray processes it had started
    except ProcessLookupError:
        pass
    complete = sorted(out.glob("trials/*/summary.json"))
    assert 1 <= len(complete) < 3 and not (out / "summary.csv").exists()
    stamps = {path: (path.stat().st_mtime_ns, (path.parent / "metrics.csv").stat().st_mtime_ns) for path in complete}

    refused = _sweep(config)
    assert refused.wait(timeout=120) == 2 and "--resume" in refused.stderr.read()
    resumed = _sweep(config, "--resume")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-2000:]
    for path, stamp in stamps.items():  # complete trials were not run again
        assert (path.stat().st_mtime_ns, (path.parent / "metrics.csv").stat().st_mtime_ns) == stamp
    with open(out / "summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["seed"] for row in rows] == ["0", "1", "2"]
    assert (out / "summary.png").stat().st_size > 0
    for name in ("config.yaml", "metrics.csv", "final.pt"):
        assert all((out / "trials" / f"seed={s}" / name).is_file() for s in range(3))

    # a trial's numbers are those of `robokit train` run alone with its config
    from robokit.core.config import from_dict
    from robokit.trainers.trainer import config_class_for, train

    trial = json.loads((out / "trials" / "seed=1" / "summary.json").read_text())
    config_yaml = __import__("yaml").safe_load((out / "trials" / "seed=1" / "config.yaml").read_text())
    alone = train("sac", from_dict(config_class_for("sac"), {**config_yaml, "out": str(tmp_path / "alone"),
                                                             "resume": False}))
    assert alone["final_return"] == trial["final_return"]
