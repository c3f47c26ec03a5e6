"""ReplayBuffer: contract keys/shapes, ring overwrite, observation kinds, determinism, save/resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robokit.data import DataError, Episode, ReplayBuffer, ReplayNotReady, split_ragged, to_torch


def test_sample_has_the_contract_keys_shapes_and_dtypes(make_episode):
    buffer = ReplayBuffer(100, (3,), 2, seed=0)
    for _ in range(5):
        buffer.add_episode(make_episode(7))
    batch = buffer.sample(16)
    assert set(batch) == {"obs", "action", "reward", "next_obs", "terminated", "truncated"}
    assert batch["obs"].shape == (16, 3) and batch["next_obs"].shape == (16, 3)
    assert batch["action"].shape == (16, 2)
    for key in ("reward", "terminated", "truncated"):
        assert batch[key].shape == (16,)
    assert all(value.dtype == np.float32 for value in batch.values())
    tensors = to_torch(batch)
    assert tensors["obs"].dtype == torch.float32 and tensors["obs"].is_contiguous()
    assert tensors["obs"].view(-1).shape == (48,)


def test_transitions_keep_next_obs_and_flags_aligned(make_episode):
    episode = make_episode(5, terminated=False)
    buffer = ReplayBuffer(10, (3,), 2)
    buffer.add_episode(episode)
    batch = buffer.gather_transitions(np.arange(5))
    np.testing.assert_array_equal(batch["obs"], episode.observations[:-1])
    np.testing.assert_array_equal(batch["next_obs"], episode.observations[1:])
    np.testing.assert_array_equal(batch["action"], episode.actions)
    np.testing.assert_array_equal(batch["truncated"], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(batch["terminated"], np.zeros(5))


def test_ring_overwrites_the_oldest_first():
    buffer = ReplayBuffer(4, (1,), 1)
    for t in range(10):
        buffer.add([t], [0.0], float(t), [t + 1], False, False)
    assert len(buffer) == 4 and buffer.total_added == 10
    live = buffer.gather_transitions(buffer.storage.live_slots())
    np.testing.assert_array_equal(live["obs"][:, 0], [6, 7, 8, 9])
    assert set(buffer.sample(200)["reward"].tolist()) == {6.0, 7.0, 8.0, 9.0}


def test_episode_longer_than_capacity_keeps_its_tail(make_episode):
    episode = make_episode(25)
    buffer = ReplayBuffer(10, (3,), 2, store_mc_return=True)
    buffer.add_episode(episode)
    live = buffer.gather_transitions(buffer.storage.live_slots())
    np.testing.assert_array_equal(live["reward"], episode.rewards[-10:])


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ReplayNotReady):
        ReplayBuffer(4, (1,), 1).sample(2)


def test_same_seed_same_batches_different_seed_different(make_episode):
    episodes = [make_episode(9) for _ in range(4)]
    buffers = [ReplayBuffer(100, (3,), 2, seed=s) for s in (7, 7, 8)]
    for buffer in buffers:
        for episode in episodes:
            buffer.add_episode(episode)
    a, b, c = (buf.sample(32) for buf in buffers)
    np.testing.assert_array_equal(a["obs"], b["obs"])
    assert not np.array_equal(a["obs"], c["obs"])


def test_uint8_image_observations_stay_uint8():
    buffer = ReplayBuffer(8, (4, 4, 3), 2, obs_dtype=np.uint8)
    frame = np.full((4, 4, 3), 200, np.uint8)
    buffer.add(frame, [0.1, 0.2], 1.0, frame + 1, False, True)
    batch = buffer.sample(3)
    assert batch["obs"].dtype == np.uint8 and batch["obs"].shape == (3, 4, 4, 3)
    assert int(batch["next_obs"].max()) == 201


def test_dict_observations_come_back_nested(rng):
    obs = {"state": rng.normal(size=(4, 5)).astype(np.float32), "image": np.zeros((4, 2, 2, 3), np.uint8)}
    episode = Episode(obs, np.zeros((3, 1)), np.ones(3), [0, 0, 1], [0, 0, 0])
    buffer = ReplayBuffer(10, {"state": (5,), "image": (2, 2, 3)}, 1, obs_dtype={"image": np.uint8})
    buffer.add_episode(episode)
    batch = buffer.sample(6)
    assert batch["obs"]["state"].shape == (6, 5) and batch["obs"]["image"].dtype == np.uint8
    assert set(batch["next_obs"]) == {"state", "image"}
    assert to_torch(batch)["obs"]["image"].dtype == torch.uint8


def test_dict_with_a_ragged_cloud_part_takes_add(rng):
    """A dict observation with a (None, C) cloud part (a LiDAR env's {"points", "proprio"}) goes through add()."""
    buffer = ReplayBuffer(8, {"points": (None, 4), "proprio": (5,)}, 2)
    observations = [{"points": rng.normal(size=(n, 4)).astype(np.float32), "proprio": np.ones(5, np.float32)}
                    for n in (3, 7, 1)]
    for t in range(2):
        buffer.add(observations[t], [0.0, 0.0], 0.0, observations[t + 1], False, t == 1)
    batch = buffer.gather_transitions(buffer.storage.live_slots())
    np.testing.assert_array_equal(batch["obs"]["points"], np.concatenate([observations[0]["points"],
                                                                          observations[1]["points"]]))
    with pytest.raises(DataError, match="obs/points point cloud shape"):
        buffer.add({"points": np.zeros((4, 3)), "proprio": np.ones(5)}, [0.0, 0.0], 0.0, observations[0], False,
                   False)


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=30), capacity=st.integers(1, 12),
       pool=st.integers(1, 64))
