"""robokit/RobosuiteLiftPlace-v0: robosuite's Lift (Panda) as a reset-free pair: lift the cube, put it down.

The reset-free contract of :mod:`robokit.envs.reset_free` on robosuite 1.5.2's ``Lift`` task
(a Panda arm with its default operational-space controller at 20 Hz). Actions (4,) in [-1, 1]:
the end effector's position change (x, y, z; 1.0 = 5 cm, the controller's ``output_max``) with
the orientation held, and the gripper (-1 open, +1 close). Observation: the ``agentview`` camera
rendered at 64x64 by MuJoCo's own renderer with shadows and reflections off (robosuite's
renderer draws them, 2.6x slower on a CPU), ``proprio`` (5,): end-effector xy z [m] and the two
finger joint positions [m], and the instruction one-hot.

Real resets call robosuite's ``reset()`` (``hard_reset=False``: the model is kept) without
robosuite's own noise, then place the cube from the env's RNG: (x, y) ~ U(-0.03, 0.03) m and a
rotation about z ~ U(0, 2 pi), as Lift's placement sampler does. Success: "lift the cube" is Lift's own rule (cube centre more than
4 cm above the table); "put the cube down" asks for the cube resting on the table (centre < 3.5 cm
above it) within 5 cm of the table's centre and released (end effector > 6 cm from the cube);
the prior "hold the gripper above the cube" asks for the end effector 4-12 cm above the cube and
within 2 cm of it horizontally. robosuite is an optional dependency (``make robosuite``).
"""

from __future__ import annotations

import os

import numpy as np

from robokit.envs.reset_free import DEFAULT_RESET_EVERY, ResetFreeEnv

#: action 1.0 moves the end effector's target by this much (the OSC controller's output_max) [m]
STEP_METRES = 0.05
CUBE_HALF = 0.02
#: cube centre below this height above the table = resting on it (it rests at 0.02-0.022 m;
#: robosuite drops it from 0.03 m at a reset)
RESTING = 0.035


