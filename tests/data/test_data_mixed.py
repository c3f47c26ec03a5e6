"""MixedReplay properties: exact split, read-only offline part, warm-up, annealing, append mode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robokit.data import LinearSchedule, MixedReplay, ReplayBuffer, ReplayNotReady
from robokit.data.mixed import offline_rows

OFFLINE_MARK, ONLINE_MARK = -1.0, 1.0


def offline_buffer(size: int = 64) -> ReplayBuffer:
    """Offline transitions carry reward -1, so each row's origin is visible in the batch."""
    buffer = ReplayBuffer(size, (2,), 1, seed=0)
    for t in range(size):
        buffer.add([t, 0], [0.0], OFFLINE_MARK, [t + 1, 0], False, t % 16 == 15)
    return buffer


def online_buffer(capacity: int = 32) -> ReplayBuffer:
    return ReplayBuffer(capacity, (2,), 1, seed=1)


def add_online(mix: MixedReplay, count: int) -> None:
    for t in range(count):
        mix.add([t, 1], [0.0], ONLINE_MARK, [t + 1, 1], False, False)


@settings(max_examples=40, deadline=None)
@given(fraction=st.floats(0, 1), batch_size=st.integers(1, 300), online_steps=st.integers(1, 100))
def test_mixed_mode_gives_exactly_round_f_times_b_offline_rows(fraction, batch_size, online_steps):
    mix = MixedReplay(offline_buffer(), online_buffer(), offline_fraction=fraction, seed=3)
    add_online(mix, online_steps)
    batch = mix.sample(batch_size)
    expected = int(np.floor(fraction * batch_size + 0.5))
    assert int(batch["is_offline"].sum()) == expected == offline_rows(fraction, batch_size)
    # is_offline tells the truth about every row, offline rows first
    np.testing.assert_array_equal(batch["reward"] == OFFLINE_MARK, batch["is_offline"])
    assert np.all(batch["is_offline"][:expected]) and not np.any(batch["is_offline"][expected:])
    assert batch["obs"].shape == (batch_size, 2) and batch["is_offline"].dtype == bool


@settings(max_examples=25, deadline=None)
@given(online_steps=st.integers(0, 200), capacity=st.integers(1, 40))
def test_offline_part_is_read_only_and_never_overwritten(online_steps, capacity):
    offline = offline_buffer()
    before = {name: np.array(field) for name, field in offline.storage.fields.items()}
    mix = MixedReplay(offline, online_buffer(capacity), offline_fraction=0.5)
    add_online(mix, online_steps)  # more than the online capacity: the online ring wraps
    assert len(mix.online) == min(online_steps, capacity)
    for name, field in offline.storage.fields.items():
        assert not field.flags.writeable
        np.testing.assert_array_equal(field, before[name])
    with pytest.raises(ValueError):
        offline.storage.fields["reward"][0] = 5.0
    with pytest.raises(PermissionError):
        offline.add([0, 0], [0.0], 0.0, [0, 0], False, False)
    held_back = ReplayBuffer(8, (2,), 1, store_mc_return=True).freeze()
    with pytest.raises(PermissionError):  # refused at once, not when the episode would end
        held_back.add([0, 0], [0.0], 0.0, [0, 0], False, False)


@settings(max_examples=20, deadline=None)
@given(warmup=st.integers(1, 50), before=st.integers(0, 49))
def test_warm_up_blocks_sampling_until_k_online_steps(warmup, before):
    before = min(before, warmup - 1)
    mix = MixedReplay(offline_buffer(), online_buffer(64), offline_fraction=0.5, warmup_steps=warmup)
    add_online(mix, before)
    assert not mix.ready
    with pytest.raises(ReplayNotReady, match=f"{before}/{warmup}"):
        mix.sample(8)
    add_online(mix, warmup - before)
    assert mix.ready
    assert mix.sample(8)["is_offline"].sum() == 4


@settings(max_examples=20, deadline=None)
@given(start=st.floats(0, 1), end=st.floats(0, 1), steps=st.integers(1, 60))
def test_annealed_fraction_reaches_its_end_and_stays(start, end, steps):
    schedule = LinearSchedule(start, end, steps)
    mix = MixedReplay(offline_buffer(), online_buffer(128), offline_fraction=schedule)
    assert mix.fraction() == pytest.approx(start)
    add_online(mix, steps)
    assert mix.fraction() == pytest.approx(end)
    assert int(mix.sample(100)["is_offline"].sum()) == offline_rows(end, 100)
    add_online(mix, 7)
    assert mix.fraction() == pytest.approx(end)
    halfway = schedule(steps // 2)
    assert min(start, end) - 1e-9 <= halfway <= max(start, end) + 1e-9


def test_annealed_fraction_ends_exactly_at_end():
    """A case of what hypothesis found: 0.15385199641837377 + (0.025 - 0.15385199641837377) * 1.0
    is 0.024999999999999994, one ulp below 0.025, so a batch of 100 drew 2 offline rows instead of
    floor(2.5 + 0.5) = 3 once the schedule had ended."""
    start = 0.15385199641837377
    schedule = LinearSchedule(start, 0.025, 1)
    assert schedule(1) == 0.025 and schedule(5) == 0.025 and schedule(0) == start
    assert offline_rows(schedule(1), 100) == offline_rows(0.025, 100) == 3


def test_append_mode_samples_the_union_uniformly():
    mix = MixedReplay(offline_buffer(60), online_buffer(40), mode="append", seed=0)
    add_online(mix, 20)  # pool: 60 offline + 20 online -> offline share 0.75
    shares = [mix.sample(200)["is_offline"].mean() for _ in range(50)]
    assert np.mean(shares) == pytest.approx(0.75, abs=0.02)


def test_mixed_batch_needs_online_data_and_same_fields():
    mix = MixedReplay(offline_buffer(), online_buffer(), offline_fraction=0.5)
    with pytest.raises(ReplayNotReady, match="online buffer is empty"):
        mix.sample(4)
    assert MixedReplay(offline_buffer(), online_buffer(), offline_fraction=1.0).sample(4)["is_offline"].all()
    with pytest.raises(ValueError, match="different fields"):
        MixedReplay(offline_buffer(), ReplayBuffer(8, (2,), 1, store_mc_return=True))


def test_mixer_seed_and_state_reproduce_batches():
    mixes = [MixedReplay(offline_buffer(), online_buffer(), 0.3, seed=9) for _ in range(2)]
    for mix in mixes:
        add_online(mix, 10)
    a, b = (m.sample(32) for m in mixes)
    np.testing.assert_array_equal(a["obs"], b["obs"])
    state = mixes[0].rng_state()
    expected = mixes[0].sample(32)
    mixes[1].set_rng_state(state)
    np.testing.assert_array_equal(mixes[1].sample(32)["obs"], expected["obs"])
