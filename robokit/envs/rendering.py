"""Offscreen rendering shared by robokit's MuJoCo envs (a top camera named ``top``)."""

from __future__ import annotations

import numpy as np


class TopCameraRendering:
    """``render``/``close`` for an env holding ``_mujoco``, ``model``, ``data``, ``render_mode``,
    ``_size`` (height, width) and ``_renderer`` (None until the first frame)."""

    def render(self) -> np.ndarray | None:
        """An ``(H, W, 3)`` uint8 frame of the ``top`` camera with ``render_mode="rgb_array"``, else None."""
        if self.render_mode != "rgb_array":
            return None
        return self.render_top()

    def render_top(self) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 frame of the ``top`` camera, whatever the render mode."""
        if self._renderer is None:
            self._renderer = self._mujoco.Renderer(self.model, *self._size)
        self._renderer.update_scene(self.data, camera="top")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def step_planar_motors(env: object, action: object) -> None:
    """Apply a 2-motor action ``(2,)`` (clipped to [-1, 1]) for ``env.frame_skip`` simulator steps.

    ``env`` holds ``_mujoco``, ``model``, ``data`` and ``frame_skip`` (robokit's top-view planar
    scenes). Raises ValueError naming the env's class when the action is not 2 finite numbers.
    """
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (2,) or not np.all(np.isfinite(action)):
        raise ValueError(f"{type(env).__name__}: action must be 2 finite numbers, got {action!r}")
    env.data.ctrl[:] = np.clip(action, -1.0, 1.0)  # type: ignore[attr-defined]
    env._mujoco.mj_step(env.model, env.data, nstep=env.frame_skip)  # type: ignore[attr-defined]
