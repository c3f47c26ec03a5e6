"""robokit: robot learning and LiDAR perception robustness.

``import robokit`` is deliberately light: it pulls in no heavy optional stack
(mujoco, robosuite, spconv, open3d, ROS, ray). Those are imported lazily by the
modules that need them, through :func:`robokit.optional.require`, which names the
extra to install when one is missing.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
