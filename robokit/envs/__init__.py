"""Gymnasium environments shipped with robokit (ids ``robokit/<Task>-v<N>``) and env helpers.

Importing this package registers the ids; MuJoCo is imported only when an env is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium as gym

if TYPE_CHECKING:
    from robokit.envs.pixels import PixelOptions

#: id -> (entry point, max episode steps)
ENV_SPECS = {
    "robokit/ArmReach-v0": ("robokit.envs.arm_reach:ArmReachEnv", 50),
    "robokit/LidarNav-v0": ("robokit.envs.lidar_nav:LidarNavEnv", 300),
    "robokit/LidarNavVoxel64-v0": ("robokit.envs.lidar_nav:LidarNavEnv", 300),
    "robokit/LidarNavState-v0": ("robokit.envs.lidar_nav:LidarNavEnv", 300),
    # 5 Hz control (action repeat 10 of 20 ms steps) in 150-step (30 s) episodes (docs/sim_lidar.md)
    "robokit/LidarNavRange-v0": ("robokit.envs.lidar_nav:LidarNavEnv", 150),
    "robokit/LidarNavRangeGoal-v0": ("robokit.envs.lidar_nav:LidarNavEnv", 150),
    "robokit/LidarNavState-v1": ("robokit.envs.lidar_nav:LidarNavEnv", 150),
    "robokit/ArmReachDense-v0": ("robokit.envs.arm_reach:ArmReachEnv", 50),
    "robokit/ArmReachCloud-v0": ("robokit.envs.point_cloud:ArmReachCloudEnv", 50),
    "robokit/ArmReachDense-v1": ("robokit.envs.arm_reach:ArmReachEnv", 50),
    "robokit/ArmReachCloud-v1": ("robokit.envs.point_cloud:ArmReachCloudEnv", 50),
    "robokit/ArmReachMultiTask-v0": ("robokit.envs.multitask:ArmReachMultiTaskEnv", 50),
    "robokit/ArmReachDensePixels-v0": ("robokit.envs.pixels:registered_pixel_env", None),
    "robokit/InvertedPendulumPixels-v0": ("robokit.envs.pixels:registered_pixel_env", None),
    "robokit/InvertedPendulumPixels-v1": ("robokit.envs.pixels:registered_pixel_env", None),
    "robokit/BernoulliBandit-v0": ("robokit.envs.stochastic:BernoulliBanditEnv", 1),
    "robokit/FrozenLake-v0": ("robokit.envs.stochastic:frozen_lake", None),
    "robokit/FrozenLake8x8-v0": ("robokit.envs.stochastic:frozen_lake_8x8", None),
    "robokit/FrozenLakeDeterministic-v0": ("robokit.envs.stochastic:frozen_lake_deterministic", None),
    "robokit/InvertedPendulum-v0": ("robokit.envs.stochastic:inverted_pendulum", None),
    "robokit/NoisyInvertedPendulum-v0": ("robokit.envs.stochastic:noisy_inverted_pendulum", None),
    # reset-free forward/backward pairs (RoboFuME, docs/robofume_envs.md)
    "robokit/PushBackForth-v0": ("robokit.envs.reset_free:PushBackForthEnv", 80),
    "robokit/PushBackForth-v1": ("robokit.envs.reset_free:PushBackForthTrackEnv", 80),
    "robokit/DrawerOpenClose-v0": ("robokit.envs.reset_free:DrawerOpenCloseEnv", 80),
    "robokit/RobosuiteLiftPlace-v0": ("robokit.envs.robosuite_pair:RobosuiteLiftPlaceEnv", 80),
    # hidden-context pixel families for inverse-dynamics pretraining (docs/pretrain_envs.md)
    "robokit/PointMassGoal-v0": ("robokit.envs.hidden_context:PointMassGoalEnv", 50),
    "robokit/PushHidden-v0": ("robokit.envs.hidden_context:PushHiddenEnv", 60),
    # the pixel-SAC learning proof's task (docs/multimodal_envs.md)
    "robokit/PointMassReach-v0": ("robokit.envs.point_mass_reach:PointMassReachEnv", 50),
    "robokit/PointMassReachPixels-v0": ("robokit.envs.pixels:registered_pixel_env", None),
}

#: id -> keyword arguments of its entry point (pixel ids name the env they render; the time
#: limit of a pixel id is the rendered env's own)
ENV_KWARGS: dict[str, dict] = {
    "robokit/ArmReachDense-v0": {"reward": "dense"},
    # v1: fingertip-velocity actions (the torque-driven arm did not learn in 2,000 SAC updates,
    # even from the state; docs/multimodal_envs.md) and, for the cloud, 72 points instead of 168
    "robokit/ArmReachDense-v1": {"reward": "dense", "control": "tip"},
    "robokit/ArmReachCloud-v1": {"control": "tip", "cloud": "light"},
    # 64 points, one per 0.5 m voxel: sized so SAC's PointNet updates run on a CPU (docs/sim_lidar.md)
    "robokit/LidarNavVoxel64-v0": {"num_points": 64, "sampling": "voxel", "voxel_size": 0.5},
    # the privileged reference: goal and obstacle positions instead of the scan (no LiDAR)
    "robokit/LidarNavState-v0": {"observation": "state"},
    # a 1-D range scan of 90 bins from a 1-degree, 12 m sweep (the whole arena; the 16 cm goal post
    # stays between no two azimuth steps up to ~9 m), 5 Hz control; the state reference at 5 Hz
    "robokit/LidarNavRange-v0": {"observation": "range", "azimuth_steps": 360, "max_range": 12.0, "frame_skip": 10},
    "robokit/LidarNavRangeGoal-v0": {"observation": "range", "azimuth_steps": 360, "max_range": 12.0,
                                     "frame_skip": 10, "goal_vector": True},
    "robokit/LidarNavState-v1": {"observation": "state", "frame_skip": 10},
    "robokit/ArmReachDensePixels-v0": {"env_id": "robokit/ArmReachDense-v0", "size": 64, "frame_stack": 3},
    # 32x32 and 200-step episodes: sized so pixel SAC runs on a CPU (docs/multimodal_envs.md)
    "robokit/InvertedPendulumPixels-v0": {"env_id": "InvertedPendulum-v5", "size": 32, "frame_stack": 3,
                                          "max_episode_steps": 200},
    # v1: a camera tracking the cart at 1.2 m, level with the pole's middle (the pole spans half
    # the frame instead of a third), and DrQ's action repeat (2): 100 actions per 200-step episode
    "robokit/InvertedPendulumPixels-v1": {"env_id": "InvertedPendulum-v5", "size": 32, "frame_stack": 3,
                                          "max_episode_steps": 200, "action_repeat": 2,
                                          "default_camera_config": {"trackbodyid": 1, "distance": 1.2,
                                                                    "lookat": (0.0, 0.0, 0.3), "elevation": 0.0}},
    # 32x32 top view showing the mass and the goal disc (2 and 2.6 px radius), 3 frames, DrQ's
    # action repeat 4 (13 actions per 50-step episode), dense reward, no termination: sized so
    # pixel SAC learns in a short CPU run (docs/multimodal_envs.md)
    "robokit/PointMassReachPixels-v0": {"env_id": "robokit/PointMassReach-v0", "size": 32, "frame_stack": 3,
                                        "action_repeat": 4},
}


def register_envs() -> None:
    """Register robokit's env ids with gymnasium (idempotent)."""
    for env_id, (entry_point, max_steps) in ENV_SPECS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps,
                         kwargs=ENV_KWARGS.get(env_id, {}))


register_envs()


def make_env(env_id: str, render_mode: str | None = None, pixels: PixelOptions | None = None, **kwargs) -> gym.Env:
    """``gym.make`` with robokit ids registered and actions rescaled to [-1, 1]^A.

    With ``pixels`` the env observes rendered frames (see :mod:`robokit.envs.pixels`).

    Raises:
        ValueError: naming the env when it is unknown or its action space is not a Box.
    """
    if pixels is not None:
        from robokit.envs.pixels import make_pixel_env

        env = make_pixel_env(env_id, pixels, **kwargs)
    else:
        try:
            env = gym.make(env_id, render_mode=render_mode, **kwargs)
        except gym.error.Error as err:
            raise ValueError(f"cannot make env '{env_id}': {err}") from err
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"env '{env_id}': robokit's agents need a Box action space, got {space}")
    if not (space.low == -1).all() or not (space.high == 1).all():
        env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
    return env


__all__ = ["ENV_KWARGS", "ENV_SPECS", "register_envs", "make_env"]
