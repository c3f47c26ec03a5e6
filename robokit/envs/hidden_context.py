"""Multi-task pixel envs whose task (the *context*) is hidden from the observation.

Each family is a MuJoCo scene seen from above as a 64x64 RGB frame; the context is an index
``k`` into the family's fixed goal set (``num_contexts`` goals on a ring) and sets where the
goal is, but the goal marker is transparent, so nothing in a frame says which context an
episode has: a policy can only infer it from how the expert moves. This is the setting of
inverse-dynamics pretraining (Brandfonbrener et al., NeurIPS 2023): pretrain an encoder on
demonstrations of many contexts, then fit a policy for a held-out one from a few demos.

- ``robokit/PointMassGoal-v0`` (:class:`PointMassGoalEnv`): drive a point mass to the goal.
- ``robokit/PushHidden-v0`` (:class:`PushHiddenEnv`): push a puck into the target zone.

Observation: ``(size, size, 3)`` uint8 (the ``top`` camera). Action: ``(2,)`` float32 forces in
[-1, 1]. Reward 1.0 on the step of success, which terminates the episode; the registered ids
truncate after their episode length. ``info``: ``context`` (int), ``success`` (bool) and
``state`` (privileged float32 vector, goal included, for scripted experts and state-based
baselines; never part of the observation). The context is ``options={"context": k}`` at
reset, else the constructor's ``context``, else drawn from the env's RNG after the initial
state (so the initial state's distribution does not depend on it). ``show_goal=True`` draws
the goal (a debug view, and the positive control of the hidden-context test).
Scenes: ``envs/point_mass_goal/``, ``envs/push_hidden/``; cards: ``docs/pretrain_envs.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.rendering import TopCameraRendering, step_planar_motors

SCENES = Path(__file__).resolve().parents[2] / "envs"

#: (min, max) frame size in pixels
SIZE_RANGE = (16, 256)


def ring_goals(num_contexts: int, radius: float) -> np.ndarray:
    """``(K, 2)`` goal xy [m]: K points evenly spaced on a circle, the first at angle 0."""
    angles = 2 * np.pi * np.arange(num_contexts) / num_contexts
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def pd_force(position: np.ndarray, velocity: np.ndarray, target: np.ndarray, gain: float,
             damping: float) -> np.ndarray:
    """``(2,)`` float32 force in [-1, 1] driving ``position`` towards ``target`` (PD control)."""
    return np.clip(gain * (target - position) - damping * velocity, -1.0, 1.0).astype(np.float32)


class HiddenContextEnv(TopCameraRendering, gym.Env):
    """Base of the families: scene loading, context choice, rendering, step and info.

    Subclasses set ``scene``, ``default_contexts``, ``goal_radius``, ``success_radius``,
    ``state_dim``, ``position_dims`` and implement ``_place_bodies`` (initial state), ``state`` and ``expert_action``.

    Args:
        context: the context every reset uses (an index in ``[0, num_contexts)``), or None to draw one.
        num_contexts: K, the number of goals on the family's ring.
        show_goal: draw the goal marker (debug only: it makes the context visible).
        size: frame height and width in pixels.
        render_mode: None or ``"rgb_array"`` (``render()`` then returns the current frame).

    Raises:
        ValueError: naming the env and the bad argument (context out of range, size, mode).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    scene: str = ""
    default_contexts = 12
    goal_radius = 0.2
    success_radius = 0.03
    frame_skip = 5  # control period 0.05 s (timestep 0.01 s), as the paper's point mass
    state_dim = 0
    #: indices into ``state()`` of the drawn bodies' xy positions: what a frame shows of the privileged
    #: state (the reproduction's embedding probe regresses these)
    position_dims: tuple[int, ...] = ()

    def __init__(self, context: int | None = None, num_contexts: int | None = None, show_goal: bool = False,
                 size: int = 64, render_mode: str | None = None) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported: headless rendering
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
        import mujoco

        name = type(self).__name__
        self.num_contexts = int(self.default_contexts if num_contexts is None else num_contexts)
        if not 2 <= self.num_contexts <= 64:
            raise ValueError(f"{name}: num_contexts must be in [2, 64], got {num_contexts}")
        if not (isinstance(size, int | np.integer) and SIZE_RANGE[0] <= size <= SIZE_RANGE[1]):
            raise ValueError(f"{name}: size must be an integer in [{SIZE_RANGE[0]}, {SIZE_RANGE[1]}], got {size!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"{name}: render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.fixed_context = None if context is None else self.check_context(context)
        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(SCENES / self.scene))
        self.data = mujoco.MjData(self.model)
        goal_geom = self.model.geom("goal").id
        self.model.geom_rgba[goal_geom, 3] = 1.0 if show_goal else 0.0
        self.show_goal = bool(show_goal)
        self.render_mode = render_mode
        self._size = (int(size), int(size))
        self._renderer = None
        self.goals = ring_goals(self.num_contexts, self.goal_radius)
        self.context = 0
        self._frame = np.zeros((size, size, 3), np.uint8)
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    # ------------------------------------------------------------------ contexts
    def check_context(self, context: Any) -> int:
        """``context`` as an int in ``[0, num_contexts)``; ValueError naming the env otherwise."""
        if isinstance(context, int | np.integer) and not isinstance(context, bool) \
                and 0 <= int(context) < self.num_contexts:
            return int(context)
        raise ValueError(f"{type(self).__name__}: unknown context {context!r}; contexts are 0..{self.num_contexts - 1}")

    @property
    def goal(self) -> np.ndarray:
        """The current context's goal xy ``(2,)`` [m]."""
        return self.goals[self.context]

    # --------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._mujoco.mj_resetData(self.model, self.data)
        self._place_bodies()  # initial state first: its distribution must not depend on the context
        chosen = (options or {}).get("context", self.fixed_context)
        self.context = int(self.np_random.integers(self.num_contexts)) if chosen is None \
            else self.check_context(chosen)
        self.data.mocap_pos[0, :2] = self.goal
        self._mujoco.mj_forward(self.model, self.data)
        self._frame = self.render_top()
        return self._frame, self._info(False)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        step_planar_motors(self, action)
        success = self._success()
        self._frame = self.render_top()
        return self._frame, float(success), success, False, self._info(success)

    def render(self) -> np.ndarray | None:
        """The current frame ``(size, size, 3)`` uint8 with ``render_mode="rgb_array"``, else None."""
        return self._frame.copy() if self.render_mode == "rgb_array" else None

    def _info(self, success: bool) -> dict[str, Any]:
        return {"context": self.context, "success": bool(success), "state": self.state()}

    # ------------------------------------------------------------ per family
    def _place_bodies(self) -> None:
        raise NotImplementedError

    def _success(self) -> bool:
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """Privileged state ``(state_dim,)`` float32 (see the family's docstring)."""
        raise NotImplementedError

    def expert_action(self, state: np.ndarray) -> np.ndarray:
        """The scripted expert's action ``(2,)`` float32 in [-1, 1] from a privileged ``state``."""
        raise NotImplementedError


