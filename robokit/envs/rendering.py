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
