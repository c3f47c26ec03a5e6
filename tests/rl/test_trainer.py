"""Trainer phase machine, CLI, checkpoints and resume, on the real ArmReach MuJoCo env."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from robokit.algos import ALGOS, load_agent
from robokit.trainers.cli import eval_main, split_algo, train_main
from robokit.trainers.trainer import config_class_for, train, truncate_metrics

ENV_ID = "robokit/ArmReach-v0"


def tiny_agent(algo: str, **extra):
    cls, _ = ALGOS.get(algo)
    fields = {"hidden_dims": (16, 16), "batch_size": 16, "warmup_steps": 30}
    if "ensemble_size" in cls.__dataclass_fields__ and algo in ("rlpd", "wsrl"):
        fields.update(ensemble_size=3, utd_ratio=2)
    if "cql_n_actions" in cls.__dataclass_fields__:
        fields["cql_n_actions"] = 2
    if algo == "ppo":
        fields.update(n_steps=32, epochs=2)
    fields.update(extra)
    return cls(**fields)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


OFFLINE = {"sac": 0, "rlpd": 0, "cql": 20, "calql": 20, "iql": 20, "wsrl": 20, "bc": 20, "ppo": 0}


@pytest.mark.parametrize("algo", sorted(OFFLINE))
def test_each_algorithm_runs_end_to_end(algo, arm_dataset, tmp_path):
    needs_data = OFFLINE[algo] > 0 or algo == "rlpd"
    cfg = config_class_for(algo)(env=ENV_ID, dataset=arm_dataset if needs_data else None,
                                 offline_steps=OFFLINE[algo], online_steps=100, seed=1, out=tmp_path / algo,
                                 logger=("csv",), eval_every=50, eval_episodes=2, log_every=10,
                                 checkpoint_every=40, progress=False, sparse_reward_failure_value=0.0,
                                 agent=tiny_agent(algo))
    summary = train(algo, cfg)
    run_dir = tmp_path / algo
    for name in ("final.pt", "metrics.csv", "config.yaml", "learning_curve.png"):
        assert (run_dir / name).exists(), name
    rows = read_rows(run_dir / "metrics.csv")
    keys = set().union(*[{k for k, v in row.items() if v} for row in rows])
    assert {"eval/return_mean", "eval/return_std", "eval/success_rate", "train/episode_return"} <= keys
    assert any(k.startswith("losses/") for k in keys)
    agent = load_agent(run_dir / "final.pt")
    if algo == "ppo":  # rollouts of 32, 32, 32, 4 steps; minibatches of 16; 2 epochs
        assert agent.num_updates == (2 + 2 + 2 + 1) * 2
    else:  # the phase machine: one update per offline step and per online step after the warm-up
        assert agent.num_updates == OFFLINE[algo] + (100 - 30)
    assert agent.act(np.zeros(12, np.float32)).shape == (2,)
    eval_rows = [r for r in rows if r.get("eval/return_mean")]
    assert summary["final_return"] == pytest.approx(float(eval_rows[-1]["eval/return_mean"]))
    evals = [(int(float(r["eval/offline_steps"])), int(float(r["eval/env_steps"]))) for r in eval_rows]
    offline = OFFLINE[algo]
    expected_offline = [(s, 0) for s in range(50, offline, 50)]  # every 50 offline steps, then the end
    assert evals == expected_offline + [(offline, 0), (offline, 50), (offline, 100)]


def test_warmup_uses_no_updates_and_policy_actions(arm_dataset, tmp_path):
    cfg = config_class_for("wsrl")(env=ENV_ID, dataset=arm_dataset, offline_steps=10, online_steps=40,
                                   out=tmp_path / "w", logger=("csv",), eval_every=0, eval_episodes=1,
                                   progress=False, sparse_reward_failure_value=0.0,
                                   agent=tiny_agent("wsrl", warmup_steps=40))
    train("wsrl", cfg)
    agent = load_agent(tmp_path / "w" / "final.pt")
    assert agent.num_updates == 10  # offline only: 40 warm-up steps, no online updates


def test_same_seed_same_metrics(tmp_path):
    def run(name, seed):
        cfg = config_class_for("sac")(env=ENV_ID, online_steps=120, seed=seed, out=tmp_path / name,
                                      logger=("csv",), eval_every=60, eval_episodes=2, log_every=20,
                                      progress=False, agent=tiny_agent("sac"))
        train("sac", cfg)
        return read_rows(tmp_path / name / "metrics.csv")

    assert run("a", 0) == run("b", 0)
    assert run("a2", 0) != run("c", 1)


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, run_killed_and_resumed):
    """Kill a CLI run with SIGKILL after its first online checkpoint; --resume reproduces the
    uninterrupted run exactly (metrics and final weights)."""
    args = ["--algo", "sac", "--env", ENV_ID, "--online-steps", "1500", "--seed", "4", "--logger", "csv",
            "--eval-every", "500", "--eval-episodes", "2", "--checkpoint-every", "300", "--log-every", "100",
            "--no-progress", "--agent.hidden-dims", "16", "16", "--agent.batch-size", "16",
            "--agent.warmup-steps", "100"]
    full, killed, stdout = run_killed_and_resumed(args, tmp_path, ("step_0000006*.pt", "step_0000007*.pt"))
    assert "resumed from" in stdout
    assert read_rows(full / "metrics.csv") == read_rows(killed / "metrics.csv")
    obs = np.random.default_rng(0).normal(size=(8, 12)).astype(np.float32)
    np.testing.assert_array_equal(load_agent(full / "final.pt").act(obs), load_agent(killed / "final.pt").act(obs))


def test_dataset_recipe_writes_medium_replay_and_medium(tmp_path):
    from robokit.data import load_episodes

    cfg = config_class_for("sac")(env=ENV_ID, online_steps=130, out=tmp_path / "run", logger=("csv",),
                                  eval_every=0, eval_episodes=1, progress=False, agent=tiny_agent("sac"),
                                  save_datasets=tmp_path / "ds", dataset_episodes=3)
    summary = train("sac", cfg)
    replay = load_episodes(summary["datasets"]["medium-replay"])
    medium = load_episodes(summary["datasets"]["medium"])
    assert sum(len(ep) for ep in replay) == 130
    assert len(medium) == 3 and all(ep.is_terminated or ep.is_truncated for ep in medium)
    assert replay[-1].is_terminated or replay[-1].is_truncated
    assert (tmp_path / "ds" / "README.md").exists()


def test_cli_help_errors_and_eval_with_video(tmp_path, capsys):
    assert train_main(["--help"]) == 0
    assert "--algo" in capsys.readouterr().out
    assert train_main(["--env", ENV_ID]) == 2
    assert train_main(["--algo", "nope"]) == 2
    with pytest.raises(SystemExit) as exc:
        train_main(["--algo", "wsrl", "--help"])
    assert exc.value.code == 0
    assert "--agent.utd-ratio" in capsys.readouterr().out
    assert split_algo(["--algo=iql", "--seed", "3"]) == ("iql", ["--seed", "3"])
    assert train_main(["--algo", "sac", "--env", ENV_ID, "--online-steps", "60", "--out", str(tmp_path / "r"),
                       "--logger", "csv", "--eval-episodes", "1", "--no-progress", "--agent.hidden-dims", "8", "8",
                       "--agent.batch-size", "8", "--agent.warmup-steps", "20"]) == 0
    video = tmp_path / "episode.gif"
    try:
        code = eval_main(["--checkpoint", str(tmp_path / "r" / "final.pt"), "--episodes", "2",
                          "--render-video", str(video)])
    except Exception as err:  # no EGL on this machine
        pytest.skip(f"offscreen rendering unavailable: {err}")
    assert code == 0 and video.stat().st_size > 0
    assert "eval/return_mean" in capsys.readouterr().out
    assert eval_main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert train_main(["--algo", "cql", "--env", ENV_ID, "--offline-steps", "5", "--out", str(tmp_path / "q")]) == 2
    assert "--dataset" in capsys.readouterr().err


def test_offline_algorithms_need_a_dataset_and_matching_actions(tmp_path, arm_dataset):
    cfg = config_class_for("cql")(env=ENV_ID, offline_steps=5, out=tmp_path / "x", logger=("csv",),
                                  progress=False, agent=tiny_agent("cql"))
    with pytest.raises(ValueError, match="need --dataset"):
        train("cql", cfg)
    wrong = config_class_for("cql")(env="Hopper-v5", dataset=arm_dataset, offline_steps=5, out=tmp_path / "y",
                                    logger=("csv",), progress=False, agent=tiny_agent("cql"))
    with pytest.raises(ValueError, match=str(arm_dataset.name)):
        train("cql", wrong)


def test_truncate_metrics_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,a\n1,0.5\n5,0.7\n9,0.9\n")
    truncate_metrics(path, 5)
    assert path.read_text().split() == ["step,a", "1,0.5", "5,0.7"]


def test_reward_scale_and_bias_apply_to_offline_and_online_data(arm_dataset, tmp_path):
    from robokit.trainers.trainer import Trainer

    cfg = config_class_for("calql")(env=ENV_ID, dataset=arm_dataset, offline_steps=0, online_steps=60,
                                    out=tmp_path / "s", logger=("csv",), eval_every=0, eval_episodes=1,
                                    progress=False, reward_scale=10.0, reward_bias=-5.0,
                                    sparse_reward_failure_value=-5.0, agent=tiny_agent("calql", warmup_steps=60))
    trainer = Trainer("calql", cfg)
    offline = trainer.offline_buffer.sample(512)
    assert set(np.unique(offline["reward"])) <= {-5.0, 5.0}
    # failed episodes get Cal-QL's failure return -5 / (1 - 0.99) = -500 at every step
    failed = offline["reward"] == -5.0
    assert np.isclose(offline["mc_return"][failed], -500.0).any()
    trainer.run()
    online = trainer.online_buffer.sample(64)
    assert set(np.unique(online["reward"])) <= {-5.0, 5.0}
    rows = read_rows(tmp_path / "s" / "metrics.csv")
    assert {float(r["train/episode_return"]) for r in rows if r.get("train/episode_return")} <= {0.0, 1.0}


def test_evaluation_schedule_across_phases(arm_dataset, tmp_path):
    cfg = config_class_for("bc")(env=ENV_ID, dataset=arm_dataset, offline_steps=60, online_steps=60,
                                 out=tmp_path / "e", logger=("csv",), eval_every=25, eval_episodes=1,
                                 progress=False, agent=tiny_agent("bc", warmup_steps=0))
    train("bc", cfg)
    rows = [r for r in read_rows(tmp_path / "e" / "metrics.csv") if r.get("eval/return_mean")]
    schedule = [(int(float(r["eval/offline_steps"])), int(float(r["eval/env_steps"]))) for r in rows]
    assert schedule == [(25, 0), (50, 0), (60, 0), (60, 25), (60, 50), (60, 60)]
    assert [int(r["step"]) for r in rows] == [25, 50, 60, 85, 110, 120]


def test_every_utd_minibatch_holds_the_offline_share(arm_dataset, tmp_path, monkeypatch):
    """RLPD's config (UTD 20, 50/50): each of the 20 critic minibatches and the actor's batch holds
    exactly round(0.5 x b) offline rows (RLPD's code interleaves offline and online rows)."""
    from robokit.algos import RLPDConfig
    from robokit.trainers.trainer import Trainer

    agent_cfg = RLPDConfig(hidden_dims=(16, 16), batch_size=10, ensemble_size=3, warmup_steps=20)
    assert (agent_cfg.utd_ratio, agent_cfg.offline_fraction) == (20, 0.5)
    cfg = config_class_for("rlpd")(env=ENV_ID, dataset=arm_dataset, online_steps=23, out=tmp_path / "r",
                                   logger=("csv",), eval_every=0, eval_episodes=1, progress=False,
                                   agent=agent_cfg)
    trainer = Trainer("rlpd", cfg)
    seen = {"critic": [], "actor": []}
    for name in seen:
        original = getattr(trainer.agent, f"update_{name}")

        def record(part, original=original, name=name):
            seen[name].append((int(part["is_offline"].sum()), len(part["obs"])))
            return original(part)

        monkeypatch.setattr(trainer.agent, f"update_{name}", record)
    trainer.run()
    assert seen["critic"] == [(5, 10)] * 20 * 3  # 3 online updates after the 20-step warm-up
    assert seen["actor"] == [(5, 10)] * 3
