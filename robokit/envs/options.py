"""Command-line options shared by the commands that build envs (``robokit collect``, ``robokit eval``).

:class:`EnvOptions` is a keyword-only frozen dataclass mixed into those commands' configs, so
``--num-envs``, ``--vector``, ``--pixels``, ``--pixel-size``, ``--frame-stack`` and ``--proprio``
mean the same everywhere.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnvOptions:
    """How to build the envs: how many in parallel, and whether they observe pixels."""

    num_envs: int = 1
    """envs stepped in parallel (gymnasium vector env); results are the same for any number"""
    vector: Literal["sync", "async"] = "sync"
    """'sync': all envs in this process; 'async': one worker process per env"""
    pixels: bool = False
    """observe offscreen-rendered RGB frames (MUJOCO_GL=egl headless) instead of the state"""
    pixel_size: int = 84
    """frame height and width with --pixels"""
    frame_stack: int = 3
    """frames stacked (oldest first, on a leading axis) with --pixels"""
    proprio: bool = False
    """with --pixels: observe the dict {"image", "proprio"} (the state as proprio)"""

    def __post_init__(self) -> None:
        from robokit.core.config import check_ranges

        check_ranges(self, positive=("num_envs", "pixel_size", "frame_stack"))

    def pixel_options(self) -> Any:
        """A :class:`robokit.envs.pixels.PixelOptions`, or None without ``--pixels``."""
        from robokit.envs.pixels import PixelOptions

        options = PixelOptions(self.pixel_size, self.frame_stack, self.proprio)
        return options if self.pixels else None
