"""Vector envs (gymnasium sync/async) give the same episodes as one env for the same seeds."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.data.collect import collect_episodes
from robokit.envs.vector import env_maker, episode_random_policy, make_vector_env, run_episodes


def assert_same_episodes(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y) and x.task == y.task
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.rewards, y.rewards)
        np.testing.assert_array_equal(x.terminated, y.terminated)
        np.testing.assert_array_equal(x.truncated, y.truncated)
        for key in x.observations if isinstance(x.observations, dict) else [None]:
            ox = x.observations[key] if key else x.observations
            oy = y.observations[key] if key else y.observations
            for p, q in zip(ox, oy, strict=True):
                np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("env_id", ["robokit/ArmReach-v0", "Hopper-v5"])
def test_sync_vector_envs_give_one_envs_episodes(env_id):
    one = collect_episodes(env_id, 5, seed=3, progress=False)
    assert_same_episodes(one, collect_episodes(env_id, 5, seed=3, progress=False, num_envs=3))
    assert_same_episodes(one, collect_episodes(env_id, 5, seed=3, progress=False, num_envs=8))  # more envs than episodes
    other = collect_episodes(env_id, 5, seed=4, progress=False)
    assert not np.array_equal(one[0].actions, other[0].actions)


def test_async_vector_envs_with_point_clouds_give_one_envs_episodes():
    one = collect_episodes("robokit/ArmReachCloud-v0", 3, seed=0, progress=False, max_steps=12)
    assert_same_episodes(one, collect_episodes("robokit/ArmReachCloud-v0", 3, seed=0, progress=False, max_steps=12,
                                               num_envs=2, vector="async"))
    assert all(len(e) == 12 and e.is_truncated for e in one if not e.is_terminated)


def test_episodes_that_end_early_free_their_env_for_the_next_seed():
    """Hopper's episodes end at different steps: each free sub-env takes the next seed in order."""
    venv = make_vector_env(env_maker("Hopper-v5"), 2)
    seeds = [10, 11, 12, 13, 14]
    traces = run_episodes(venv, seeds, episode_random_policy(venv.single_action_space, 0), record=False)
    venv.close()
    assert [t.seed for t in traces] == seeds and len({len(t) for t in traces}) > 1
    assert all(t.observations == [] for t in traces)  # record=False keeps returns and lengths only


def test_vector_evaluation_equals_single_env_evaluation():
    from robokit.envs import make_env
    from robokit.trainers.evaluation import evaluate

    class Linear:  # a deterministic policy; agents only need act(obs, deterministic)
        def act(self, obs, deterministic=True):
            return np.tanh(obs[:3] * 0.5).astype(np.float32)

    single = evaluate(Linear(), make_env("Hopper-v5"), 4, seed=2)
    venv = make_vector_env(env_maker("Hopper-v5"), 3, "sync")
    assert evaluate(Linear(), venv, 4, seed=2) == single
    venv.close()


def test_bad_vector_options_raise():
    with pytest.raises(ValueError, match="--num-envs must be >= 1"):
        make_vector_env(env_maker("Hopper-v5"), 0)
    with pytest.raises(ValueError, match="--vector must be 'sync' or 'async'"):
        make_vector_env(env_maker("Hopper-v5"), 2, "threads")  # type: ignore[arg-type]


def test_robokit_eval_with_num_envs_gives_the_single_env_metrics(tmp_path, capsys):
    from robokit.algos import make_agent, save_agent
    from robokit.cli import main
    from robokit.envs.options import EnvOptions
    from robokit.trainers.cli import evaluate_checkpoint

    checkpoint = save_agent(make_agent("sac", 11, 3, seed=0), tmp_path / "agent.pt")
    single = evaluate_checkpoint(checkpoint, 3, "Hopper-v5", seed=1)
    vector = evaluate_checkpoint(checkpoint, 3, "Hopper-v5", seed=1, env_options=EnvOptions(num_envs=2))
    assert vector == single
    assert main(["eval", "--checkpoint", str(checkpoint), "--env", "Hopper-v5", "--episodes", "2",
                 "--num-envs", "2"]) == 0
    assert "eval/return_mean" in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(checkpoint), "--env", "Hopper-v5", "--num-envs", "2",
                 "--render-video", str(tmp_path / "v.gif")]) == 2
    assert "--render-video records one env; use it with --num-envs 1" in capsys.readouterr().err
