"""``robokit robofume pretrain|finetune`` end to end on the contract env, and their bad-input errors."""

from __future__ import annotations

import json

import pytest
from robofume_contract_env import ENV_ID, scripted_episodes

from robokit.algos import load_agent
from robokit.cli import main
from robokit.data import save_minari

SMALL_AGENT = ["--agent.batch-size", "8", "--agent.hidden-dims", "16", "16", "--agent.cql-n-actions", "2",
               "--agent.encoder.cnn-filters", "4", "--agent.encoder.cnn-layers", "2", "--agent.encoder.feature-dim", "8"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("robofume_data")
    forward = save_minari(scripted_episodes(0, 4, seed=1), root / "target_forward")
    backward = save_minari(scripted_episodes(1, 4, seed=2), root / "target_backward")
    return [str(forward), str(backward)]


def test_pretrain_then_finetune_with_the_oracle(tmp_path, datasets, capsys):
    pre = tmp_path / "pre"
    assert main(["robofume", "pretrain", "--datasets", *datasets, "--steps", "6", "--log-every", "3",
                 "--out", str(pre), "--no-progress", "--logger", "csv", *SMALL_AGENT]) == 0
    agent = load_agent(pre / "final.pt")
    assert agent.name == "robofume" and agent.num_updates == 6
    assert "losses/bc" in (pre / "metrics.csv").read_text().splitlines()[0]
    out = tmp_path / "ft"
    assert main(["robofume", "finetune", "--env", ENV_ID, "--pretrained", str(pre / "final.pt"),
                 "--reward-model", "oracle", "--datasets", datasets[0], "--online-steps", "20", "--eval-every", "10",
                 "--eval-episodes", "1", "--out", str(out), "--no-progress", "--logger", "csv"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 20 and summary["reward_fp"] == 0 and summary["hard_resets"] >= 1
    assert "finetune (calql)" in capsys.readouterr().out
    # resuming the finished pretraining with more steps continues from its checkpoint
    assert main(["robofume", "pretrain", "--datasets", *datasets, "--steps", "8", "--out", str(pre), "--resume",
                 "--no-progress", "--logger", "none", *SMALL_AGENT]) == 0
    assert load_agent(pre / "final.pt").num_updates == 8


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--datasets", "/nonexistent/prior"], "/nonexistent/prior"),
    (["pretrain"], "--datasets"),
    (["pretrain", "--algo", "iql", "--datasets", "x"], "unknown --algo 'iql'"),
    (["finetune", "--env", ENV_ID], "--pretrained is required"),
    (["finetune", "--env", ENV_ID, "--pretrained", "/nonexistent/final.pt"], "/nonexistent/final.pt"),
    (["nonsense"], "unknown command 'nonsense'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["robofume", *argv, "--out", str(out)] if argv[0] != "nonsense" else ["robofume", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_missing_reward_model_is_refused_before_anything_is_written(tmp_path, datasets, capsys):
    pre = tmp_path / "pre"
    assert main(["robofume", "pretrain", "--datasets", datasets[0], "--steps", "1", "--out", str(pre),
                 "--no-progress", "--logger", "none", *SMALL_AGENT]) == 0
    out = tmp_path / "ft"
    assert main(["robofume", "finetune", "--env", ENV_ID, "--pretrained", str(pre / "final.pt"), "--reward-model",
                 str(tmp_path / "missing_model"), "--out", str(out)]) == 2
    assert "missing_model" in capsys.readouterr().err and not out.exists()


def test_a_make_data_folder_stands_for_its_parts(tmp_path, datasets):
    import shutil

    from robokit.robofume.pretrain import expand_datasets, load_offline_data

    root = tmp_path / "made"
    root.mkdir()
    (root / "manifest.json").write_text("{}")
    shutil.copytree(datasets[0], root / "target_forward")
    shutil.copytree(datasets[1], root / "target_backward")
    assert expand_datasets([root]) == [root / "target_forward", root / "target_backward"]
    buffer, _, _ = load_offline_data([root], discount=0.99)
    assert buffer.tasks == ["move right", "move left"] and buffer.store_mc_return