def test_ragged_point_clouds_round_trip_through_the_ring(sizes, capacity, pool):
    """Variable-size clouds in one flat pool (no padding): whatever is live reads back exactly,
    however the pool wraps, grows or is overwritten."""
    rng = np.random.default_rng(len(sizes) * 100 + capacity)
    clouds = [rng.normal(size=(n, 4)).astype(np.float32) for n in sizes]
    buffer = ReplayBuffer(capacity, (None, 4), 1, points_capacity=pool)
    for t in range(len(clouds) - 1):
        buffer.add(clouds[t], [0.0], 0.0, clouds[t + 1], False, t == len(clouds) - 2)
    written = len(clouds) - 1
    assert len(buffer) == min(written, capacity)
    batch = buffer.gather_transitions(buffer.storage.live_slots())
    first = written - len(buffer)
    got = split_ragged(batch["obs"], batch["obs_offsets"])
    nxt = split_ragged(batch["next_obs"], batch["next_obs_offsets"])
    for i, (cloud, following) in enumerate(zip(got, nxt, strict=True)):
        np.testing.assert_array_equal(cloud, clouds[first + i])
        np.testing.assert_array_equal(following, clouds[first + i + 1])
    # the pool only grows to fit what must stay live: at most `capacity` consecutive clouds plus the
    # new one and the tail skipped at a lap's end, doubled
    window = max(sum(sizes[i:i + capacity + 1]) for i in range(len(sizes)))
    assert buffer.storage.fields["obs"].points_capacity <= max(pool, 2 * (window + max(sizes)))


