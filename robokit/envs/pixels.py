"""Pixel observations for any gymnasium MuJoCo env: offscreen-rendered RGB frames, frame-stacked.

:class:`PixelObservation` replaces an env's observation by the frame its ``render()`` returns
(``render_mode="rgb_array"``; headless machines set ``MUJOCO_GL=egl``), as uint8 ``(H, W, 3)``,
or with ``k > 1`` stacked frames ``(k, H, W, 3)``, oldest first: gymnasium's
``FrameStackObservation`` layout, which robokit's image spec reads as k frames; its CNN folds
them into 3k input channels, which is DrQ's channel stacking (DrQ's ``FrameStack`` wrapper
also repeats the first frame k times after a reset, as this wrapper does). With
``proprio=True`` the observation is the dict ``{"image": frames, "proprio": the env's own
observation}``.

Frames depend only on the simulator state, so a seeded reset and the same actions give the
same frames (tested). :func:`make_pixel_env` builds the wrapped env from an id and a
:class:`PixelOptions`; the registered ids ``robokit/<Task>Pixels-v0`` are such envs with fixed
options, so every command that takes ``--env`` can use them.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np


@dataclasses.dataclass(frozen=True)
class PixelOptions:
    """How to render an env as pixels (the ``--pixels`` options of ``robokit collect``/``eval``)."""

    size: int = 84
    """frame height and width in pixels (DrQ uses 84, many pixel SAC setups 64)"""
    frame_stack: int = 3
    """frames stacked, oldest first, on a leading axis (3 as in DrQ)"""
    proprio: bool = False
    """observe the dict {"image", "proprio"} (the env's own observation as proprio)"""
    camera: str | None = None
    """camera name to render from (default: the env's own default camera)"""
    action_repeat: int = 1
    """each action is applied this many times, rewards summed, one frame rendered (DrQ's action_repeat)"""

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"--pixel-size must be >= 8, got {self.size}")
        if self.frame_stack < 1:
            raise ValueError(f"--frame-stack must be >= 1, got {self.frame_stack}")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")


class ActionRepeat(gym.Wrapper):
    """Apply each action ``repeat`` times, summing the rewards; stop early when the episode ends.

    DrQ's ``action_repeat`` (``denisyarats/drq`` ``config.yaml``: 4). Inside
    :class:`PixelObservation`, so only the last sub-step is rendered.
    The wrapped env's time limit counts sub-steps (an episode of T steps is T / repeat actions).
    """

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {repeat}")
        self.repeat = int(repeat)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class PixelObservation(gym.ObservationWrapper):
    """Observe rendered frames (uint8 ``(frame_stack, H, W, 3)``, or ``(H, W, 3)`` for one frame),
    optionally with the proprio state.

    Args:
        env: an env made with ``render_mode="rgb_array"`` whose ``render()`` returns ``(H, W, 3)`` uint8.
        frame_stack: number k of frames stacked on a leading axis, oldest first.
        proprio: observe ``{"image": frames, "proprio": env observation}`` instead of the frames alone.

    Raises:
        ValueError: naming the env when it does not render RGB frames.
    """

    def __init__(self, env: gym.Env, frame_stack: int = 3, proprio: bool = False) -> None:
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"PixelObservation: env {_name(env)} needs render_mode='rgb_array', "
                             f"got {env.render_mode!r}")
        self.frame_stack, self.proprio = int(frame_stack), bool(proprio)
        self._frames: deque[np.ndarray] = deque(maxlen=self.frame_stack)
        height, width = self._probe_size()
        shape = (height, width, 3) if self.frame_stack == 1 else (self.frame_stack, height, width, 3)
        image = gym.spaces.Box(0, 255, shape, np.uint8)
        self.observation_space = gym.spaces.Dict({"image": image, "proprio": env.observation_space}) \
            if self.proprio else image

    def _probe_size(self) -> tuple[int, int]:
        """(H, W) of the env's renderer (read from its settings; rendering needs a reset first)."""
        unwrapped = self.env.unwrapped
        for owner in (unwrapped, getattr(unwrapped, "mujoco_renderer", None)):
            height, width = getattr(owner, "height", None), getattr(owner, "width", None)
            if height and width:
                return int(height), int(width)
        size = getattr(unwrapped, "_size", None)  # robokit's own MuJoCo envs keep (H, W) here
        if size is not None:
            return int(size[0]), int(size[1])
        raise ValueError(f"PixelObservation: cannot tell the frame size of env {_name(self.env)}; "
                         f"make it with width= and height=")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        frame = self._render()
        self._frames.clear()
        for _ in range(self.frame_stack):
            self._frames.append(frame)
        return self._pack(obs), info

    def observation(self, observation: Any) -> Any:
        """Called after each step: push the new frame and return the stacked observation."""
        self._frames.append(self._render())
        return self._pack(observation)

    def _render(self) -> np.ndarray:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"PixelObservation: env {_name(self.env)} rendered "
                             f"{getattr(frame, 'shape', type(frame).__name__)}, expected (H, W, 3) uint8")
        return np.asarray(frame, np.uint8)

    def _pack(self, observation: Any) -> Any:
        image = np.stack(self._frames) if self.frame_stack > 1 else self._frames[-1].copy()
        if self.proprio:
            return {"image": image, "proprio": np.asarray(observation, np.float32)}
        return image


def _name(env: gym.Env) -> str:
    spec = getattr(env, "spec", None)
    return repr(spec.id) if spec is not None else type(env.unwrapped).__name__


def make_pixel_env(env_id: str, options: PixelOptions | None = None, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id)`` rendering offscreen at ``options.size`` and observing pixels.

    MuJoCo renders through EGL when no display is set (``MUJOCO_GL=egl``, set here when unset).
    robokit's ids are registered already (importing this module ran ``robokit.envs``).
    Extra ``kwargs`` go to ``gym.make``. Raises ValueError naming the env when it cannot render.
    """
    options = options or PixelOptions()
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    render = {"width": options.size, "height": options.size}
    if options.camera is not None:
        render["camera_name"] = options.camera
    kwargs.pop("render_mode", None)
    try:
        env = gym.make(env_id, render_mode="rgb_array", **render, **kwargs)
    except TypeError as err:
        raise ValueError(f"--env '{env_id}' cannot render at a chosen size ({err})") from err
    except gym.error.Error as err:
        raise ValueError(f"cannot make env '{env_id}': {err}") from err
    if options.action_repeat > 1:
        env = ActionRepeat(env, options.action_repeat)
    return PixelObservation(env, options.frame_stack, options.proprio)


def registered_pixel_env(env_id: str, size: int = 84, frame_stack: int = 3, proprio: bool = False,
                         render_mode: str | None = None, action_repeat: int = 1, **kwargs: Any) -> gym.Env:
    """Entry point of the ``robokit/<Task>Pixels-v0`` ids (``render_mode`` is always rgb_array)."""
    return make_pixel_env(env_id, PixelOptions(size, frame_stack, proprio, action_repeat=action_repeat), **kwargs)
