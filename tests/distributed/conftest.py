"""A local Ray (2 CPUs, no dashboard) shared by the distributed tests, and a tiny SAC checkpoint.

Starting Ray costs a few seconds, so one runtime serves the whole session; commands given
``--distributed ray`` find it running and reuse it (they shut down only a Ray they started).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ENV_ID = "Pendulum-v1"  # dense reward: every episode has its own return
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_local():
    """``ray`` with a local 2-CPU runtime; skips without the ``distributed`` extra."""
    ray = pytest.importorskip("ray", reason="needs the 'distributed' extra (ray)")
    # workers import this checkout of robokit, whatever the installed one is
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"], "MUJOCO_GL": "egl"}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def sac_checkpoint(tmp_path_factory) -> Path:
    """final.pt of a 60-step SAC run on Pendulum (a policy that is not random)."""
    from robokit.trainers.cli import train_main

    out = tmp_path_factory.mktemp("sac") / "run"
    assert train_main(["--algo", "sac", "--env", ENV_ID, "--online-steps", "60", "--out", str(out),
                       "--logger", "none", "--eval-episodes", "1", "--no-progress", "--agent.hidden-dims", "8",
                       "8", "--agent.batch-size", "8", "--agent.warmup-steps", "20"]) == 0
    return out / "final.pt"