class RobosuiteLiftPlaceEnv(ResetFreeEnv):
    """Lift the cube (forward) and put it back down in the middle (backward), reset-free.

    Args: as :class:`~robokit.envs.reset_free.PlanarPusherEnv` (``reset_every``, ``instructions``,
    ``instruction``, ``image_size``, ``privileged_proprio``, ``render_mode``) plus ``camera``.
    """

    INSTRUCTIONS = ("lift the cube", "put the cube down in the middle of the table",
                    "hold the gripper above the cube")
    ACTION_DIM = 4

    def __init__(self, reset_every: int = DEFAULT_RESET_EVERY, instructions: tuple[str, ...] | None = None,
                 instruction: str | int = 0, image_size: int = 64, privileged_proprio: bool = False,
                 render_mode: str | None = None, camera: str = "agentview") -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before robosuite picks a GL backend (it would try GLFW)
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
        import mujoco

        from robokit.optional import require

        robosuite = require("robosuite", "sim")

        self.privileged_proprio = bool(privileged_proprio)
        self._init_contract(reset_every, instructions, instruction, image_size,
                            5 + (3 if self.privileged_proprio else 0), render_mode)
        self.suite_env = robosuite.make("Lift", robots="Panda", has_renderer=False, has_offscreen_renderer=False,
                                        use_camera_obs=False, use_object_obs=True, control_freq=20,
                                        horizon=10**9, ignore_done=True, hard_reset=False,
                                        initialization_noise=None)
        self._mujoco = mujoco
        self.camera = camera
        self._renderer = None
        self.table_z = float(self.suite_env.model.mujoco_arena.table_offset[2])
        self._obs: dict[str, np.ndarray] = {}

    # -- simulator ------------------------------------------------------------------------------
    def _real_reset(self) -> None:
        self._obs = self.suite_env.reset()
        sim = self.suite_env.sim
        joint = self.suite_env.cube.joints[0]
        qpos = sim.data.get_joint_qpos(joint).copy()
        qpos[:2] = self.np_random.uniform(-0.03, 0.03, 2)
        angle = self.np_random.uniform(0.0, 2 * np.pi)  # about z, as Lift's sampler (rotation=None) does
        qpos[3:7] = [np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)]
        sim.data.set_joint_qpos(joint, qpos)
        sim.forward()
        self._refresh()

    def _refresh(self) -> None:
        self._obs = self.suite_env._get_observations(force_update=True)

    def _advance(self, action: np.ndarray) -> None:
        full = np.zeros(self.suite_env.action_dim)
        full[:3], full[-1] = action[:3], action[3]
        self._obs = self.suite_env.step(full)[0]

    def _image(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = self._mujoco.Renderer(self.suite_env.sim.model._model, *self._size)
        self._renderer.update_scene(self.suite_env.sim.data._data, camera=self.camera)
        flags = self._renderer.scene.flags
        flags[self._mujoco.mjtRndFlag.mjRND_SHADOW] = flags[self._mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        return self._renderer.render().copy()

    def render(self) -> np.ndarray | None:
        """The observed ``(S, S, 3)`` frame with ``render_mode="rgb_array"``, else None."""
        return self._image() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.suite_env.close()

    def eef(self) -> np.ndarray:
        return np.asarray(self._obs["robot0_eef_pos"], np.float64)

    def cube(self) -> np.ndarray:
        return np.asarray(self._obs["cube_pos"], np.float64)

    def _fingers(self) -> np.ndarray:
        return np.asarray(self._obs["robot0_gripper_qpos"], np.float64)

    def _proprio(self) -> np.ndarray:
        parts = [self.eef(), self._fingers()] + ([self.cube()] if self.privileged_proprio else [])
        return np.concatenate(parts).astype(np.float32)

    def state(self) -> np.ndarray:
        """(8,): end-effector position, finger joints, cube position."""
        return np.concatenate([self.eef(), self._fingers(), self.cube()]).astype(np.float32)

    # -- tasks ----------------------------------------------------------------------------------
    def _held(self) -> bool:
        fingers = self._fingers()
        return bool(np.linalg.norm(self.eef() - self.cube()) < 0.02 and fingers[0] - fingers[1] < 0.07)

    def _succeeds(self, instruction: str) -> bool:
        eef, cube = self.eef(), self.cube()
        if instruction == self.INSTRUCTIONS[0]:
            return bool(cube[2] > self.table_z + 0.04)
        if instruction == self.INSTRUCTIONS[1]:
            return bool(cube[2] < self.table_z + RESTING and np.linalg.norm(cube[:2]) < 0.05
                        and np.linalg.norm(eef - cube) > 0.06)
        height = eef[2] - cube[2]
        return bool(0.04 < height < 0.12 and np.linalg.norm(eef[:2] - cube[:2]) < 0.02)

    def expert_action(self, instruction: str | int | None = None) -> np.ndarray:
        """Grasp from above and lift; carry to the middle, lower, release and rise; or hover."""
        name = self._name(instruction)
        eef, cube = self.eef(), self.cube()
        above = np.r_[cube[:2], cube[2] + 0.08]
        if name == self.INSTRUCTIONS[2]:
            return _action(above - eef, -1.0)
        if name == self.INSTRUCTIONS[0]:
            if cube[2] > self.table_z + 0.06:
                return _action(np.zeros(3), 1.0)
            if self._held():
                return _action(np.array([0.0, 0.0, 0.1]), 1.0)
            if np.linalg.norm(eef[:2] - cube[:2]) > 0.02:  # far: hover above it first
                return _action(above - eef, -1.0)
            grip = 1.0 if eef[2] - cube[2] < 0.01 else -1.0  # descend (aiming 1 cm low: the arm lags), then close
            return _action(2.0 * (cube - np.r_[0.0, 0.0, 0.01] - eef), grip)
        if self._held():
            goal = np.r_[0.0, 0.0, self.table_z + CUBE_HALF + 0.005]
            if np.linalg.norm(cube[:2] - goal[:2]) > 0.01:
                return _action(np.r_[goal[:2], max(cube[2], self.table_z + 0.06)] - cube, 1.0)
            return _action(goal - cube, 1.0 if cube[2] > goal[2] else -1.0)
        if cube[2] < self.table_z + RESTING and np.linalg.norm(cube[:2]) < 0.05:  # down: release and rise
            return _action(np.r_[0.0, 0.0, 0.1 if eef[2] < cube[2] + 0.1 else 0.0], -1.0)
        return _action(above - eef, -1.0)  # elsewhere: go and pick it up


def _action(move: np.ndarray, grip: float) -> np.ndarray:
    """(4,) float32: a proportional end-effector move (gain 10: 10 cm error saturates) and the gripper."""
    return np.r_[np.clip(10.0 * move, -1.0, 1.0), grip].astype(np.float32)
