"""robokit/ArmReachMultiTask-v0: two goals chosen by a task one-hot in the observation dict."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.envs import make_env
from robokit.envs.multitask import TASKS

ENV_ID = "robokit/ArmReachMultiTask-v0"


def test_passes_gymnasiums_env_checker():
    from gymnasium.utils.env_checker import check_env

    check_env(make_env(ENV_ID).unwrapped, skip_render_check=True)


def test_task_from_options_sets_goal_and_one_hot():
    env = make_env(ENV_ID)
    for index, (name, goal) in enumerate(TASKS.items()):
        for task in (name, index):
            obs, info = env.reset(seed=0, options={"task": task})
            assert info["task"] == name and obs["task"].tolist() == [float(i == index) for i in range(2)]
            np.testing.assert_allclose(env.unwrapped._goal, goal)
            assert obs["proprio"].shape == (8,)


def test_seeded_resets_draw_both_tasks_reproducibly():
    env = make_env(ENV_ID)
    drawn = [env.reset(seed=s)[1]["task"] for s in range(20)]
    assert set(drawn) == set(TASKS) and drawn == [env.reset(seed=s)[1]["task"] for s in range(20)]


def test_scripted_controller_solves_both_tasks():
    env = make_env(ENV_ID)
    for name in TASKS:
        successes = 0
        for seed in range(10):
            env.reset(seed=seed, options={"task": name})
            while True:
                _, reward, terminated, truncated, info = env.step(env.unwrapped.scripted_action())
                if terminated or truncated:
                    break
            successes += info["success"] and info["task"] == name
        assert successes >= 7


def test_unknown_task_raises_naming_the_tasks():
    env = make_env(ENV_ID)
    with pytest.raises(ValueError, match=r"unknown task 'jump'; tasks are \['reach-left', 'reach-right'\]"):
        env.reset(seed=0, options={"task": "jump"})
    with pytest.raises(ValueError, match="unknown task 5"):
        env.reset(seed=0, options={"task": 5})


def test_a_fixed_task_env_resets_to_it_unless_options_say_otherwise():
    env = make_env(ENV_ID, task="reach-right")
    assert {env.reset(seed=s)[1]["task"] for s in range(8)} == {"reach-right"}
    assert env.reset(seed=0, options={"task": 0})[1]["task"] == "reach-left"
    with pytest.raises(ValueError, match="unknown task 'up'"):
        make_env(ENV_ID, task="up")
