"""The true MuJoCo simulator behind a dynamics-model interface (Uni-O4's "true simulator" OPE option).

For gymnasium's planar locomotion tasks (Hopper, Walker2d, HalfCheetah, v4/v5) the observation is
``[qpos[1:], qvel]`` (the x position is excluded), so a state can be set from an observation with
x = 0 (no reward or termination depends on the absolute x). Each row of a batch is set and stepped in
turn; the env's own ``terminated`` is the termination signal.
"""

from __future__ import annotations

import numpy as np
import torch

SUPPORTED = ("hopper", "walker2d", "halfcheetah")


class SimulatorDynamics:
    """step(obs (B, O), action (B, A) in [-1, 1], done_fn ignored, generator ignored) -> next_obs, reward, done."""

    def __init__(self, env_id: str) -> None:
        from robokit.envs import make_env

        if not any(name in env_id.lower() for name in SUPPORTED):
            raise ValueError(f"ope_model 'simulator' supports {SUPPORTED} (observations without x), not '{env_id}'")
        self.env = make_env(env_id)
        self.env.reset(seed=0)
        self.base = self.env.unwrapped
        self.nq = self.base.model.nq

    @torch.no_grad()
    def step(self, obs: torch.Tensor, action: torch.Tensor, done_fn=None, generator=None):
        obs_np, act_np = obs.numpy().astype(np.float64), action.numpy()
        next_obs, rewards, dones = np.empty_like(obs_np), np.empty(len(obs_np)), np.empty(len(obs_np), bool)
        for row in range(len(obs_np)):
            qpos = np.concatenate([[0.0], obs_np[row, :self.nq - 1]])
            self.base.set_state(qpos, obs_np[row, self.nq - 1:])
            next_obs[row], rewards[row], dones[row], _, _ = self.env.step(act_np[row])
        return (torch.as_tensor(next_obs, dtype=torch.float32), torch.as_tensor(rewards, dtype=torch.float32),
                torch.as_tensor(dones))
