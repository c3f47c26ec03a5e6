"""Multi-task episodes (Episode.task through Minari and replay files, task samplers) and dict
observations holding ragged point clouds, written by ``robokit collect``."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.cli import main
from robokit.data import DataError, Episode, ReplayBuffer, load_episodes
from robokit.data.formats import episodes_to_buffer
from robokit.data.samplers import TaskSampler


def task_episode(rng: np.random.Generator, steps: int, task: str | None) -> Episode:
    last = np.arange(steps) == steps - 1
    return Episode(rng.normal(size=(steps + 1, 3)).astype(np.float32), rng.uniform(-1, 1, (steps, 2)),
                   rng.normal(size=steps), last, np.zeros(steps, bool), task=task)


def cloud_episode(rng: np.random.Generator, steps: int) -> Episode:
    clouds = [rng.normal(size=(int(rng.integers(1, 9)), 4)).astype(np.float32) for _ in range(steps + 1)]
    last = np.arange(steps) == steps - 1
    return Episode({"points": clouds, "proprio": rng.normal(size=(steps + 1, 6))}, rng.uniform(-1, 1, (steps, 2)),
                   rng.normal(size=steps), last, np.zeros(steps, bool), task="reach-left")


def test_episode_task_is_a_string_or_none_and_bad_tasks_name_the_key(rng):
    assert task_episode(rng, 3, None).task is None
    assert task_episode(rng, 3, "open the drawer").task == "open the drawer"
    assert Episode(np.zeros((3, 1)), np.zeros((2, 1)), np.zeros(2), [0, 1], [0, 0], task=7).task == "7"
    with pytest.raises(DataError, match="key 'task': expected a task id or instruction string, got list"):
        Episode(np.zeros((3, 1)), np.zeros((2, 1)), np.zeros(2), [0, 1], [0, 0], task=["a"], source="f.npz")
    with pytest.raises(DataError, match="key 'task': empty task name"):
        Episode(np.zeros((3, 1)), np.zeros((2, 1)), np.zeros(2), [0, 1], [0, 0], task=" ")


def test_tasks_survive_minari_and_replay_files(rng, tmp_path):
    from robokit.data import save_minari

    episodes = [task_episode(rng, 4, t) for t in ("reach-left", None, "reach-right", "reach-left")]
    for path in (save_minari(episodes, tmp_path / "tasks-v0"), episodes_to_buffer(episodes).save(tmp_path / "r.npz")):
        back = load_episodes(path)
        assert [e.task for e in back] == ["reach-left", None, "reach-right", "reach-left"]
        np.testing.assert_array_equal(back[2].actions, episodes[2].actions)


def test_task_sampler_balances_tasks_and_draws_one_task_on_request(rng):
    episodes = [task_episode(rng, 9, "common") for _ in range(9)] + [task_episode(rng, 9, "rare")]
    buffer = episodes_to_buffer(episodes, sampler=TaskSampler())
    batch = buffer.sample(4000)
    rare = buffer.tasks.index("rare")
    assert np.mean(batch["task"] == rare) == pytest.approx(0.5, abs=0.03)  # uniform would give 0.1
    rare_rows = batch["task"] == rare
    rare_obs = np.concatenate([ep.observations[:-1] for ep in episodes[9:]])
    assert all((row == rare_obs).all(axis=1).any() for row in batch["obs"][rare_rows][:50])
    uniform = episodes_to_buffer(episodes)
    only = uniform.sample(500, sampler=uniform.task_sampler("rare"))
    assert set(only["task"].tolist()) == {rare} and len(uniform.sample(8)["obs"]) == 8
    with pytest.raises(KeyError, match=r"task\(s\) \['fly'\] not in this buffer"):
        uniform.task_sampler("fly")


def test_task_sampler_state_survives_save_and_refuses_untasked_data(rng, tmp_path):
    buffer = episodes_to_buffer([task_episode(rng, 5, "a"), task_episode(rng, 5, "b")], seed=3,
                                sampler=TaskSampler(only=(1,)))
    loaded = ReplayBuffer.load(buffer.save(tmp_path / "b.npz"))
    assert loaded.tasks == ["a", "b"] and isinstance(loaded.sampler, TaskSampler) and loaded.sampler.only == (1,)
    np.testing.assert_array_equal(loaded.sample(6)["obs"], buffer.sample(6)["obs"])
    plain = episodes_to_buffer([task_episode(rng, 5, None)], sampler=TaskSampler())
    with pytest.raises(ValueError, match="no stored transition has any task"):
        plain.sample(2)


def test_dict_observations_with_ragged_clouds_round_trip_through_replay(rng, tmp_path):
    episodes = [cloud_episode(rng, 5), cloud_episode(rng, 3)]
    assert episodes[0].is_ragged
    buffer = episodes_to_buffer(episodes)
    batch = buffer.sample(7)
    points, offsets, proprio = batch["obs"]["points"], batch["obs"]["points_offsets"], batch["obs"]["proprio"]
    assert points.shape[1] == 4 and offsets.shape == (8,) and offsets[-1] == len(points) and proprio.shape == (7, 6)
    back = load_episodes(buffer.save(tmp_path / "clouds.npz"))
    for a, b in zip(episodes, back, strict=True):
        assert b.task == a.task and len(b.observations["points"]) == len(a) + 1
        for p, q in zip(a.observations["points"], b.observations["points"], strict=True):
            np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(a.observations["proprio"], b.observations["proprio"])


def test_add_with_clouds_held_back_for_mc_return_survives_a_save(rng, tmp_path):
    buffer = ReplayBuffer(20, {"points": (None, 4), "proprio": (6,)}, 2, store_mc_return=True)
    def obs():
        return {"points": rng.normal(size=(int(rng.integers(1, 6)), 4)), "proprio": rng.normal(size=6)}
    first = obs()
    buffer.add(first, np.zeros(2), 1.0, obs(), False, False, task="t")
    loaded = ReplayBuffer.load(buffer.save(tmp_path / "pending.npz"))
    (episode,) = load_episodes(tmp_path / "pending.npz")
    np.testing.assert_allclose(episode.observations["points"][0], first["points"], rtol=1e-6)
    assert episode.task == "t" and loaded.tasks == ["t"]
    with pytest.raises(DataError, match=r"add: obs/points point cloud shape \(3, 2\), expected \(N, 4\)"):
        buffer.add({"points": np.zeros((3, 2)), "proprio": np.zeros(6)}, np.zeros(2), 0.0, obs(), False, False)
    with pytest.raises(DataError, match=r"add: key 'next_obs/points' index \(0, 0\): non-finite"):
        buffer.add(obs(), np.zeros(2), 0.0, {"points": np.full((2, 4), np.nan), "proprio": np.zeros(6)}, False, False)


def test_collect_writes_pixels_to_minari_and_clouds_to_replay(tmp_path, capsys):
    pixels = tmp_path / "pixels-v0"
    assert main(["collect", "--env", "robokit/ArmReach-v0", "--pixels", "--pixel-size", "16", "--frame-stack", "2",
                 "--episodes", "2", "--max-steps", "5", "--num-envs", "2", "--out", str(pixels)]) == 0
    episodes = load_episodes(pixels)
    assert episodes[0].observations.shape == (6, 2, 16, 16, 3) and episodes[0].observations.dtype == np.uint8
    clouds = tmp_path / "clouds.npz"
    assert main(["collect", "--env", "robokit/ArmReachCloud-v0", "--episodes", "2", "--max-steps", "4",
                 "--out", str(clouds)]) == 0
    assert "robokit replay file" in capsys.readouterr().out and (tmp_path / "clouds.config.yaml").is_file()
    loaded = load_episodes(clouds)
    assert loaded[0].is_ragged and loaded[0].observations["points"][0].shape[1] == 4


def test_collect_multitask_episodes_carry_their_task(tmp_path):
    out = tmp_path / "two-tasks-v0"
    assert main(["collect", "--env", "robokit/ArmReachMultiTask-v0", "--episodes", "6", "--max-steps", "3",
                 "--out", str(out)]) == 0
    episodes = load_episodes(out)
    assert {e.task for e in episodes} == {"reach-left", "reach-right"}
    for episode in episodes:  # the one-hot in the observation agrees with the stored task
        assert episode.observations["task"][0].argmax() == ["reach-left", "reach-right"].index(episode.task)


@pytest.mark.parametrize("args,message", [
    (["--env", "robokit/ArmReachCloud-v0", "--episodes", "1", "--max-steps", "2", "--out", "{tmp}/clouds-v0"],
     "observes point clouds of varying size"),
    (["--env", "robokit/ArmReach-v0", "--out", "{tmp}/data.hdf5"], "give a directory (Minari) or a .npz file"),
    (["--env", "robokit/ArmReach-v0", "--num-envs", "0", "--out", "{tmp}/x-v0"], "--num-envs must be > 0, got 0"),
    (["--env", "robokit/ArmReach-v0", "--pixels", "--frame-stack", "0", "--out", "{tmp}/x-v0"],
     "--frame-stack must be > 0, got 0"),
])
def test_collect_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["collect", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robokit collect: error:") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []
