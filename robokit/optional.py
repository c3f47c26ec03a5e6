"""Lazy imports of optional stacks with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

#: module name -> the pip extra that provides it
EXTRA_FOR_MODULE: dict[str, str] = {
    "mujoco": "sim",
    "robosuite": "sim (then `make robosuite`)",
    "spconv": "lidar (or cuda on a GPU machine)",
    "cumm": "lidar",
    "open3d": "lidar",
    "rosbags": "ros",
    "roslibpy": "ros",
    "rospy": "ros (and Debian's python3-rospy, see README)",
    "rclpy": "ros (and a ROS 2 install)",
    "ray": "distributed",
    "wandb": "logging",
    "torchrl": "bench",
    "stable_baselines3": "bench",
    "motmetrics": "dev",
}


class MissingOptionalDependency(ImportError):
    """Raised when an optional stack is needed but not installed."""


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise an error that names the extra to install.

    Args:
        module: dotted module name, e.g. ``"spconv.pytorch"``.
        extra: the pip extra that provides it; looked up from the top-level
            package name when not given.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        extra = extra or EXTRA_FOR_MODULE.get(top, "dev")
        raise MissingOptionalDependency(
            f"robokit needs '{top}' for this feature but it is not importable ({err}). "
            f"Install it with: pip install -c constraints.txt -e '.[{extra.split()[0]}]'"
            f" (extra: {extra})."
        ) from err
