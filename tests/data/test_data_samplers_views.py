"""Samplers (uniform, prioritized sum tree, episode window) and views (n-step, window, state pair)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robokit.data import (
    Episode,
    EpisodeWindowSampler,
    NStepView,
    PrioritizedSampler,
    ReplayBuffer,
    StatePairView,
    WindowView,
)
from robokit.data.sumtree import SumTree


def counting_episode(start: int, steps: int, terminated: bool = True) -> Episode:
    """Observations start, start+1, ...; reward t at step t; ends at the last step."""
    obs = np.arange(start, start + steps + 1, dtype=np.float32)[:, None]
    last = np.arange(steps) == steps - 1
    return Episode(obs, obs[:-1], np.arange(steps, dtype=np.float32), last & terminated, last & (not terminated))


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(0, 100), min_size=1, max_size=70), data=st.data())
def test_sum_tree_finds_the_slot_whose_interval_holds_the_mass(values, data):
    tree = SumTree(len(values))
    tree.set(np.arange(len(values)), np.array(values))
    total = sum(values)
    assert tree.total() == pytest.approx(total, rel=1e-9, abs=1e-9)
    if total <= 0:
        return
    mass = data.draw(st.floats(0, total, exclude_max=True))
    slot = int(tree.find(np.array([mass]))[0])
    # the returned leaf's interval [start, end) must hold the mass, up to float round-off in the
    # tree's sums (a leaf far smaller than its neighbours has an interval narrower than an ulp;
    # exact prefix sums keep the oracle itself free of that round-off)
    ends = list(itertools.accumulate(Fraction(v) for v in values))
    start, end = ends[slot] - Fraction(values[slot]), ends[slot]
    tolerance = Fraction(1e-9) * max(Fraction(total), 1)
    assert values[slot] > 0
    assert start - tolerance <= Fraction(mass) <= end + tolerance


def test_prioritized_sampling_follows_priorities_and_weights():
    buffer = ReplayBuffer(4, (1,), 1, seed=0, sampler=PrioritizedSampler(4, alpha=1.0, beta=1.0))
    buffer.add_episode(counting_episode(0, 4))
    buffer.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    counts = np.zeros(4)
    for _ in range(200):
        batch = buffer.sample(50)
        counts += np.bincount(batch["indices"], minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.3, 0.4], atol=0.01)
    batch = buffer.sample(50)
    # w_i = (N P(i))^-beta / max w: the rarest slot gets weight 1, the most frequent 1/4
    expected = {0: 1.0, 1: 0.5, 2: 1 / 3, 3: 0.25}
    for slot, weight in zip(batch["indices"], batch["weights"], strict=True):
        assert weight == pytest.approx(expected[int(slot)] / max(expected[int(s)] for s in batch["indices"]))


def test_new_transitions_get_the_max_priority():
    sampler = PrioritizedSampler(8, alpha=1.0)
    buffer = ReplayBuffer(8, (1,), 1, sampler=sampler)
    buffer.add_episode(counting_episode(0, 2))
    buffer.update_priorities(np.array([0]), np.array([9.0]))
    buffer.add_episode(counting_episode(10, 1))
    assert sampler.tree.get(np.array([2]))[0] == pytest.approx(9.0 + sampler.eps)
    with pytest.raises(ValueError, match="index 1"):
        buffer.update_priorities(np.array([0, 1]), np.array([1.0, np.nan]))


def test_episode_window_sampler_stays_inside_one_episode():
    buffer = ReplayBuffer(50, (1,), 1, seed=0, sampler=EpisodeWindowSampler(4))
    buffer.add_episode(counting_episode(0, 3))
    buffer.add_episode(counting_episode(100, 6))
    batch = buffer.sample(64, view=WindowView(4))
    obs, mask, timestep = batch["obs"][..., 0], batch["mask"], batch["timestep"]
    for row_obs, row_mask, row_t in zip(obs, mask, timestep, strict=True):
        real = row_mask.astype(bool)
        assert real[0] and np.all(np.diff(real.astype(int)) <= 0)  # real steps first, then padding
        np.testing.assert_array_equal(np.diff(row_obs[real]), np.ones(real.sum() - 1))
        np.testing.assert_array_equal(np.diff(row_t[real]), np.ones(real.sum() - 1))
        assert np.all(row_obs[~real] == 0)
        start = row_obs[0]
        episode_end = 3 if start < 100 else 106
        assert real.sum() == min(4, episode_end - start)


def test_window_view_marks_the_terminal_step_and_pads_rewards_with_zero():
    buffer = ReplayBuffer(20, (1,), 1, seed=0)
    buffer.add_episode(counting_episode(0, 3))
    view = WindowView(5)
    batch = view(buffer, {"slots": np.array([1])})
    np.testing.assert_array_equal(batch["mask"], [[1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(batch["reward"], [[1, 2, 0, 0, 0]])
    np.testing.assert_array_equal(batch["terminated"], [[0, 1, 0, 0, 0]])


def test_n_step_view_by_hand():
    gamma = 0.5
    buffer = ReplayBuffer(20, (1,), 1, discount=gamma)
    buffer.add_episode(counting_episode(0, 4, terminated=True))  # rewards 0,1,2,3; obs 0..4
    buffer.add_episode(counting_episode(10, 3, terminated=False))  # rewards 0,1,2; obs 10..13
    batch = NStepView(3)(buffer, {"slots": np.array([0, 2, 4, 5])})
    # slot 0: r0 + g r1 + g^2 r2 = 0 + 0.5 + 0.5 = 1, next obs 3, 3 steps, not terminal
    # slot 2: r2 + g r3 = 2 + 1.5 = 3.5, ends by termination after 2 steps (next obs 4)
    # slot 4 (2nd episode step 0): 0 + 0.5 + 0.5 = 1, reaches obs 13 where it was truncated
    # slot 5: 1 + 0.5*2 = 2, truncated after 2 steps
    np.testing.assert_allclose(batch["reward"], [1.0, 3.5, 1.0, 2.0])
    np.testing.assert_array_equal(batch["next_obs"][:, 0], [3, 4, 13, 13])
    np.testing.assert_array_equal(batch["n_steps"], [3, 2, 3, 2])
    np.testing.assert_array_equal(batch["terminated"], [0, 1, 0, 0])
    np.testing.assert_array_equal(batch["truncated"], [0, 0, 1, 1])
    np.testing.assert_allclose(batch["discount"], [0.125, 0.25, 0.125, 0.25])
    assert buffer.sample(8, view=NStepView(2))["reward"].shape == (8,)


def test_n_step_view_stops_at_the_newest_step_of_an_unfinished_episode():
    buffer = ReplayBuffer(20, (1,), 1, discount=1.0)
    for t in range(3):
        buffer.add([t], [0.0], 1.0, [t + 1], False, False)
    batch = NStepView(5)(buffer, {"slots": np.array([1])})
    assert batch["n_steps"][0] == 2 and batch["next_obs"][0, 0] == 3 and batch["reward"][0] == 2


def test_state_pair_view_uses_o_t_plus_k_within_the_episode():
    buffer = ReplayBuffer(20, (1,), 1, seed=0)
    buffer.add_episode(counting_episode(0, 5))
    buffer.add_episode(counting_episode(50, 2))
    batch = StatePairView(k=3)(buffer, {"slots": np.array([0, 3, 5])})
    np.testing.assert_array_equal(batch["obs"][:, 0], [0, 3, 50])
    np.testing.assert_array_equal(batch["future_obs"][:, 0], [3, 5, 52])  # clipped at the episode's end
    np.testing.assert_array_equal(batch["k"], [3, 2, 2])
    np.testing.assert_array_equal(batch["action"][:, 0], [0, 3, 50])
    random_k = buffer.sample(200, view=StatePairView(k=3, random_k=True))
    assert set(random_k["k"].tolist()) <= {1, 2, 3}
    np.testing.assert_array_equal(random_k["future_obs"] - random_k["obs"], random_k["k"][:, None])


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 8), min_size=1, max_size=8), capacity=st.integers(3, 30),
       n=st.integers(1, 5), unfinished=st.integers(0, 4), gamma=st.sampled_from([0.5, 0.9, 1.0]))
def test_views_match_a_brute_force_reference_across_ring_wrap(lengths, capacity, n, unfinished, gamma):
    """n-step, window and state-pair views agree with a direct computation over the flat list
    of everything written, for every live slot, however the ring has wrapped."""
    rng = np.random.default_rng(sum(lengths) + capacity)
    buffer = ReplayBuffer(capacity, (1,), 1, discount=gamma)
    flat = []  # (obs, reward, next_obs, terminated, truncated, episode)
    counter = 0.0
    for episode_id, steps in enumerate(lengths):
        terminated = bool(rng.random() < 0.5)
        obs = counter + np.arange(steps + 1, dtype=np.float32)[:, None]
        rewards = rng.normal(size=steps).astype(np.float32)
        last = np.arange(steps) == steps - 1
        buffer.add_episode(Episode(obs, obs[:-1], rewards, last & terminated, last & (not terminated)))
        flat += [(obs[t, 0], rewards[t], obs[t + 1, 0], bool(last[t] and terminated),
                  bool(last[t] and not terminated), episode_id) for t in range(steps)]
        counter += 1000
    for t in range(unfinished):  # an episode still being collected
        buffer.add([counter + t], [counter + t], 1.0, [counter + t + 1], False, False)
        flat.append((counter + t, 1.0, counter + t + 1, False, False, len(lengths)))
    live = flat[len(flat) - len(buffer):]
    slots = buffer.storage.live_slots()

    def following(i: int, count: int) -> list[int]:
        """Indices into ``live`` of the same episode from live[i] on (at most ``count``)."""
        out = [i]
        while len(out) < count and i + 1 < len(live) and live[i + 1][5] == live[i][5]:
            i += 1
            out.append(i)
        return out

    nstep = NStepView(n)(buffer, {"slots": slots})
    window = WindowView(n)(buffer, {"slots": slots})
    pairs = StatePairView(n)(buffer, {"slots": slots})
    for i in range(len(live)):
        steps = following(i, n)
        m = len(steps)
        assert nstep["n_steps"][i] == m
        expected_reward = sum(gamma ** k * live[j][1] for k, j in enumerate(steps))
        assert nstep["reward"][i] == pytest.approx(expected_reward, rel=1e-5, abs=1e-5)
        assert nstep["next_obs"][i, 0] == live[steps[-1]][2]
        assert nstep["terminated"][i] == live[steps[-1]][3]
        assert nstep["truncated"][i] == live[steps[-1]][4]
        assert nstep["discount"][i] == pytest.approx(gamma ** m)
        np.testing.assert_array_equal(window["mask"][i], np.arange(n) < m)
        np.testing.assert_array_equal(window["obs"][i, :m, 0], [live[j][0] for j in steps])
        assert pairs["k"][i] == m and pairs["future_obs"][i, 0] == live[steps[-1]][2]


@settings(max_examples=30, deadline=None)
@given(schedule=st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=40),
       capacity=st.integers(2, 25), n=st.integers(1, 4), store_mc_return=st.booleans())
def test_interleaved_streams_keep_their_own_episodes(schedule, capacity, n, store_mc_return):
    """Transitions of up to three streams (a vectorised env) arrive interleaved; views, returns
    and export still follow each stream's own episodes."""
    gamma = 0.5
    buffer = ReplayBuffer(capacity, (1,), 1, discount=gamma, store_mc_return=store_mc_return)
    written = []  # (stream, episode number within stream, step, obs, reward, ended) in write order
    counters = {0: [0, 0], 1: [0, 0], 2: [0, 0]}  # stream -> [episode number, step]
    pending = {0: [], 1: [], 2: []}
    for stream, ends in schedule:
        episode_number, step = counters[stream]
        obs = 1000 * stream + 100 * episode_number + step
        buffer.add([obs], [obs], float(step + 1), [obs + 1], ends, False, stream=stream)
        pending[stream].append((stream, episode_number, step, obs, float(step + 1), ends))
        if not store_mc_return or ends:
            written += pending[stream]
            pending[stream] = []
        counters[stream] = [episode_number + 1, 0] if ends else [episode_number, step + 1]
    live = written[len(written) - len(buffer):]
    if not live:
        return
    assert len(buffer) == min(len(written), capacity)
    slots = buffer.storage.live_slots()
    batch = NStepView(n)(buffer, {"slots": slots})
    for i, (stream, number, step, obs, _, _) in enumerate(live):
        same = [row for row in live[i:] if row[0] == stream and row[1] == number]
        steps = [row for k, row in enumerate(same) if row[2] == step + k][:n]  # consecutive, still live
        assert batch["obs"][i, 0] == obs
        assert batch["n_steps"][i] == len(steps)
        assert batch["next_obs"][i, 0] == steps[-1][3] + 1
        assert batch["reward"][i] == pytest.approx(sum(gamma ** k * row[4] for k, row in enumerate(steps)))
        if store_mc_return:  # whole episodes are written at their end: the return covers all of it
            rest = [row for row in same if row[2] >= step]
            expected = sum(gamma ** k * row[4] for k, row in enumerate(rest))
            assert buffer.gather_transitions(slots[i:i + 1])["mc_return"][0] == pytest.approx(expected)
    from robokit.data.formats.common import buffer_to_episodes

    exported = buffer_to_episodes(buffer)
    assert sum(len(e) for e in exported) == len(buffer) + len(buffer.pending_rows())
    for episode in exported:  # every exported episode is one stream's consecutive steps
        first = episode.observations[:-1, 0]
        np.testing.assert_array_equal(np.diff(first), np.ones(len(first) - 1))