def test_ragged_episode_and_save_load(tmp_path, rng):
    clouds = [rng.normal(size=(int(n), 3)).astype(np.float32) for n in rng.integers(1, 50, 6)]
    episode = Episode(clouds, np.zeros((5, 2)), np.arange(5), [0, 0, 0, 0, 1], [0] * 5)
    buffer = ReplayBuffer(20, (None, 3), 2, points_capacity=16)
    buffer.add_episode(episode)
    loaded = ReplayBuffer.load(buffer.save(tmp_path / "clouds.npz"))
    a, b = buffer.sample(8), loaded.sample(8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert a["obs_offsets"].shape == (9,)


def test_add_rejects_bad_rows():
    buffer = ReplayBuffer(4, (2,), 2)
    with pytest.raises(DataError, match="action shape"):
        buffer.add([0, 0], [0.0], 0.0, [0, 0], False, False)
    with pytest.raises(DataError, match="reward"):
        buffer.add([0, 0], [0.0, 0.0], float("nan"), [0, 0], False, False)
    with pytest.raises(DataError, match="action"):
        buffer.add([0, 0], [0.0, float("inf")], 0.0, [0, 0], False, False)
    assert len(buffer) == 0


def test_save_load_resumes_with_the_identical_next_batch(tmp_path, make_episode):
    buffer = ReplayBuffer(50, (3,), 2, seed=3, store_mc_return=True, sparse_reward_failure_value=-1.0)
    for _ in range(9):
        buffer.add_episode(make_episode(8))
    buffer.sample(17)  # advance the generator and leave a partly used chunk of draws
    for t in range(3):  # an unfinished add() episode waits for its end; it must survive the save
        buffer.add(np.full(3, t), np.zeros(2), 1.0, np.full(3, t + 1), False, False)
    path = buffer.save(tmp_path / "replay.npz")
    loaded = ReplayBuffer.load(path)
    for _ in range(3):
        a, b = buffer.sample(64), loaded.sample(64)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for buf in (buffer, loaded):
        buf.add(np.full(3, 9), np.zeros(2), 1.0, np.full(3, 10), True, False)
    np.testing.assert_array_equal(buffer.sample(64)["mc_return"], loaded.sample(64)["mc_return"])
    assert loaded.config() == buffer.config() and len(loaded) == len(buffer)


def test_prioritized_buffer_resumes_exactly(tmp_path, make_episode):
    buffer = ReplayBuffer(40, (3,), 2, seed=1, sampler="prioritized")
    for _ in range(4):
        buffer.add_episode(make_episode(10))
    batch = buffer.sample(8)
    buffer.update_priorities(batch["indices"], np.linspace(0.1, 5, 8))
    loaded = ReplayBuffer.load(buffer.save(tmp_path / "per.npz"))
    a, b = buffer.sample(16), loaded.sample(16)
    np.testing.assert_array_equal(a["indices"], b["indices"])
    np.testing.assert_array_equal(a["weights"], b["weights"])


def test_load_names_the_file_when_damaged(tmp_path, make_episode):
    buffer = ReplayBuffer(10, (3,), 2)
    buffer.add_episode(make_episode(4))
    path = buffer.save(tmp_path / "ok.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated.npz"):
        ReplayBuffer.load(truncated)
    with pytest.raises(DataError, match="no such replay file"):
        ReplayBuffer.load(tmp_path / "missing.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(DataError, match="key 'meta' missing"):
        ReplayBuffer.load(foreign)


def test_bad_writes_leave_the_buffer_untouched(make_episode):
    buffer = ReplayBuffer(10, (3,), 2, store_mc_return=True)
    buffer.add_episode(make_episode(4))
    before = (len(buffer), buffer.storage.pointer, buffer.total_added, buffer.storage.slab.copy())
    with pytest.raises(DataError, match=r"obs shape \(4,\), expected \(3,\)"):
        buffer.add(np.zeros(4), np.zeros(2), 0.0, np.zeros(3), False, False)
    with pytest.raises(DataError, match="next_obs"):
        buffer.add(np.zeros(3), np.zeros(2), 0.0, np.array([0, np.nan, 0]), False, False)
    with pytest.raises(DataError, match="field 'obs'"):
        buffer.add_episode(make_episode(3, obs_dim=5))
    assert buffer.pending_rows() == []
    after = (len(buffer), buffer.storage.pointer, buffer.total_added, buffer.storage.slab)
    assert before[:3] == after[:3]
    np.testing.assert_array_equal(before[3], after[3])
    with pytest.raises(DataError, match="field 'next_obs' index 0: point cloud shape"):
        ReplayBuffer(4, (None, 3), 1).add_episode(
            Episode([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)], np.zeros((1, 1)), [0], [1], [0]))


def test_load_names_the_file_when_its_contents_disagree(tmp_path, make_episode):
    buffer = ReplayBuffer(10, (3,), 2)
    buffer.add_episode(make_episode(4))
    arrays = dict(np.load(buffer.save(tmp_path / "ok.npz")))
    broken = dict(arrays, **{"field.obs": arrays["field.obs"][:2]})
    np.savez(tmp_path / "short.npz", **broken)
    with pytest.raises(DataError, match=r"short.npz: key 'field.obs': shape \(2, 3\), expected \(4, 3\)"):
        ReplayBuffer.load(tmp_path / "short.npz")
    np.savez(tmp_path / "json.npz", **dict(arrays, meta=np.array("{not json")))
    with pytest.raises(DataError, match="json.npz: key 'meta' is not valid JSON"):
        ReplayBuffer.load(tmp_path / "json.npz")
    meta = json.loads(str(arrays["meta"]))
    del meta["config"]["action_dim"]
    np.savez(tmp_path / "config.npz", **dict(arrays, meta=np.array(json.dumps(meta))))
    with pytest.raises(DataError, match="config.npz: inconsistent replay file"):
        ReplayBuffer.load(tmp_path / "config.npz")
    meta = json.loads(str(arrays["meta"]))
    meta["size"] = 99
    np.savez(tmp_path / "size.npz", **dict(arrays, meta=np.array(json.dumps(meta))))
    with pytest.raises(DataError, match="size.npz: key 'meta': size 99"):
        ReplayBuffer.load(tmp_path / "size.npz")


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "end", "episode", "sample"]), st.integers(1, 6),
                              st.integers(0, 2)), min_size=1, max_size=25),
       capacity=st.integers(2, 20), store_mc_return=st.booleans(), sampler=st.sampled_from(["uniform", "prioritized"]))
