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


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests run on 2-core machines: keep torch from oversubscribing."""
    import torch

    torch.set_num_threads(1)
    yield
