"""robokit/ArmReach-v0: a planar two-link MuJoCo arm that must touch a goal disc.

Sparse reward (default): 1.0 on the step the fingertip enters the goal disc (the episode
then terminates), 0.0 otherwise; ``info["success"]`` says whether it happened. With
``reward="dense"`` (``robokit/ArmReachDense-v0``) each step pays minus the fingertip-goal
distance in metres (the distance term of gymnasium's Reacher reward); success still terminates.
Episodes are truncated after ``max_episode_steps`` (gymnasium's TimeLimit).
With ``control="velocity"`` an action sets the joints' target velocities (``max_speed`` rad/s
at 1) instead of their torques, so the arm stops where the policy stops asking it to move (see
:func:`velocity_actuators`). With ``control="tip"`` (the ``-v1`` ids) an action is the
fingertip's target velocity in the plane (``max_tip_speed`` m/s at 1), turned into joint speeds
by damped least squares on the fingertip Jacobian, the end-effector control of robosuite's OSC
controllers and Meta-World's mocap deltas.
Scene: ``envs/arm_reach/arm_reach.xml``; card: ``envs/arm_reach/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robokit.envs.rendering import TopCameraRendering

MJCF_PATH = Path(__file__).resolve().parents[2] / "envs" / "arm_reach" / "arm_reach.xml"
#: velocity gain (N m s/rad) of the velocity actuators: with the arm's inertia (armature 0.002
#: kg m^2 per joint plus the links) a joint reaches its target speed within about one env step
#: (0.02 s); below RK4's stability limit at the 0.01 s timestep
VELOCITY_GAIN = 0.3


def velocity_actuators(model, max_speed: float, gain: float = VELOCITY_GAIN) -> None:
    """Turn the model's motors into velocity servos, in place: torque = gain * (max_speed * ctrl - qdot).

    MuJoCo's affine actuator ``force = gain * ctrl + bias1 * q + bias2 * qdot`` (its ``velocity``
    shortcut with the target scaled), gear 1, so ctrl in [-1, 1] asks for +-``max_speed`` rad/s.
    """
    model.actuator_gear[:, 0] = 1.0
    model.actuator_gaintype[:] = 0  # mjGAIN_FIXED
    model.actuator_biastype[:] = 1  # mjBIAS_AFFINE
    model.actuator_gainprm[:, :3] = [gain * max_speed, 0.0, 0.0]
    model.actuator_biasprm[:, :3] = [0.0, 0.0, -gain]


def tip_to_joint_speeds(jacobian: np.ndarray, tip_velocity: np.ndarray, damping: float = 0.02) -> np.ndarray:
    """Joint speeds (2,) that move the fingertip at ``tip_velocity`` (2,) m/s: damped least squares
    ``J^T (J J^T + damping^2 I)^-1 v`` on the (2, 2) fingertip Jacobian (bounded at the straight and
    folded singular poses; Wampler 1986, Nakamura and Hanafusa 1986)."""
    return jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + damping**2 * np.eye(2), tip_velocity)


class ArmReachEnv(TopCameraRendering, gym.Env):
    """Observation (12,): cos q (2), sin q (2), joint velocities (2) [rad/s], fingertip xy (2) [m],
    goal xy (2) [m], goal - fingertip (2) [m]. Action (2,) in [-1, 1]: joint torques (0.05 N m at 1),
    with ``control="velocity"`` target joint velocities (``max_speed`` rad/s at 1), with
    ``control="tip"`` the fingertip's target velocity (``max_tip_speed`` m/s at 1; joint speeds
    clipped to ``max_speed``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, frame_skip: int = 2, success_radius: float = 0.05, goal_radius_range=(0.07, 0.19),
                 render_mode: str | None = None, width: int = 240, height: int = 240,
                 reward: str = "sparse", control: str = "torque", max_speed: float = 2 * np.pi,
                 max_tip_speed: float = 1.0) -> None:
        import mujoco

        if reward not in ("sparse", "dense"):
            raise ValueError(f"ArmReach: reward must be 'sparse' or 'dense', got {reward!r}")
        if control not in ("torque", "velocity", "tip"):
            raise ValueError(f"ArmReach: control must be 'torque', 'velocity' or 'tip', got {control!r}")
        if not (max_speed > 0 and max_tip_speed > 0):
            raise ValueError(f"ArmReach: max_speed and max_tip_speed must be > 0, got {max_speed}, {max_tip_speed}")
        self.reward_type, self.control = reward, control
        self.max_speed, self.max_tip_speed = float(max_speed), float(max_tip_speed)

        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_path(str(MJCF_PATH))
        if control != "torque":
            velocity_actuators(self.model, max_speed)
        self.data = mujoco.MjData(self.model)
        self.frame_skip = frame_skip
        self.success_radius = success_radius
        self.goal_radius_range = goal_radius_range
        self.render_mode = render_mode
        self._size = (height, width)
        self._renderer = None
        self._fingertip = self.model.site("fingertip").id
        self._goal = np.zeros(2)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(12,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def _fingertip_xy(self) -> np.ndarray:
        return self.data.site_xpos[self._fingertip][:2].copy()

    def _observation(self) -> np.ndarray:
        qpos, qvel = self.data.qpos[:2], self.data.qvel[:2]
        tip = self._fingertip_xy()
        return np.concatenate([np.cos(qpos), np.sin(qpos), qvel, tip, self._goal, self._goal - tip]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        mujoco = self._mujoco
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:2] = self.np_random.uniform(-np.pi, np.pi, 2) * np.array([1.0, 0.8])
        self.data.qvel[:2] = self.np_random.uniform(-0.05, 0.05, 2)
        self._goal = self._sample_goal(options)
        self.data.mocap_pos[0, :2] = self._goal
        mujoco.mj_forward(self.model, self.data)
        return self._observation(), {"success": False, "distance": self._distance()}

    def _sample_goal(self, options: dict | None) -> np.ndarray:
        """Goal xy (2,) [m]: radius and angle drawn from the env's RNG (subclasses pick fixed goals)."""
        radius = self.np_random.uniform(*self.goal_radius_range)
        angle = self.np_random.uniform(-np.pi, np.pi)
        return np.array([radius * np.cos(angle), radius * np.sin(angle)])

    def _distance(self) -> float:
        return float(np.linalg.norm(self._goal - self._fingertip_xy()))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"ArmReach: action must be 2 finite numbers, got {action!r}")
        action = np.clip(action, -1.0, 1.0)
        if self.control == "tip":
            jacobian = np.zeros((3, self.model.nv))
            self._mujoco.mj_jacSite(self.model, self.data, jacobian, None, self._fingertip)
            speeds = tip_to_joint_speeds(jacobian[:2, :2], self.max_tip_speed * action)
            action = np.clip(speeds / self.max_speed, -1.0, 1.0)
        self.data.ctrl[:] = action
        self._mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        distance = self._distance()
        success = distance < self.success_radius
        reward = float(success) if self.reward_type == "sparse" else -distance
        return self._observation(), reward, bool(success), False, {"success": success, "distance": distance}

    def scripted_action(self, gain: float = 3.0, damping: float = 0.3) -> np.ndarray:
        """A PD controller towards the two-link inverse-kinematics solution for the goal.

        Used to make demo datasets (with noise added): returns (2,) float32 in [-1, 1].
        Link lengths 0.1 m and 0.11 m (shoulder->elbow, elbow->fingertip site).
        """
        upper, lower = 0.1, 0.11
        goal = self._goal
        cos_elbow = np.clip((goal @ goal - upper**2 - lower**2) / (2 * upper * lower), -1.0, 1.0)
        elbow = np.arccos(cos_elbow)
        shoulder = np.arctan2(goal[1], goal[0]) - np.arctan2(lower * np.sin(elbow), upper + lower * np.cos(elbow))
        error = (np.array([shoulder, elbow]) - self.data.qpos[:2] + np.pi) % (2 * np.pi) - np.pi
        return np.clip(gain * error - damping * self.data.qvel[:2], -1.0, 1.0).astype(np.float32)
