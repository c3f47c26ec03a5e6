"""Uni-O4: losses against hand-computed numbers, OPE-gated behaviour replacement, the dynamics
ensemble on a known linear system, CLI runs offline -> online, resume after a kill, bad input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from robokit.algos import UniO4Config, load_agent, make_agent
from robokit.losses.unio4 import (
    asymmetric_weight,
    clipped_ratio_loss,
    diversity_bc_loss,
    mc_value_loss,
    sarsa_q_loss,
    standardise_advantage,
)
from robokit.nets.dynamics import EnsembleDynamics, termination_fn
from robokit.trainers.cli import train_main

HOPPER = "Hopper-v5"
TINY = ["--agent.hidden-dims", "16", "16", "--agent.value-hidden-dims", "16", "16", "--agent.q-hidden-dims", "16",
        "16", "--agent.dynamics-hidden-dims", "16", "16", "--agent.dynamics-max-epochs", "2",
        "--agent.offline-batch-size", "32", "--agent.ope-states", "16", "--agent.ope-horizon", "10",
        "--agent.n-steps", "64", "--agent.epochs", "2", "--agent.batch-size", "32",
        "--agent.start-eval-episodes", "1"]


def stages(critic: int, bc: int, improve: int, ope_every: int = 10) -> list[str]:
    return ["--offline-steps", str(critic + bc + improve), "--agent.critic-steps", str(critic), "--agent.bc-steps",
            str(bc), "--agent.improve-steps", str(improve), "--agent.ope-every", str(ope_every)]


@pytest.fixture(scope="module")
def hopper_dataset(tmp_path_factory):
    """25 episodes of uniform random actions in the real Hopper-v5 (a few hundred transitions)."""
    from robokit.data import save_minari
    from robokit.data.collect import collect_episodes

    episodes = collect_episodes(HOPPER, 25, seed=0, progress=False)
    return save_minari(episodes, tmp_path_factory.mktemp("hopper") / "random", env_id=HOPPER)


# ------------------------------------------------------------------------ losses
def test_diversity_bc_loss_matches_hand_computation():
    log_probs = torch.tensor([[-1.0, -2.0], [-3.0, -0.5], [-2.0, -4.0]], requires_grad=True)
    loss = diversity_bc_loss(log_probs, alpha=0.1)
    # member 0: rows (1 - 0.1 * (-1 + 2), 2 - 0.1 * (-2 + 0.5)) = (0.9, 2.15); member 1: (3.2, 0.35);
    # member 2: (2.1, 4.35); row means summed: 1.525 + 1.775 + 3.225
    assert loss.item() == pytest.approx(6.525)
    loss.backward()
    # the other members' log-probs are constants: d/d logp_k = -(1 + alpha) / B
    np.testing.assert_allclose(log_probs.grad.numpy(), np.full((3, 2), -1.1 / 2))
    assert diversity_bc_loss(log_probs, 0.0).item() == pytest.approx(12.5 / 2)


def test_clipped_ratio_objective_with_asymmetric_advantage_weighting():
    advantage = standardise_advantage(torch.tensor([[1.0, -1.0, 3.0]]))  # mean 1, unbiased std 2
    np.testing.assert_allclose(advantage.numpy(), [[0.0, -1.0, 1.0]], atol=1e-6)
    weighted = asymmetric_weight(advantage, omega=0.7)
    np.testing.assert_allclose(weighted.numpy(), [[0.0, -0.3, 0.7]], atol=1e-6)
    assert torch.equal(asymmetric_weight(advantage, 0.5), advantage)
    log_prob = torch.log(torch.tensor([[1.5, 0.5, 1.5]]))
    # ratios 1.5, 0.5, 1.5 -> clipped 1.2, 0.8, 1.2; min(rA, clip(r)A) = 0, -0.24, 0.84
    loss = clipped_ratio_loss(log_prob, torch.zeros(1, 3), weighted, clip_ratio=0.2)
    assert loss.item() == pytest.approx(-0.2, abs=1e-6)
    two = clipped_ratio_loss(log_prob.repeat(2, 1), torch.zeros(2, 3), weighted.repeat(2, 1), 0.2)
    assert two.item() == pytest.approx(-0.4, abs=1e-6)  # summed over members


def test_value_and_sarsa_regression_and_offline_fields():
    from robokit.algos.unio4 import OfflineData
    from robokit.data import Episode

    assert mc_value_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])).item() == pytest.approx(2.5)
    # targets r + 0.5 * not_done * Q'(s', a') = (1 + 0.5 * 2, 0) = (2, 0); errors 1 and 4
    loss = sarsa_q_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([1.0, 0.0]), torch.tensor([2.0, 5.0]),
                        torch.tensor([1.0, 0.0]), 0.5)
    assert loss.item() == pytest.approx(2.5)
    obs = np.arange(8, dtype=np.float32).reshape(4, 2)
    episode = Episode(obs, np.array([[0.1], [0.2], [0.3]], np.float32), np.array([1.0, 2.0, 4.0], np.float32),
                      [False, False, True], [False, False, False])
    data = OfflineData([episode], discount=0.5)
    np.testing.assert_allclose(data["mc_return"].numpy(), [1 + 0.5 * (2 + 0.5 * 4), 2 + 0.5 * 4, 4])
    np.testing.assert_allclose(data["next_action"].numpy().ravel(), [0.2, 0.3, 0.3])
    assert data["has_next"].tolist() == [1.0, 1.0, 0.0]
    np.testing.assert_array_equal(data["next_obs"].numpy(), obs[1:])


# ------------------------------------------------------------------------ OPE gate
def tiny_agent(**overrides):
    cfg = UniO4Config(hidden_dims=(8,), value_hidden_dims=(8,), q_hidden_dims=(8,), dynamics_hidden_dims=(8,),
                      num_policies=3, critic_steps=1, bc_steps=1, improve_steps=10, ope_every=5, **overrides)
    return make_agent("unio4", 4, 2, cfg, seed=0)


def test_ope_replaces_a_behaviour_policy_only_when_its_score_improves(monkeypatch):
    agent = tiny_agent()
    with torch.no_grad():
        for param in agent.policy.parameters():
            param.add_(1.0)  # members now differ from their behaviour policies
    before = [p.clone() for p in agent.behaviour.parameters()]
    agent.best_ope.copy_(torch.tensor([1.0, 5.0, 2.0]))
    monkeypatch.setattr(agent, "ope_scores", lambda: torch.tensor([3.0, 5.0, 1.0]))  # better, equal, worse
    metrics = agent.evaluate_and_replace()
    assert metrics["train/ope_replaced"] == 1.0
    assert agent.best_ope.tolist() == [3.0, 5.0, 2.0] and agent.replacements.tolist() == [1, 0, 0]
    for old, new, current in zip(before, agent.behaviour.parameters(), agent.policy.parameters(), strict=True):
        torch.testing.assert_close(new[0], current[0])  # member 0 improved: replaced
        torch.testing.assert_close(new[1:], old[1:])  # equal and worse scores: kept
    no_replace = tiny_agent(replace_behaviour=False)
    monkeypatch.setattr(no_replace, "ope_scores", lambda: torch.tensor([3.0, 5.0, 1.0]))
    untouched = [p.clone() for p in no_replace.behaviour.parameters()]
    no_replace.evaluate_and_replace()
    assert all(torch.equal(a, b) for a, b in zip(untouched, no_replace.behaviour.parameters(), strict=True))


def synthetic_data(rows: int = 120):
    from robokit.algos.unio4 import OfflineData
    from robokit.data import Episode

    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(rows // 20):
        episodes.append(Episode(rng.normal(size=(21, 4)).astype(np.float32),
                                rng.uniform(-1, 1, size=(20, 2)).astype(np.float32),
                                rng.normal(size=20).astype(np.float32), [False] * 19 + [True], [False] * 20))
    return OfflineData(episodes, 0.99)


@pytest.mark.parametrize("critic", ["iql", "sarsa"])
def test_each_stage_reaches_only_its_own_parameters(critic):
    agent = tiny_agent(critic=critic, dynamics_max_epochs=1, ope_horizon=3, ope_states=8, offline_batch_size=16)
    agent.data, agent.env_id = synthetic_data(), "HalfCheetah-v5"
    groups = {name: list(getattr(agent, name).parameters())
              for name in ("value", "critic", "target_critic", "bc", "policy", "behaviour", "actor")}
    expected = {0: {"value", "critic"}, 1: {"bc"}, 2: {"policy"}}  # critic, BC, improvement stages
    for stage, owners in expected.items():
        agent.zero_grad(set_to_none=True)
        before = {name: [p.detach().clone() for p in params] for name, params in groups.items()}
        metrics = agent.update({})
        assert metrics["train/stage"] == stage
        for name, params in groups.items():
            touched = any(p.grad is not None for p in params)
            moved = any(not torch.equal(a, b) for a, b in zip(before[name], params, strict=True))
            assert touched == (name in owners), (stage, name)
            if stage == 2 and name in ("value", "critic", "target_critic", "bc", "actor"):
                assert not moved, name  # improvement changes the members (and copies into behaviour) only
    assert all(not p.requires_grad for p in agent.target_critic.parameters())
    assert all(not p.requires_grad for p in agent.behaviour.parameters())


# ------------------------------------------------------------------------ dynamics
def test_dynamics_ensemble_fits_a_known_linear_system():
    rng = np.random.default_rng(0)
    a_mat = np.array([[0.9, 0.1, 0.0], [-0.1, 0.9, 0.2], [0.0, 0.0, 0.8]], np.float32)
    b_mat = np.array([[0.5, 0.0], [0.0, 0.3], [0.2, -0.2]], np.float32)
    obs = rng.normal(size=(3000, 3)).astype(np.float32)
    action = rng.uniform(-1, 1, size=(3000, 2)).astype(np.float32)
    next_obs = obs @ a_mat.T + action @ b_mat.T + 0.01 * rng.normal(size=(3000, 3)).astype(np.float32)
    reward = obs.sum(1) - action[:, 0]
    model = EnsembleDynamics(3, 2, hidden_dims=(32, 32), ensemble_size=4, num_elites=2)
    report = model.fit(obs, action, reward, next_obs, lr=3e-3, max_epochs=40, generator=torch.Generator().manual_seed(0))
    target_var = np.concatenate([next_obs - obs, reward[:, None]], 1).var(0).mean()
    assert report.elite_mse < 0.02 * target_var, (report, target_var)
    assert len(report.elites) == 2 and model.elites.tolist() == report.elites
    test_obs = torch.as_tensor(rng.normal(size=(200, 3)), dtype=torch.float32)
    test_act = torch.as_tensor(rng.uniform(-1, 1, size=(200, 2)), dtype=torch.float32)
    predicted, rewards, done = model.step(test_obs, test_act, termination_fn("HalfCheetah-v5"),
                                          torch.Generator().manual_seed(1))
    truth = test_obs @ torch.as_tensor(a_mat).T + test_act @ torch.as_tensor(b_mat).T
    assert (predicted - truth).abs().mean() < 0.1
    assert (rewards - (test_obs.sum(1) - test_act[:, 0])).abs().mean() < 0.2
    assert not done.any()


def test_dynamics_train_step_equals_adam_on_the_full_loss():
    """``train_step`` (fused Adam, the per-layer L2 term as Adam's weight decay) against the previous
    step, torch's default Adam on ``nll_loss`` (decay in the loss): same losses and parameters over 6
    steps. Decays are large here so a step that dropped or misplaced them would differ (checked)."""
    import copy

    torch.manual_seed(0)
    model = EnsembleDynamics(4, 2, hidden_dims=(16, 16), ensemble_size=3, num_elites=2,
                             weight_decays=(0.05, 0.1, 0.2))
    before, undecayed = copy.deepcopy(model), copy.deepcopy(model)
    before_opt = torch.optim.Adam(before.parameters(), lr=1e-2)
    optimizer, undecayed_opt = model.make_optimizer(lr=1e-2), torch.optim.Adam(undecayed.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        x, y = torch.randn(3, 32, 6, generator=gen), torch.randn(3, 32, 5, generator=gen)
        want = before.nll_loss(x, y)
        before_opt.zero_grad()
        want.backward()
        before_opt.step()
        decay = model.decay_loss().detach()
        got = model.train_step(x, y, optimizer) + decay
        undecayed.train_step(x, y, undecayed_opt)
        assert torch.allclose(got, want.detach(), rtol=1e-5, atol=1e-5), (got, want)
    for p_new, p_old in zip(model.parameters(), before.parameters(), strict=True):
        torch.testing.assert_close(p_new, p_old, rtol=1e-5, atol=1e-6)
    drift = max((p - q).abs().max().item() for p, q in zip(undecayed.parameters(), before.parameters(), strict=True))
    assert drift > 1e-4  # without the decay groups the parameters do differ: the comparison above can fail


def test_termination_functions_follow_the_env_rules():
    hopper = termination_fn("Hopper-v5")
    healthy = torch.zeros(2, 11)
    healthy[:, 0] = 1.25
    fallen = healthy.clone()
    fallen[1, 0] = 0.5
    assert hopper(healthy, torch.zeros(2, 3), healthy).tolist() == [False, False]
    assert hopper(healthy, torch.zeros(2, 3), fallen).tolist() == [False, True]
    with pytest.raises(KeyError, match="no termination function for env 'Pendulum-v1'"):
        termination_fn("Pendulum-v1")


# ------------------------------------------------------------------------ CLI runs
def test_cli_offline_to_online_run(tmp_path, hopper_dataset, capsys):
    out = tmp_path / "run"
    code = train_main(["--algo", "unio4", "--env", HOPPER, "--dataset", str(hopper_dataset), *stages(20, 20, 20),
                       "--online-steps", "128", "--eval-every", "0", "--eval-episodes", "1", "--out", str(out),
                       "--log-every", "10", "--logger", "csv", "--no-progress", *TINY])
    assert code == 0, capsys.readouterr().err
    agent = load_agent(out / "final.pt")
    assert 0 <= int(agent.start_member) < 4
    assert torch.isfinite(agent.ope_history[:3]).all() and agent.ope_history.shape == (3, 4)
    assert bool(agent.dynamics.fitted) and bool(agent.improve_started)
    header = (out / "metrics.csv").read_text().splitlines()[0]
    for key in ("losses/critic", "losses/bc", "losses/improve", "train/ope_0", "train/start_member", "losses/policy"):
        assert key in header
    # the online actor started from the chosen member and was then trained by PPO
    obs = np.random.default_rng(0).normal(size=(5, 11)).astype(np.float32)
    assert agent.act(obs).shape == (5, 3)


def test_cli_sarsa_critic_and_simulator_ope(tmp_path, hopper_dataset):
    code = train_main(["--algo", "unio4", "--env", HOPPER, "--dataset", str(hopper_dataset), *stages(10, 10, 10, 5),
                       "--online-steps", "0", "--eval-every", "0", "--eval-episodes", "1", "--out", str(tmp_path / "s"),
                       "--logger", "csv", "--no-progress", "--agent.critic", "sarsa", "--agent.ope-model", "simulator",
                       *TINY])
    assert code == 0
    agent = load_agent(tmp_path / "s" / "final.pt")
    assert agent.critic.ensemble_size == 1 and agent.omega == pytest.approx(0.7)
    assert not bool(agent.dynamics.fitted)  # the simulator replaced the learned model
    assert torch.isfinite(agent.ope_history).all()


def test_simulator_dynamics_reproduces_the_env_step():
    from robokit.envs import make_env
    from robokit.envs.simulator_dynamics import SimulatorDynamics

    env = make_env(HOPPER)
    obs, _ = env.reset(seed=3)
    action = np.array([0.3, -0.2, 0.5], np.float32)
    expected, reward, terminated, _, _ = env.step(action)
    sim = SimulatorDynamics(HOPPER)
    got, got_reward, done = sim.step(torch.as_tensor(obs[None], dtype=torch.float32), torch.as_tensor(action[None]))
    np.testing.assert_allclose(got.numpy()[0], expected, atol=1e-4)
    assert got_reward.item() == pytest.approx(reward, abs=1e-4) and bool(done[0]) == terminated


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, hopper_dataset, run_killed_and_resumed):
    """SIGKILL a CLI run in the improvement stage (after its dynamics fit); --resume gives the same
    metrics and final weights as an uninterrupted run."""
    args = ["--algo", "unio4", "--env", HOPPER, "--dataset", str(hopper_dataset), *stages(30, 30, 300, 10),
            "--online-steps", "0", "--eval-every", "0", "--eval-episodes", "1", "--checkpoint-every", "20",
            "--log-every", "10", "--logger", "csv", "--no-progress", "--seed", "3", *TINY,
            "--agent.ope-horizon", "30"]
    full, killed, stdout = run_killed_and_resumed(args, tmp_path, ("step_00000010*.pt",))
    assert "resumed from" in stdout
    rows = [list(csv.DictReader(open(run / "metrics.csv", newline=""))) for run in (full, killed)]
    assert rows[0] == rows[1]
    a, b = load_agent(full / "final.pt"), load_agent(killed / "final.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True, msg=name)


# ------------------------------------------------------------------------ bad input
def test_bad_input_gives_one_line_errors(tmp_path, hopper_dataset, capsys):
    import h5py

    broken = tmp_path / "no_terminals.hdf5"
    with h5py.File(broken, "w") as handle:
        handle["observations"] = np.zeros((10, 11), np.float32)
        handle["actions"] = np.zeros((10, 3), np.float32)
        handle["rewards"] = np.zeros(10, np.float32)
    base = ["--algo", "unio4", "--env", HOPPER, "--eval-episodes", "1", "--no-progress", "--logger", "csv", *TINY]
    assert train_main([*base, "--dataset", str(broken), *stages(2, 2, 2), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no_terminals.hdf5" in err and "terminals" in err and "Traceback" not in err
    assert not (tmp_path / "a" / "final.pt").exists()
    # the stage lengths must add up to --offline-steps
    assert train_main([*base, "--dataset", str(hopper_dataset), "--offline-steps", "7", "--out", str(tmp_path / "b")]) == 2
    assert "critic_steps + bc_steps + improve_steps" in capsys.readouterr().err
    # a policy with NaN parameters: fine-tuning from it stops with the module and member named
    good = tmp_path / "good"
    assert train_main([*base, "--dataset", str(hopper_dataset), *stages(2, 2, 0), "--online-steps", "0",
                       "--eval-every", "0", "--out", str(good)]) == 0
    from robokit.core.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(good / "final.pt")
    state["agent"]["modules"]["bc.mlp.net.0.weight"][2, 0, 0] = float("nan")
    save_checkpoint(tmp_path / "nan.pt", state)
    same_shapes = ["--agent.critic-steps", "2", "--agent.bc-steps", "2", "--agent.improve-steps", "0"]
    assert train_main([*base, *same_shapes, "--online-steps", "64", "--eval-every", "0", "--init-from",
                       str(tmp_path / "nan.pt"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robokit train: error: unio4: bc.mlp.net.0.weight has non-finite parameters (member(s) [2])")
    assert "\n" not in err


def test_dynamics_step_uses_the_picked_elite_of_each_row():
    model = EnsembleDynamics(3, 1, hidden_dims=(8,), ensemble_size=4, num_elites=3)
    model.elites.copy_(torch.tensor([3, 0, 2]))
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    pick = torch.randint(3, (50,), generator=torch.Generator().manual_seed(1))
    mean, logvar = model.elite_predictions(x, pick)
    full_mean, full_logvar = model(x)  # (E, B, O+1): every member on every row
    rows = torch.arange(50)
    torch.testing.assert_close(mean, full_mean[model.elites[pick], rows])
    torch.testing.assert_close(logvar, full_logvar[model.elites[pick], rows])