class PointMassGoalEnv(HiddenContextEnv):
    """A point mass (radius 0.025 m, 0.3 kg, slide joints with damping 1) in a 0.6 m arena.

    Context k puts the goal at angle 2 pi k / K on a 0.2 m ring around the centre; success is the
    mass's centre within 0.03 m of the goal. Reset: mass xy ~ U(-0.25, 0.25)^2, at rest.
    State (6,): mass xy, mass velocity xy, goal xy.
    """

    scene = "point_mass_goal/point_mass_goal.xml"
    default_contexts = 12
    goal_radius = 0.2
    success_radius = 0.03
    state_dim = 6
    position_dims = (0, 1)  # the mass's xy
    #: PD gains of the expert (the paper's point-mass demo policy uses 10 and 1)
    gain, damping = 10.0, 1.0

    def _place_bodies(self) -> None:
        self.data.qpos[:2] = self.np_random.uniform(-0.25, 0.25, 2)

    def _position(self) -> np.ndarray:
        return self.data.qpos[:2].copy()

    def _success(self) -> bool:
        return bool(np.linalg.norm(self._position() - self.goal) < self.success_radius)

    def state(self) -> np.ndarray:
        return np.concatenate([self._position(), self.data.qvel[:2], self.goal]).astype(np.float32)

    def expert_action(self, state: np.ndarray) -> np.ndarray:
        return pd_force(state[0:2], state[2:4], state[4:6], self.gain, self.damping)