def test_any_history_saves_and_resumes_exactly(tmp_path_factory, ops, capacity, store_mc_return, sampler):
    """Whatever was added (from interleaved streams), sampled or left unfinished, a saved buffer
    loads into one that holds the same data, gives the same next batches and continues the same."""
    rng = np.random.default_rng(capacity)
    buffer = ReplayBuffer(capacity, (2,), 1, seed=5, store_mc_return=store_mc_return, sampler=sampler)
    for op, size, stream in ops:  # add() from up to three interleaved streams
        if op == "add" or op == "end":
            for t in range(size):
                buffer.add(rng.normal(size=2), rng.normal(size=1), float(t), rng.normal(size=2),
                           op == "end" and t == size - 1, False, stream=stream)
        elif op == "episode":
            last = np.arange(size) == size - 1
            buffer.add_episode(Episode(rng.normal(size=(size + 1, 2)), rng.normal(size=(size, 1)),
                                       rng.normal(size=size), last, np.zeros(size, bool)))
        elif op == "sample" and len(buffer):
            buffer.sample(size)
    path = buffer.save(tmp_path_factory.mktemp("resume") / "buffer.npz")
    loaded = ReplayBuffer.load(path)
    assert (len(loaded), loaded.total_added, len(loaded.pending_rows())) == \
        (len(buffer), buffer.total_added, len(buffer.pending_rows()))
    live = buffer.storage.live_slots()
    for name, field in buffer.storage.fields.items():
        np.testing.assert_array_equal(loaded.storage.fields[name][live], field[live])
    if len(buffer):
        for _ in range(3):
            a, b = buffer.sample(8), loaded.sample(8)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])
    assert loaded.unfinished_streams == buffer.unfinished_streams
    for buf in (buffer, loaded):  # finishing the pending episodes gives the same transitions
        for stream in list(buf.unfinished_streams):
            buf.add(np.ones(2), np.ones(1), 1.0, np.ones(2), True, False, stream=stream)
    live = buffer.storage.live_slots()
    for name, field in buffer.storage.fields.items():
        np.testing.assert_array_equal(loaded.storage.fields[name][live], field[live])
