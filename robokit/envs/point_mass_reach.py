"""``robokit/PointMassReach-v0``: drive a damped point mass onto a goal disc; dense reward.

The task of the pixel-SAC learning proof (docs/multimodal_envs.md), chosen so that SAC from
pixels can learn it in a short CPU run: the reward is dense (minus the mass-goal distance every
step), nothing terminates an episode (exploration is not punished by early ends, as it is in
InvertedPendulum), and the top camera sees everything that matters (the mass and the goal disc,
3 and 4 px in radius at 48x48). The joints are heavily damped (time constant 0.1 s, two control
steps), so an action is close to a velocity command and the best action depends on the two
positions alone.

Observation: the state ``(6,)`` float32 (mass xy [m], mass velocity xy [m/s], goal xy [m]), for
state-based SAC; ``robokit/PointMassReachPixels-v0`` observes the rendered frames instead
(:mod:`robokit.envs.pixels`, 48x48, 3 stacked frames). Action ``(2,)`` float32 in [-1, 1]: x/y
forces (gear 1 N). Reset: mass xy ~ U(-0.25, 0.25)^2 at rest, goal xy ~ U(-goal_range,
goal_range)^2 (default 0.2 m). ``info``: ``distance`` [m], ``success`` (the mass's centre on the
goal disc, within 0.05 m). Scene and card: ``envs/point_mass_reach/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.rendering import TopCameraRendering, step_planar_motors

SCENE = Path(__file__).resolve().parents[2] / "envs" / "point_mass_reach" / "point_mass_reach.xml"
#: (min, max) frame side in pixels
SIZE_RANGE = (16, 256)


class PointMassReachEnv(TopCameraRendering, gym.Env):
    """A point mass (radius 0.04 m, 0.3 kg, slide joints with damping 3) reaching a goal disc.

    Args:
        goal_range: the goal's xy is drawn from U(-goal_range, goal_range)^2 at each reset
            (0 puts it at the centre).
        width, height: frame size of ``render()`` (the pixel wrapper passes them).
        render_mode: None or ``"rgb_array"``.

    Raises:
        ValueError: naming the env and the bad argument.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    frame_skip = 5  # control period 0.05 s (timestep 0.01 s)
    start_range = 0.25
    success_radius = 0.05  # the goal disc's radius

    def __init__(self, goal_range: float = 0.2, width: int = 48, height: int = 48,
                 render_mode: str | None = None) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported: headless rendering
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
        import mujoco

        name = type(self).__name__
        if not 0.0 <= goal_range <= self.start_range:
            raise ValueError(f"{name}: goal_range must be in [0, {self.start_range}] m, got {goal_range!r}")
        for key, side in (("width", width), ("height", height)):
            if not (isinstance(side, int | np.integer) and SIZE_RANGE[0] <= side <= SIZE_RANGE[1]):
                raise ValueError(f"{name}: {key} must be an integer in [{SIZE_RANGE[0]}, {SIZE_RANGE[1]}], "
                                 f"got {side!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"{name}: render_mode must be None or 'rgb_array', got {render_mode!r}")
        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(SCENE))
        self.data = mujoco.MjData(self.model)
        self.goal_range = float(goal_range)
        self.render_mode = render_mode
        self._size = (int(height), int(width))
        self._renderer = None
        self.goal = np.zeros(2)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:2] = self.np_random.uniform(-self.start_range, self.start_range, 2)
        self.goal = self.np_random.uniform(-self.goal_range, self.goal_range, 2)
        self.data.mocap_pos[0, :2] = self.goal
        self._mujoco.mj_forward(self.model, self.data)
        return self.state(), self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        step_planar_motors(self, action)
        info = self._info()
        return self.state(), -info["distance"], False, False, info

    def state(self) -> np.ndarray:
        """``(6,)`` float32: mass xy, mass velocity xy, goal xy."""
        return np.concatenate([self.data.qpos[:2], self.data.qvel[:2], self.goal]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        distance = float(np.linalg.norm(self.data.qpos[:2] - self.goal))
        return {"distance": distance, "success": distance < self.success_radius}


__all__ = ["PointMassReachEnv"]
