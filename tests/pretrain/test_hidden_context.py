"""The hidden-context pixel envs (real MuJoCo, frames rendered offscreen with EGL)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import robokit.envs  # noqa: F401  (registers the ids)
from robokit.envs.hidden_context import FAMILIES, PointMassGoalEnv, expert_policy
from robokit.pretrain.probe import chance_bound, context_probe, ridge_probe_accuracy

ENV_IDS = sorted(FAMILIES)


@pytest.fixture(scope="module", params=ENV_IDS)
def env_id(request: pytest.FixtureRequest) -> str:
    return request.param


def test_env_passes_gymnasium_checker(env_id: str) -> None:
    from gymnasium.utils.env_checker import check_env

    env = gym.make(env_id, render_mode="rgb_array").unwrapped
    check_env(env)  # with the render check
    obs, info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert set(info) == {"context", "success", "state"}
    assert info["state"].dtype == np.float32 and info["state"].shape == (env.state_dim,)
    np.testing.assert_allclose(info["state"][-2:], env.goals[info["context"]], atol=1e-6)  # goal in the state
    env.close()


def _rollout(env: gym.Env, seed: int, context: int | None = None) -> tuple[list, list]:
    act = expert_policy(env, noise=0.3, seed=seed)
    options = None if context is None else {"context": context}
    obs, info = env.reset(seed=seed, options=options)
    frames, actions = [obs], []
    done = False
    while not done:
        action = act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(obs)
        actions.append(action)
        done = terminated or truncated
    return frames, actions


def test_seeded_reset_and_noisy_expert_are_reproducible(env_id: str) -> None:
    env = gym.make(env_id)
    first, again = _rollout(env, 7), _rollout(env, 7)
    other = _rollout(env, 8)
    env.close()
    assert len(first[0]) == len(again[0])
    assert all(np.array_equal(a, b) for a, b in zip(first[0], again[0], strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(first[1], again[1], strict=True))
    assert not np.array_equal(first[0][0], other[0][0])  # another seed: another initial state


def test_context_is_drawn_from_the_seed_or_fixed() -> None:
    env = gym.make("robokit/PointMassGoal-v0")
    drawn = [env.reset(seed=s)[1]["context"] for s in range(30)]
    assert drawn == [env.reset(seed=s)[1]["context"] for s in range(30)]
    assert len(set(drawn)) > 5  # the RNG spreads episodes over the 12 contexts
    assert env.reset(seed=0, options={"context": 4})[1]["context"] == 4
    fixed = gym.make("robokit/PointMassGoal-v0", context=9)
    assert {fixed.reset(seed=s)[1]["context"] for s in range(5)} == {9}
    env.close()
    fixed.close()


def test_context_moves_only_the_goal_not_the_first_frame(env_id: str) -> None:
    env = gym.make(env_id)
    resets = [env.reset(seed=3, options={"context": k}) for k in range(3)]
    env.close()
    frames, goals = [obs for obs, _ in resets], [info["state"][-2:] for _, info in resets]
    assert all(np.array_equal(frames[0], f) for f in frames[1:])  # same seed, other goal: same pixels
    assert all(not np.allclose(goals[0], g) for g in goals[1:])


@pytest.mark.parametrize(("env_id", "threshold"), [("robokit/PointMassGoal-v0", 0.95),
                                                   ("robokit/PushHidden-v0", 0.9)])
def test_expert_succeeds(env_id: str, threshold: float) -> None:
    """20 episodes with noise 0.3: measured 1.00 (PointMass) and 0.98 (Push) over 50 episodes."""
    env = gym.make(env_id)
    wins = []
    for seed in range(20):
        act = expert_policy(env, noise=0.3, seed=seed)
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs, info))
            done = terminated or truncated
        wins.append(info["success"])
    env.close()
    assert np.mean(wins) >= threshold


@pytest.mark.parametrize("family", ENV_IDS)
def test_first_frame_does_not_reveal_the_context(family: str) -> None:
    """A linear probe reads the context from first frames only when the goal is drawn.

    Positive control: with ``show_goal=True`` the same probe, features and split reach at least
    0.9 accuracy, so the test can fail. Hidden: accuracy stays within chance + 3 binomial standard
    deviations (chance = 1/K; K = 12 point-mass goals, 8 push targets; 16 resets per context).
    """
    shown = context_probe(family, show_goal=True, per_context=16)
    assert shown["accuracy"] >= 0.9
    hidden = context_probe(family, show_goal=False, per_context=16)
    assert hidden["accuracy"] <= hidden["bound"]
    assert hidden["tested"] == 8 * FAMILIES[family].default_contexts


def test_ridge_probe_matches_sklearn_and_reads_a_planted_signal() -> None:
    from sklearn.linear_model import RidgeClassifier

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 20)
    features = rng.normal(size=(80, 30)).astype(np.float32)
    features[np.arange(80), labels] += 6.0  # class c raises feature c: linearly readable
    train = np.arange(80) % 2 == 0
    reference = RidgeClassifier(alpha=1.0).fit(features[train], labels[train]).predict(features[~train])
    assert ridge_probe_accuracy(features, labels) == pytest.approx(float((reference == labels[~train]).mean()))
    assert ridge_probe_accuracy(features, labels) >= 0.9
    assert ridge_probe_accuracy(rng.normal(size=(80, 30)), labels) <= chance_bound(4, 40)
    assert chance_bound(4, 40) == pytest.approx(0.25 + 3 * np.sqrt(0.25 * 0.75 / 40))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"context": 12}, "unknown context 12; contexts are 0..11"),
    ({"context": -1}, "unknown context -1"),
    ({"context": "left"}, "unknown context 'left'"),
    ({"num_contexts": 1}, "num_contexts must be in"),
    ({"size": 4}, "size must be an integer in"),
    ({"size": 64.0}, "size must be an integer in"),
    ({"render_mode": "depth_array"}, "render_mode must be None or 'rgb_array'"),
])
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PointMassGoalEnv(**kwargs)


def test_bad_reset_context_and_action_are_named() -> None:
    env = gym.make("robokit/PushHidden-v0")
    with pytest.raises(ValueError, match="PushHiddenEnv: unknown context 8; contexts are 0..7"):
        env.reset(seed=0, options={"context": 8})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be 2 finite numbers"):
        env.step(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="action must be 2 finite numbers"):
        env.step(np.zeros(3))
    env.close()


def test_expert_refuses_other_envs_and_negative_noise() -> None:
    env = gym.make("robokit/ArmReach-v0")
    with pytest.raises(ValueError, match="not a hidden-context env"):
        expert_policy(env)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        expert_policy(gym.make("robokit/PointMassGoal-v0"), noise=-1.0)


def test_other_frame_sizes_render() -> None:
    env = gym.make("robokit/PushHidden-v0", size=32, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and env.observation_space.shape == (32, 32, 3)
    assert np.array_equal(env.render(), obs)
    env.close()
