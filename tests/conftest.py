"""Shared pytest fixtures and environment for the robokit test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real KITTI samples); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it is always present in CI)")
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    """Tests run on 2-core machines: one torch thread, set before any fixture runs.

    (A per-test autouse fixture comes too late for module-scoped fixtures, which then
    trained with every core and oversubscribed the machine.)
    """
    import torch

    torch.set_num_threads(1)
