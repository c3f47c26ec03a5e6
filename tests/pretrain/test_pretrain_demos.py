"""Expert demonstrations of the hidden-context envs: episodes, replay files, splits and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robokit.data import DataError, Episode, ReplayBuffer, StatePairView
from robokit.pretrain.demos import (
    context_task,
    episode_context,
    load_demos,
    make_demos,
    make_demos_main,
    parse_contexts,
    save_demos,
    split_by_context,
    success_rate,
)

ENV = "robokit/PointMassGoal-v0"


@pytest.fixture(scope="module")
def demos() -> list:
    return make_demos(ENV, [0, 5, 11], 2, seed=3, noise=0.1)


def test_demo_episodes_carry_images_state_actions_and_context(demos: list) -> None:
    assert [episode_context(e) for e in demos] == [0, 0, 5, 5, 11, 11]
    assert demos[2].task == context_task(ENV, 5) == "robokit/PointMassGoal-v0:context-5"
    for episode in demos:
        steps = len(episode)
        image, state = episode.observations["image"], episode.observations["state"]
        assert image.shape == (steps + 1, 64, 64, 3) and image.dtype == np.uint8
        assert state.shape == (steps + 1, 6) and state.dtype == np.float32
        assert episode.actions.shape == (steps, 2) and np.abs(episode.actions).max() <= 1.0
        assert (episode.infos["context"] == episode_context(episode)).all()
        # the state's goal is the context's, the same at every step
        assert np.allclose(state[:, 4:], state[0, 4:])
        assert episode.is_terminated == bool(episode.infos["success"][-1])
    goals = {episode_context(e): tuple(e.observations["state"][0, 4:].round(4)) for e in demos}
    assert len(set(goals.values())) == 3
    assert success_rate(demos) == 1.0


def test_make_demos_is_reproducible_and_per_context_independent(demos: list) -> None:
    again = make_demos(ENV, [5], 2, seed=3, noise=0.1)  # context 5 alone gives the same episodes
    for a, b in zip(demos[2:4], again, strict=True):
        assert np.array_equal(a.observations["image"], b.observations["image"])
        assert np.array_equal(a.actions, b.actions)
    other = make_demos(ENV, [5], 1, seed=4, noise=0.1)[0]
    assert not np.array_equal(other.observations["image"][0], demos[2].observations["image"][0])


def test_save_and_load_round_trip_in_the_replay_format(demos: list, tmp_path: Path) -> None:
    path = save_demos(demos, tmp_path / "demos.npz")
    loaded = load_demos(path)
    assert len(loaded) == len(demos)
    for a, b in zip(demos, loaded, strict=True):
        assert a.task == b.task
        for key in ("image", "state"):
            assert np.array_equal(a.observations[key], b.observations[key])
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
        assert np.array_equal(a.terminated, b.terminated) and np.array_equal(a.truncated, b.truncated)
        for key in ("success", "context"):
            assert np.array_equal(a.infos[key], b.infos[key])
    buffer = ReplayBuffer.load(path)  # the file is a plain robokit replay buffer
    assert buffer.obs_dtype["image"] == np.uint8 and len(buffer.tasks) == 3
    pairs = buffer.sample(8, view=StatePairView(k=2), sampler=buffer.task_sampler(context_task(ENV, 5)))
    assert pairs["obs"]["image"].shape == (8, 64, 64, 3) and pairs["future_obs"]["image"].dtype == np.uint8
    assert np.allclose(pairs["obs"]["state"][:, 4:], demos[2].observations["state"][0, 4:])
    with pytest.raises(FileExistsError, match="already exists"):
        save_demos(demos, path)


def test_split_by_context(demos: list) -> None:
    corpus, held = split_by_context(demos, [5])
    assert [episode_context(e) for e in corpus] == [0, 0, 11, 11]
    assert [episode_context(e) for e in held] == [5, 5]


@pytest.mark.parametrize(("call", "match"), [
    (lambda: make_demos("robokit/ArmReach-v0", [0], 1), "has no scripted expert"),
    (lambda: make_demos(ENV, [12], 1), "unknown context 12; contexts are 0..11"),
    (lambda: make_demos(ENV, [], 1), "--contexts is empty"),
    (lambda: make_demos(ENV, [1, 1], 1), r"repeats context\(s\) \[1\]"),
    (lambda: make_demos(ENV, [1], 0), "--episodes-per-context must be a positive integer"),
    (lambda: make_demos(ENV, [1], 1, noise=-0.5), "--noise must be >= 0"),
    (lambda: parse_contexts("0-x", 12), "cannot read '0-x'"),
    (lambda: parse_contexts("3,14", 12), "context 14 does not exist"),
])
def test_bad_requests_are_named(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_parse_contexts() -> None:
    assert parse_contexts("all", 4) == [0, 1, 2, 3]
    assert parse_contexts("0-2, 7", 8) == [0, 1, 2, 7]
    assert parse_contexts("", 8) == []


def test_load_refuses_files_that_are_not_demos(tmp_path: Path) -> None:
    from robokit.data.formats import save_episodes

    plain = Episode(np.zeros((3, 4), np.float32), np.zeros((2, 2)), np.zeros(2), [0, 0], [0, 1])
    path = save_episodes([plain], tmp_path / "plain.npz")
    with pytest.raises(DataError, match=r"plain.npz: episode 0: observations ndarray, expected a dict"):
        load_demos(path)
    with pytest.raises(DataError, match="no such replay file"):
        load_demos(tmp_path / "missing.npz")
    images = {"image": np.zeros((3, 8, 8, 3), np.uint8), "state": np.zeros((3, 6), np.float32)}
    untasked = Episode(images, np.zeros((2, 2)), np.zeros(2), [0, 0], [0, 1], task="reach-left")
    with pytest.raises(DataError, match="task 'reach-left' is not a hidden-context demo"):
        save_demos([untasked], tmp_path / "x.npz")


def test_save_refuses_mixed_frame_sizes_and_nothing_to_write(demos: list, tmp_path: Path) -> None:
    obs = {"image": np.zeros((3, 32, 32, 3), np.uint8), "state": np.zeros((3, 6), np.float32)}
    small = Episode(obs, np.zeros((2, 2)), np.zeros(2), [0, 0], [0, 1], task=context_task(ENV, 1))
    with pytest.raises(DataError, match=r"episode 1: observations/image per step is \(32, 32, 3\), episode 0's is "
                                        r"\(64, 64, 3\)"):
        save_demos([demos[0], small], tmp_path / "mixed.npz")
    with pytest.raises(ValueError, match="no episodes to write"):
        save_demos([], tmp_path / "empty.npz")
    assert not (tmp_path / "mixed.npz").exists() and not (tmp_path / "empty.npz").exists()


def test_cli_writes_demos_without_the_held_out_context(tmp_path: Path, capsys) -> None:
    out = tmp_path / "corpus.npz"
    code = make_demos_main(["--out", str(out), "--contexts", "0-2", "--held-out", "1",
                            "--episodes-per-context", "1", "--seed", "5"])
    assert code == 0
    assert sorted(episode_context(e) for e in load_demos(out)) == [0, 2]
    assert "2 episodes" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "match"), [
    (["--contexts", "0-40"], "--contexts: context 12 does not exist; contexts are 0..11"),
    (["--env", "robokit/ArmReach-v0"], "--env 'robokit/ArmReach-v0' has no scripted expert"),
    (["--episodes-per-context", "0"], "--episodes-per-context must be > 0"),
    (["--held-out", "zero"], "--held-out: cannot read 'zero'"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(argv: list, match: str, tmp_path: Path,
                                                             capsys) -> None:
    out = tmp_path / "d.npz"
    assert make_demos_main(["--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robokit pretrain make-demos: error: ") and match in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_refuses_to_overwrite_and_non_npz(tmp_path: Path, capsys) -> None:
    out = tmp_path / "d.npz"
    out.write_bytes(b"old")
    assert make_demos_main(["--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"old"
    assert make_demos_main(["--out", str(tmp_path / "d.hdf5")]) == 2
    assert "give a .npz path" in capsys.readouterr().err
