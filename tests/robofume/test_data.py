"""robokit/robofume/data.py: RoboFuME's datasets written, read back, and refused on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robokit.robofume.data import (
    load_failures,
    load_robofume_data,
    make_data_main,
    make_robofume_data,
    reward_examples,
)

PUSH = "robokit/PushBackForth-v0"


@pytest.fixture(scope="module")
def push_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("robofume") / "push"
    paths = make_robofume_data(PUSH, root, prior_tasks_demos=1, target_demos=2, failures=6, seed=0, progress=False)
    return paths, load_robofume_data(root)


def test_round_trip_has_the_asked_demos_tagged_with_instructions(push_data):
    paths, data = push_data
    assert {p.name for p in paths["root"].iterdir()} == {"manifest.json", "prior", "target_forward",
                                                          "target_backward", "failures.npz"}
    manifest = data.manifest
    forward, backward = manifest["forward"], manifest["backward"]
    assert [ep.task for ep in data.target_forward] == [forward] * 2
    assert [ep.task for ep in data.target_backward] == [backward] * 2
    assert sorted(ep.task for ep in data.prior) == sorted(manifest["prior_instructions"])
    assert forward not in manifest["prior_instructions"] and backward not in manifest["prior_instructions"]
    for episode in data.prior + data.target_forward + data.target_backward:
        index = manifest["instructions"].index(episode.task)
        obs = episode.observations
        assert obs["image"].shape == (len(episode) + 1, 64, 64, 3) and obs["image"].dtype == np.uint8
        assert (obs["task"].argmax(axis=1) == index).all()
        # a demo ends on its first success, with the oracle reward there and nowhere else
        assert episode.is_terminated and episode.infos["success"][-1] and not episode.infos["success"][:-1].any()
        assert episode.rewards.tolist() == [0.0] * (len(episode) - 1) + [1.0]
    rates = manifest["expert_success"]
    assert rates[forward]["successes"] >= 2 and 0 < rates[forward]["rate"] <= 1


def test_failure_frames_are_failures_by_the_simulator_state(push_data):
    from robokit.envs.reset_free import PushBackForthEnv

    _, data = push_data
    failures = data.failures
    assert failures["images"].shape == (6, 64, 64, 3) and failures["images"].dtype == np.uint8
    assert failures["labels"].tolist() == [0] * 6
    assert sorted(set(failures["instructions"])) == sorted([data.manifest["forward"], data.manifest["backward"]])
    env = PushBackForthEnv()
    for text, state in zip(failures["instructions"], failures["state"], strict=True):
        block = state[4:6]  # the privileged state's puck xy: outside the instruction's zone
        assert np.linalg.norm(block - env.zones[str(text)]) >= env.SUCCESS_RADIUS
    positives, negatives = reward_examples(data)
    assert positives[0].shape == (4, 64, 64, 3) and len(positives[1]) == 4
    assert negatives[0].shape == (6, 64, 64, 3) and negatives[1] == [str(t) for t in failures["instructions"]]


def test_same_seed_same_data_and_existing_output_refused(tmp_path):
    def make(name: str, seed: int):
        make_robofume_data(PUSH, tmp_path / name, prior_tasks_demos=0, target_demos=1, failures=2, seed=seed,
                           progress=False)
        return load_robofume_data(tmp_path / name)

    first, again = make("a", 1), make("b", 1)
    np.testing.assert_array_equal(first.target_forward[0].observations["image"],
                                  again.target_forward[0].observations["image"])
    np.testing.assert_array_equal(first.failures["images"], again.failures["images"])
    assert not (tmp_path / "a" / "prior").exists() and first.prior == []
    before = (tmp_path / "a" / "manifest.json").read_text()
    with pytest.raises(FileExistsError, match="already exists"):
        make("a", 2)
    assert (tmp_path / "a" / "manifest.json").read_text() == before


@pytest.mark.parametrize("argv, message", [
    (["--target-demos", "0"], "--target-demos must be > 0"),
    (["--failures", "-1"], "--failures must be >= 0"),
    (["--reset-every", "0"], "--reset-every must be > 0"),
    (["--env", "robokit/ArmReach-v0"], "is not a reset-free task pair"),
    (["--env", "robokit/NoSuchEnv-v0"], "cannot make env 'robokit/NoSuchEnv-v0'"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "data"
    assert make_data_main(["--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robokit robofume make-data: error:") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_an_existing_out(tmp_path, capsys):
    assert make_data_main(["--out", str(tmp_path)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_loader_names_the_broken_file(tmp_path):
    from robokit.data.errors import DataError

    with pytest.raises(DataError, match="manifest.json: missing"):
        load_robofume_data(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(DataError, match="key 'format' is 'other'"):
        load_robofume_data(tmp_path)
    np.savez(tmp_path / "failures.npz", images=np.zeros((2, 8, 8, 3), np.float32), instructions=np.array(["a", "b"]),
             labels=np.zeros(2))
    with pytest.raises(DataError, match="key 'images': expected"):
        load_failures(tmp_path / "failures.npz")