class PushHiddenEnv(HiddenContextEnv):
    """A round pusher (radius 0.02 m, actuated) pushes a puck (radius 0.04 m) into a target zone.

    Context k puts the zone at angle 2 pi k / K on a 0.15 m ring; success is the puck's centre
    within 0.04 m of the zone's. Reset: puck xy ~ U(-0.05, 0.05)^2, pusher xy ~ U(-0.25, 0.25)^2
    redrawn until it is 0.1 m from the puck; both at rest. State (10,): pusher xy, pusher
    velocity xy, puck xy, puck velocity xy, target xy.
    """

    scene = "push_hidden/push_hidden.xml"
    default_contexts = 8
    goal_radius = 0.15
    success_radius = 0.04
    state_dim = 10
    position_dims = (0, 1, 4, 5)  # the pusher's xy, the puck's xy
    reach = 0.06  # pusher radius + puck radius
    gain, damping = 10.0, 1.0

    def _place_bodies(self) -> None:
        puck = self.np_random.uniform(-0.05, 0.05, 2)
        pusher = self.np_random.uniform(-0.25, 0.25, 2)
        while np.linalg.norm(pusher - puck) < 0.1:
            pusher = self.np_random.uniform(-0.25, 0.25, 2)
        self.data.qpos[:4] = np.concatenate([pusher, puck])

    def _success(self) -> bool:
        return bool(np.linalg.norm(self.data.qpos[2:4] - self.goal) < self.success_radius)

    def state(self) -> np.ndarray:
        qpos, qvel = self.data.qpos, self.data.qvel
        return np.concatenate([qpos[0:2], qvel[0:2], qpos[2:4], qvel[2:4], self.goal]).astype(np.float32)

    def expert_action(self, state: np.ndarray) -> np.ndarray:
        """Go behind the puck (on the far side from the target), around it if needed, then push.

        Let u be the unit vector from puck to target. The pusher pushes (aims at the point where
        it would touch the puck once the puck sits on the target) when it is behind the puck
        (projection on u below -0.8 reach) and within 0.015 m of the puck-target line; otherwise
        it heads for the staging point 1.3 reach behind the puck, via a waypoint beside the puck
        when the puck is in the way.
        """
        pusher, velocity, puck, target = state[0:2], state[2:4], state[4:6], state[8:10]
        offset = target - puck
        u = offset / max(float(np.linalg.norm(offset)), 1e-6)
        rel = pusher - puck
        along = float(rel @ u)
        side = rel - along * u
        if along < -0.8 * self.reach and np.linalg.norm(side) < 0.015:
            aim = target - u * self.reach
        else:
            aim = puck - 1.3 * self.reach * u
            if along > -0.5 * self.reach:  # the puck is between pusher and staging point: go round it
                normal = np.array([-u[1], u[0]])
                sign = 1.0 if float(rel @ normal) >= 0 else -1.0
                aim = puck + sign * 1.5 * self.reach * normal - 0.5 * self.reach * u
        return pd_force(pusher, velocity, aim, self.gain, self.damping)


#: registered id -> family class
FAMILIES: dict[str, type[HiddenContextEnv]] = {"robokit/PointMassGoal-v0": PointMassGoalEnv,
                                               "robokit/PushHidden-v0": PushHiddenEnv}

Expert = Callable[[Any, dict], np.ndarray]


def expert_policy(env: gym.Env, noise: float = 0.0, seed: int | None = None) -> Expert:
    """The scripted expert of a hidden-context env: ``act(obs, info) -> (2,) float32``.

    It reads only ``info["state"]`` (privileged), so it works through wrappers. With
    ``noise > 0`` it adds Gaussian noise of that standard deviation (from its own generator,
    seeded by ``seed``) before clipping to [-1, 1], as the paper's "noisy" demo policy does.

    Raises:
        ValueError: the env is not a hidden-context env, or ``noise`` is negative.
    """
    family = env.unwrapped
    if not isinstance(family, HiddenContextEnv):
        raise ValueError(f"expert_policy: {type(family).__name__} is not a hidden-context env "
                         f"(robokit/PointMassGoal-v0, robokit/PushHidden-v0)")
    if not noise >= 0:
        raise ValueError(f"expert_policy: noise must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)

    def act(obs: Any, info: dict) -> np.ndarray:
        action = family.expert_action(np.asarray(info["state"], np.float64))
        if noise > 0:
            action = np.clip(action + noise * rng.standard_normal(2), -1.0, 1.0)
        return action.astype(np.float32)

    return act


__all__ = ["FAMILIES", "HiddenContextEnv", "PointMassGoalEnv", "PushHiddenEnv", "expert_policy", "ring_goals"]
