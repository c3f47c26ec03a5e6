"""Return-to-go (with Cal-QL's sparse failure rule) and GAE against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.data import Episode, ReplayBuffer, ReturnToGoView, discounted_returns, gae
from robokit.data.rollout import RolloutBuffer


def test_return_to_go_by_hand():
    # gamma 0.5, rewards 1, 2, 4: G2 = 4, G1 = 2 + 0.5*4 = 4, G0 = 1 + 0.5*4 = 3
    got = discounted_returns(np.array([1.0, 2.0, 4.0]), np.array([0, 0, 1], bool), 0.5)
    np.testing.assert_allclose(got, [3.0, 4.0, 4.0])


def test_truncated_and_terminated_episodes_both_sum_to_their_end():
    """A Monte-Carlo return has no value to bootstrap from: truncation adds nothing after the
    last step, exactly as termination (as in Cal-QL's calc_return_to_go)."""
    rewards = np.array([1.0, 1.0, 1.0])
    terminated = discounted_returns(rewards, np.array([0, 0, 1], bool), 0.9)
    truncated = discounted_returns(rewards, np.array([0, 0, 0], bool), 0.9)
    np.testing.assert_allclose(terminated, [2.71, 1.9, 1.0], rtol=1e-6)
    np.testing.assert_allclose(truncated, terminated)


def test_terminated_flag_stops_the_sum_inside_concatenated_input():
    got = discounted_returns(np.array([1.0, 1.0, 1.0, 1.0]), np.array([0, 1, 0, 1], bool), 0.5)
    np.testing.assert_allclose(got, [1.5, 1.0, 1.5, 1.0])


def test_calql_failure_rule_uses_r_over_one_minus_gamma_at_every_step():
    # all rewards equal the failure reward -1: every step gets -1 / (1 - 0.99) = -100
    got = discounted_returns(np.full(4, -1.0), None, 0.99, sparse_failure_value=-1.0)
    np.testing.assert_allclose(got, np.full(4, -100.0), rtol=1e-6)


def test_calql_rule_does_not_touch_successful_episodes():
    rewards = np.array([-1.0, -1.0, 0.0])  # reached the goal at the last step
    got = discounted_returns(rewards, np.array([0, 0, 1], bool), 0.9, sparse_failure_value=-1.0)
    np.testing.assert_allclose(got, [-1.9, -1.0, 0.0], rtol=1e-6)


def test_buffer_mc_return_matches_hand_values_for_add_and_add_episode():
    gamma = 0.5
    episode = Episode(np.arange(4, dtype=np.float32)[:, None], np.zeros((3, 1)), [1.0, 2.0, 4.0],
                      [False, False, False], [False, False, True])
    by_episode = ReplayBuffer(10, (1,), 1, discount=gamma, store_mc_return=True)
    by_episode.add_episode(episode)
    by_step = ReplayBuffer(10, (1,), 1, discount=gamma, store_mc_return=True)
    for t in range(3):
        assert len(by_step) == 0  # held back until the episode ends: the return needs all of it
        by_step.add(episode.observations[t], episode.actions[t], episode.rewards[t], episode.observations[t + 1],
                    False, t == 2)
    for buffer in (by_episode, by_step):
        batch = buffer.gather_transitions(np.arange(3))
        np.testing.assert_allclose(batch["mc_return"], [3.0, 4.0, 4.0])
        np.testing.assert_allclose(batch["obs"][:, 0], [0, 1, 2])
        view = buffer.sample(4, view=ReturnToGoView())
        assert view["mc_return"].shape == (4,)


def test_buffer_applies_the_failure_rule_per_episode():
    buffer = ReplayBuffer(20, (1,), 1, discount=0.9, store_mc_return=True, sparse_reward_failure_value=-1.0)
    failure = Episode(np.zeros((4, 1)), np.zeros((3, 1)), [-1, -1, -1], [0, 0, 0], [0, 0, 1])
    success = Episode(np.zeros((3, 1)), np.zeros((2, 1)), [-1, 0], [0, 1], [0, 0])
    buffer.add_episode(failure)
    buffer.add_episode(success)
    returns = buffer.gather_transitions(np.arange(5))["mc_return"]
    np.testing.assert_allclose(returns, [-10, -10, -10, -1, 0], rtol=1e-6)


def test_gae_hand_computed_example():
    """gamma 0.9, lambda 0.8, one env, 3 steps, the last one terminated.

    deltas: d2 = 1 - 0.5 = 0.5 (terminal: no bootstrap); d1 = 0 + 0.9*0.5 - 1 = -0.55;
    d0 = 1 + 0.9*1 - 0 = 1.9. A2 = 0.5; A1 = -0.55 + 0.72*0.5 = -0.19; A0 = 1.9 + 0.72*(-0.19) = 1.7632.
    """
    rewards = np.array([1.0, 0.0, 1.0])
    values = np.array([0.0, 1.0, 0.5])
    next_values = np.array([1.0, 0.5, 7.0])  # 7.0 must be ignored: the last step terminated
    terminated = np.array([0, 0, 1], bool)
    advantages, returns = gae(rewards, values, next_values, terminated, terminated, 0.9, 0.8)
    np.testing.assert_allclose(advantages, [1.7632, -0.19, 0.5], rtol=1e-6)
    np.testing.assert_allclose(returns, advantages + values, rtol=1e-6)


def test_gae_bootstraps_truncation_but_stops_the_trace():
    # truncated at step 0 with V(final obs) = 2: delta0 = 1 + 0.9*2 - 0 = 2.8, and A0 does not
    # include step 1 (a new episode)
    advantages, _ = gae(np.array([1.0, 5.0]), np.array([0.0, 0.0]), np.array([2.0, 0.0]),
                        np.array([0, 0], bool), np.array([1, 0], bool), 0.9, 0.95)
    np.testing.assert_allclose(advantages, [2.8, 5.0], rtol=1e-6)


def test_rollout_buffer_gae_with_two_envs_and_truncation():
    rollout = RolloutBuffer(n_steps=2, n_envs=2, obs_shape=(1,), action_dim=1, discount=0.9, gae_lambda=1.0)
    # env 0: no episode end; env 1: truncated after step 0 with V(final obs) = 3
    rollout.add(np.zeros((2, 1)), np.zeros((2, 1)), [1.0, 1.0], [False, False], [False, True],
                value=[0.0, 0.0], log_prob=[0.0, 0.0], final_value=[0.0, 3.0])
    rollout.add(np.zeros((2, 1)), np.zeros((2, 1)), [1.0, 2.0], [False, False], [False, False],
                value=[0.5, 1.0], log_prob=[0.0, 0.0])
    rollout.compute_returns_and_advantages(last_value=[10.0, 4.0])
    # env 0: A1 = 1 + 9 - 0.5 = 9.5; A0 = (1 + 0.45 - 0) + 0.9*9.5 = 10.
    # env 1: A0 = 1 + 0.9*3 = 3.7 (trace cut); A1 = 2 + 0.9*4 - 1 = 4.6
    np.testing.assert_allclose(rollout.advantages, [[10.0, 3.7], [9.5, 4.6]], rtol=1e-6)
    np.testing.assert_allclose(rollout.returns, rollout.advantages + rollout.values, rtol=1e-6)
    rows = list(rollout.minibatches(3, np.random.default_rng(0)))
    assert [len(r["advantage"]) for r in rows] == [3, 1]
    assert sorted(np.concatenate([r["advantage"] for r in rows])) == sorted(rollout.advantages.ravel())


def test_rollout_buffer_requires_final_value_for_truncation():
    rollout = RolloutBuffer(1, 1, (1,), 1)
    with pytest.raises(ValueError, match="final_value"):
        rollout.add(np.zeros((1, 1)), np.zeros((1, 1)), [0.0], [False], [True], [0.0], [0.0])
