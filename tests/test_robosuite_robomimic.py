"""robosuite 1.5.2 on numpy 2 (installed without its mink pin) -> robomimic HDF5 -> robokit.

Real parts: a robosuite Lift episode with a Panda arm, written in robomimic's layout with
its MuJoCo states, read back by robokit, and the stored states replayed in a fresh env
built from the file's ``env_args`` (the way robomimic re-creates environments).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from robokit.data import Episode, load_episodes
from robokit.data.formats.robomimic import save_robomimic

suite = pytest.importorskip("robosuite", reason="robosuite not installed (make robosuite)")

ENV_KWARGS = {"env_name": "Lift", "robots": "Panda", "has_renderer": False,
              "has_offscreen_renderer": False, "use_camera_obs": False, "control_freq": 20}
OBS_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object-state")


def observe(env) -> dict:
    env.sim.forward()
    return env._get_observations(force_update=True)


def rollout(steps: int, seed: int) -> tuple[Episode, object]:
    env = suite.make(**ENV_KWARGS)
    rng = np.random.default_rng(seed)
    env.reset()
    # robosuite samples observables inside the control period, and after mj_step MuJoCo's
    # kinematics date from the start of the last substep: recompute them (sim.forward) and
    # force an observation update, so each stored observation is the one of its stored state.
    obs = observe(env)
    frames = {key: [obs[key]] for key in OBS_KEYS}
    actions, rewards, states = [], [], [env.sim.get_state().flatten()]
    for _ in range(steps):
        action = rng.uniform(-1, 1, env.action_dim).astype(np.float32)
        _, reward, _, _ = env.step(action)
        obs = observe(env)
        for key in OBS_KEYS:
            frames[key].append(obs[key])
        actions.append(action)
        rewards.append(reward)
        states.append(env.sim.get_state().flatten())
    episode = Episode(
        observations={k: np.asarray(v, np.float32) for k, v in frames.items()},
        actions=np.asarray(actions, np.float32), rewards=np.asarray(rewards, np.float32),
        terminated=np.zeros(steps, bool), truncated=np.arange(steps) == steps - 1,
        infos={"states": np.asarray(states[:-1])},
    )
    return episode, env


def test_robosuite_episode_round_trips_through_robomimic_hdf5(tmp_path: Path) -> None:
    episode, env = rollout(steps=15, seed=0)
    env_args = {"env_name": "Lift", "type": 1,
                "env_kwargs": {k: v for k, v in ENV_KWARGS.items() if k != "env_name"}}
    path = save_robomimic([episode], tmp_path / "lift.hdf5", env_args=env_args)

    with h5py.File(path) as handle:  # robomimic's own layout, as its loaders expect it
        assert json.loads(handle["data"].attrs["env_args"])["env_name"] == "Lift"
        assert handle["data/demo_0/actions"].shape == (15, env.action_dim)
        assert handle["data/demo_0/obs/robot0_eef_pos"].shape == (15, 3)

    (loaded,) = load_episodes(path)
    for key in OBS_KEYS:
        np.testing.assert_allclose(loaded.observations[key], episode.observations[key])
    np.testing.assert_array_equal(loaded.actions, episode.actions)

    # Re-create the env from the file and replay a stored MuJoCo state: the observation matches.
    stored = json.loads(h5py.File(path)["data"].attrs["env_args"])
    replay_env = suite.make(stored["env_name"], **stored["env_kwargs"])
    replay_env.reset()
    replay_env.sim.set_state_from_flattened(loaded.infos["states"][7])
    replay_env.sim.forward()
    np.testing.assert_allclose(replay_env._get_observations(force_update=True)["robot0_eef_pos"],
                               episode.observations["robot0_eef_pos"][7], atol=1e-6)
