"""Import/export round trips (Minari, D4RL, robomimic, replay) and bad-input errors."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from robokit.data import DataError, Episode, ReplayBuffer, load_episodes, save_minari
from robokit.data.formats import convert, detect_format, episodes_to_buffer, save_episodes
from robokit.data.formats.robomimic import load_robomimic, save_robomimic
from robokit.data.testing import assert_episodes_equal


def assert_same_episodes(expected: list[Episode], got: list[Episode], infos: bool = True) -> None:
    assert_episodes_equal(expected, got, check_infos=infos)


@pytest.fixture
def episodes(make_episode):
    return [make_episode(6, with_success=True), make_episode(3, terminated=False, with_success=True),
            make_episode(9, with_success=True)]


@pytest.mark.parametrize("name, fmt, keeps_infos", [
    ("ds-v0", "minari", True), ("d4rl.hdf5", "d4rl", True), ("demos.hdf5", "robomimic", False),
    ("buffer.npz", "replay", False)])
def test_round_trip(tmp_path, episodes, name, fmt, keeps_infos):
    path = save_episodes(episodes, tmp_path / name, fmt)
    assert detect_format(path) == fmt
    assert_same_episodes(episodes, load_episodes(path), infos=keeps_infos)


def test_minari_output_is_readable_by_minari_itself(tmp_path, episodes, monkeypatch):
    import minari

    save_minari(episodes, tmp_path / "robokit-test-v0")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    dataset = minari.load_dataset("robokit-test-v0")
    assert dataset.total_episodes == 3 and dataset.total_steps == 18
    first = next(iter(dataset.iterate_episodes()))
    np.testing.assert_array_equal(first.observations, episodes[0].observations)
    np.testing.assert_array_equal(first.terminations, episodes[0].terminated)
    sample = dataset.sample_episodes(1)[0]
    assert sample.actions.shape[1] == 2


def test_minari_with_env_spec_and_dict_observations(tmp_path, rng):
    obs = {"state": rng.normal(size=(5, 3)).astype(np.float32), "goal": rng.normal(size=(5, 2)).astype(np.float32)}
    episode = Episode(obs, rng.normal(size=(4, 1)), np.ones(4), [0, 0, 0, 1], [0, 0, 0, 0])
    path = save_minari([episode], tmp_path / "dict-v0")
    assert_same_episodes([episode], load_episodes(path))
    hopper = save_minari([Episode(np.zeros((3, 11)), np.zeros((2, 3)), [1, 1], [0, 1], [0, 0])],
                         tmp_path / "hop-v0", env_id="Hopper-v5")
    meta = json.loads((hopper / "data" / "metadata.json").read_text())
    assert json.loads(meta["env_spec"])["id"] == "Hopper-v5"


def test_minari_relative_paths(tmp_path, episodes, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = save_minari(episodes, "nested/rel-v0")
    assert path.is_absolute() and path == tmp_path / "nested" / "rel-v0"
    assert_same_episodes(episodes, load_episodes("nested/rel-v0"))


def test_export_a_replay_buffer_as_minari(tmp_path, episodes):
    buffer = episodes_to_buffer(episodes, store_mc_return=True)
    buffer.add(np.zeros(3), np.zeros(2), 1.0, np.ones(3), False, False)  # unfinished episode
    path = save_minari(buffer, tmp_path / "from-buffer-v0")
    back = load_episodes(path)
    assert len(back) == 4 and sum(len(e) for e in back) == 19  # the held-back step is exported too
    assert back[-1].is_truncated and back[-1].infos["mc_return"][0] == 1.0
    assert_same_episodes(episodes, back[:3], infos=False)
    assert "mc_return" in back[0].infos


def test_export_buffer_without_mc_return_keeps_unfinished_episode(tmp_path, episodes):
    buffer = episodes_to_buffer(episodes)
    buffer.add(np.zeros(3), np.zeros(2), 1.0, np.ones(3), False, False)
    back = load_episodes(save_minari(buffer, tmp_path / "b-v0"))
    assert len(back) == 4 and back[-1].is_truncated and len(back[-1]) == 1


def test_convert_between_all_formats_keeps_the_data(tmp_path, episodes):
    source = save_minari(episodes, tmp_path / "src-v0")
    chain = [(tmp_path / "a.hdf5", "d4rl"), (tmp_path / "b.hdf5", "robomimic"), (tmp_path / "c.npz", "replay"),
             (tmp_path / "d-v0", "minari")]
    previous = source
    for path, fmt in chain:
        out, n_episodes, n_steps = convert(previous, path, dst_format=fmt)
        assert (n_episodes, n_steps) == (3, 18) and detect_format(out) == fmt
        previous = out
    assert_same_episodes(episodes, load_episodes(previous), infos=False)


def test_existing_destination_is_kept_unless_overwrite(tmp_path, episodes):
    path = save_minari(episodes[:1], tmp_path / "keep-v0")
    with pytest.raises(FileExistsError):
        save_minari(episodes, path)
    with pytest.raises(DataError):  # a failing write (ragged clouds do not fit Minari) loses nothing
        clouds = Episode([np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32)], np.zeros((1, 1)), [0],
                         [1], [0])
        save_minari([clouds], path, overwrite=True)
    assert len(load_episodes(path)) == 1
    save_minari(episodes, path, overwrite=True)
    assert len(load_episodes(path)) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".keep-v0")]


def test_robomimic_layout_matches_robosuite_demos(tmp_path, episodes):
    path = save_robomimic(episodes, tmp_path / "demo.hdf5", env_args={"env_name": "Lift", "type": 1,
                                                                       "env_kwargs": {"robots": ["Panda"]}})
    with h5py.File(path) as handle:
        assert json.loads(handle["data"].attrs["env_args"])["env_name"] == "Lift"
        assert handle["data"].attrs["total"] == 18
        demo = handle["data/demo_1"]
        assert demo.attrs["num_samples"] == 3
        assert demo["obs/flat"].shape == (3, 3) and demo["next_obs/flat"].shape == (3, 3)
        assert demo["dones"][()].tolist() == [0, 0, 0]
        assert [n.decode() for n in handle["mask/all"][()]] == ["demo_0", "demo_1", "demo_2"]


def write_robomimic_by_hand(path, with_next_obs=True, dones=(0, 0, 1)):
    """A file in the layout robomimic writes (dict obs, no robokit extras), demo_10 before demo_2."""
    with h5py.File(path, "w") as handle:
        for name, offset in (("demo_10", 100.0), ("demo_2", 0.0)):
            demo = handle.create_group(f"data/{name}")
            demo.create_dataset("obs/robot0_eef_pos", data=np.arange(9, dtype=np.float64).reshape(3, 3) + offset)
            demo.create_dataset("obs/object", data=np.ones((3, 2)))
            if with_next_obs:
                demo.create_dataset("next_obs/robot0_eef_pos",
                                    data=np.arange(3, 12, dtype=np.float64).reshape(3, 3) + offset)
                demo.create_dataset("next_obs/object", data=np.ones((3, 2)))
            demo.create_dataset("actions", data=np.zeros((3, 7)))
            demo.create_dataset("rewards", data=np.array([0.0, 0.0, 1.0]))
            demo.create_dataset("dones", data=np.array(dones))
            demo.create_dataset("states", data=np.zeros((3, 10)))
            demo.attrs["num_samples"] = 3
        handle["data"].attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
        handle.create_dataset("mask/train", data=np.array([b"demo_2"]))


def test_reads_robomimic_files_written_by_robomimic(tmp_path):
    path = tmp_path / "lift.hdf5"
    write_robomimic_by_hand(path)
    episodes = load_episodes(path)
    assert len(episodes) == 2
    first = episodes[0]  # demo_2 sorts before demo_10
    assert set(first.observations) == {"robot0_eef_pos", "object"}
    np.testing.assert_array_equal(first.observations["robot0_eef_pos"][:, 0], [0, 3, 6, 9])
    assert first.is_terminated and not first.is_truncated and first.infos["states"].shape == (3, 10)
    assert len(load_robomimic(path, filter_key="train")) == 1
    write_robomimic_by_hand(path, dones=(0, 0, 0))
    assert load_episodes(path)[0].is_truncated


# ---------------------------------------------------------------- bad input
def write_d4rl(path, **overrides):
    steps = np.repeat(np.arange(7, dtype=np.float32)[:, None], 3, axis=1)  # continuous: obs[t+1] == next[t]
    columns = {"observations": steps[:-1], "actions": np.zeros((6, 2), np.float32),
               "rewards": np.arange(6, dtype=np.float32), "terminals": np.array([0, 0, 1, 0, 0, 0]),
               "timeouts": np.array([0, 0, 0, 0, 0, 1]), "next_observations": steps[1:]}
    columns.update(overrides)
    with h5py.File(path, "w") as handle:
        for key, value in columns.items():
            if value is not None:
                handle.create_dataset(key, data=value)
    return path


def test_d4rl_splits_on_terminals_and_timeouts(tmp_path):
    episodes = load_episodes(write_d4rl(tmp_path / "ok.hdf5"))
    assert [len(e) for e in episodes] == [3, 3]
    assert episodes[0].is_terminated and episodes[1].is_truncated
    np.testing.assert_array_equal(episodes[1].rewards, [3, 4, 5])
    without_next = load_episodes(write_d4rl(tmp_path / "nonext.hdf5", next_observations=None))
    assert [len(e) for e in without_next] == [3, 2]  # the time-limited episode loses its unknown last step


def test_d4rl_splits_where_the_next_observation_does_not_continue(tmp_path):
    # CORL's rule (cal_ql.py get_return_to_go): an episode also ends where
    # observations[t + 1] != next_observations[t], e.g. D4RL files whose time-outs are not flagged
    obs = np.arange(18, dtype=np.float32).reshape(6, 3)
    next_obs = obs + 3
    next_obs[1] = 100.0  # rows 0-1 are one episode, cut off after row 1; rows 2-5 the next
    path = write_d4rl(tmp_path / "jump.hdf5", observations=obs, next_observations=next_obs,
                      rewards=np.ones(6, np.float32), terminals=np.zeros(6), timeouts=np.zeros(6))
    episodes = load_episodes(path)
    assert [len(e) for e in episodes] == [2, 4]
    assert episodes[0].is_truncated and not episodes[0].is_terminated
    np.testing.assert_array_equal(episodes[0].observations[-1], next_obs[1])
    np.testing.assert_array_equal(episodes[1].observations[0], obs[2])
    buffer = episodes_to_buffer(episodes, store_mc_return=True, discount=0.5)
    mc = buffer.gather_transitions(np.arange(6))["mc_return"]
    np.testing.assert_allclose(mc[:2], [1.5, 1.0])  # the first episode's returns stop at its cut
    np.testing.assert_allclose(mc[2:], [1.875, 1.75, 1.5, 1.0])
    close = obs + 3
    close[1] += 1e-7  # differences within CORL's 1e-6 tolerance do not split
    same = load_episodes(write_d4rl(tmp_path / "close.hdf5", observations=obs, next_observations=close,
                                    terminals=np.zeros(6), timeouts=np.zeros(6)))
    assert [len(e) for e in same] == [6]


def test_truncated_hdf5_names_the_file(tmp_path):
    path = write_d4rl(tmp_path / "full.hdf5")
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(DataError, match="cut.hdf5.*truncated or corrupt"):
        load_episodes(cut, "d4rl")
    with pytest.raises(DataError, match="cut.hdf5"):
        detect_format(cut)


def test_missing_key_is_named(tmp_path):
    with pytest.raises(DataError, match="key 'terminals' missing"):
        load_episodes(write_d4rl(tmp_path / "x.hdf5", terminals=None))


def test_mismatched_lengths_are_named(tmp_path):
    with pytest.raises(DataError, match="key 'actions': length 5.*6 rows"):
        load_episodes(write_d4rl(tmp_path / "x.hdf5", actions=np.zeros((5, 2))))


def test_nan_and_inf_name_key_and_index(tmp_path):
    rewards = np.arange(6, dtype=np.float32)
    rewards[4] = np.nan
    with pytest.raises(DataError, match=r"x.hdf5: key 'rewards' index 4: non-finite"):
        load_episodes(write_d4rl(tmp_path / "x.hdf5", rewards=rewards))
    obs = np.zeros((6, 3), np.float32)
    obs[2, 1] = np.inf
    with pytest.raises(DataError, match=r"key 'observations' index \(2, 1\)"):
        load_episodes(write_d4rl(tmp_path / "y.hdf5", observations=obs))


def test_wrong_dtypes_are_named(tmp_path):
    with pytest.raises(DataError, match="key 'rewards': dtype .* not numeric"):
        load_episodes(write_d4rl(tmp_path / "x.hdf5", rewards=np.array([b"a"] * 6)))
    with pytest.raises(DataError, match="key 'terminals' index 1: value 2"):
        load_episodes(write_d4rl(tmp_path / "y.hdf5", terminals=np.array([0, 2, 0, 0, 0, 0])))


def test_robomimic_bad_input(tmp_path):
    path = tmp_path / "raw.hdf5"
    with h5py.File(path, "w") as handle:  # a raw robosuite demo: states and actions only
        handle.create_dataset("data/demo_0/states", data=np.zeros((3, 4)))
        handle.create_dataset("data/demo_0/actions", data=np.zeros((3, 7)))
    with pytest.raises(DataError, match="demo_0/obs' missing.*dataset_states_to_obs"):
        load_episodes(path)
    path = tmp_path / "short.hdf5"
    write_robomimic_by_hand(path)
    with h5py.File(path, "a") as handle:
        del handle["data/demo_2/obs/object"]
        handle.create_dataset("data/demo_2/obs/object", data=np.ones((2, 2)))
    with pytest.raises(DataError, match="demo_2/obs/object': length 2"):
        load_episodes(path)


def test_episode_validation_errors_name_key_and_index():
    with pytest.raises(DataError, match="key 'rewards': length 2, expected 3"):
        Episode(np.zeros((4, 1)), np.zeros((3, 1)), [0, 0], [0, 0, 1], [0, 0, 0])
    with pytest.raises(DataError, match="key 'observations': length 3, expected 4"):
        Episode(np.zeros((3, 1)), np.zeros((3, 1)), [0, 0, 0], [0, 0, 1], [0, 0, 0])
    with pytest.raises(DataError, match="key 'terminated' index 0: episode ends before its last step"):
        Episode(np.zeros((4, 1)), np.zeros((3, 1)), [0, 0, 0], [1, 0, 1], [0, 0, 0])
    with pytest.raises(DataError, match=r"demo.h5: key 'actions' index \(1, 0\): non-finite"):
        Episode(np.zeros((3, 1)), [[0.0], [np.nan]], [0, 0], [0, 1], [0, 0], source="demo.h5")
    with pytest.raises(DataError, match="key 'observations' index 1: point 0 column 2"):
        Episode([np.zeros((2, 3), np.float32), np.array([[0, 0, np.nan]], np.float32)], np.zeros((1, 1)), [0],
                [1], [0])
    with pytest.raises(DataError, match="dtype <U1 is not numeric"):
        Episode(np.zeros((2, 1)), np.zeros((1, 1)), ["a"], [1], [0])


def test_minari_corrupt_dataset_is_named(tmp_path, episodes):
    path = save_minari(episodes, tmp_path / "broken-v0")
    main = path / "data" / "main_data.hdf5"
    main.write_bytes(main.read_bytes()[:200])
    with pytest.raises(DataError, match="broken-v0"):
        load_episodes(path)
    with pytest.raises(DataError, match="not a Minari dataset|no such file"):
        load_episodes(tmp_path / "nowhere", "minari")


def test_replay_file_round_trip_keeps_buffer_settings(tmp_path, episodes):
    path = save_episodes(episodes, tmp_path / "b.npz")
    buffer = ReplayBuffer.load(path)
    assert len(buffer) == 18 and buffer.obs_shape == (3,)
    assert os.path.getsize(path) > 0


def test_point_cloud_episodes_round_trip_through_a_replay_file(tmp_path, rng):
    clouds = [[rng.normal(size=(int(n), 4)).astype(np.float32) for n in rng.integers(0, 30, steps + 1)]
              for steps in (4, 2)]
    episodes = [Episode(c, np.zeros((len(c) - 1, 2)), np.arange(len(c) - 1), np.arange(len(c) - 1) == len(c) - 2,
                        np.zeros(len(c) - 1, bool)) for c in clouds]
    back = load_episodes(save_episodes(episodes, tmp_path / "clouds.npz"))
    assert_episodes_equal(episodes, back, check_infos=False)
    back[1].observations[2] = back[1].observations[2] + 1.0
    with pytest.raises(AssertionError, match=r"episode 1 observations\[2\]"):
        assert_episodes_equal(episodes, back, check_infos=False)


def test_minari_infos_follow_minaris_reset_first_convention(tmp_path, episodes):
    """minari's DataCollector records T+1 infos (the reset's first); robokit writes and reads that."""
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    ours = save_minari(episodes, tmp_path / "ours-v0")
    first = next(iter(minari.MinariDataset(ours / "data").iterate_episodes()))
    assert len(first.infos["success"]) == len(episodes[0]) + 1 and not first.infos["success"][0]

    (tmp_path / "theirs-v0").mkdir()
    storage = MinariStorage.new(tmp_path / "theirs-v0" / "data",
                                observation_space=gym.spaces.Box(-1, 1, (2,), np.float32),
                                action_space=gym.spaces.Box(-1, 1, (1,), np.float32))
    storage.update_episodes([EpisodeBuffer(
        id=0, observations=np.zeros((4, 2), np.float32), actions=np.zeros((3, 1), np.float32),
        rewards=[0.0, 0.0, 1.0], terminations=[False, False, True], truncations=[False, False, False],
        infos={"success": np.array([False, False, False, True]), "arm": {"force": np.arange(4.0)}})])
    storage.update_metadata({"dataset_id": "theirs-v0", "minari_version": minari.__version__})
    episode = load_episodes(tmp_path / "theirs-v0")[0]
    np.testing.assert_array_equal(episode.infos["success"], [False, False, True])
    np.testing.assert_array_equal(episode.infos["arm/force"], [1.0, 2.0, 3.0])
