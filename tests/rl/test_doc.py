"""DoC, DT, RCSL and tabular DoC: loss terms by hand, padding, latent choice, the bandit trap,
save/load, history-conditioned acting, bad input, and `robokit train --algo doc|dt|rcsl`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robokit.algos import DT, RCSL, DoC, DoCConfig, DTConfig, RCSLConfig, load_agent, save_agent
from robokit.algos.doc import select_latent
from robokit.algos.sequence import EpisodeContext
from robokit.algos.tabular import TabularConfig, TabularDoC, TabularDT, return_bins
from robokit.losses.doc import (
    gaussian_kl,
    info_nce,
    masked_mse,
    reverse_gradient,
    weighted_info_nce,
)

OBS, ACT = 3, 2
TINY = {"hidden": 16, "batch_size": 8, "context_length": 3, "max_timestep": 20, "dropout": 0.0}


# ---------------------------------------------------------------- loss terms
def test_masked_mse_counts_real_steps_only():
    pred = torch.tensor([[[1.0, 1.0], [3.0, 0.0]], [[0.0, 2.0], [100.0, -100.0]]])  # (B=2, L=2, D=2)
    target = torch.zeros(2, 2, 2)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # real steps: mean over D of squares = 1, 4.5, 2 -> mean 7.5 / 3 = 2.5; the padded (100, -100) is ignored
    assert masked_mse(pred, target, mask).item() == pytest.approx(2.5)
    assert masked_mse(pred[..., 0], target[..., 0], mask).item() == pytest.approx((1 + 9 + 0) / 3)


def test_gaussian_kl_by_hand():
    zero = torch.zeros(1, 1)
    # KL(N(1, 1) || N(0, 1)) = 1/2
    assert gaussian_kl(torch.ones(1, 1), zero, zero, zero).item() == pytest.approx(0.5)
    # KL(N(0, e) || N(0, 1)) = (e - 1 - 1) / 2 ; two dims are summed
    kl = gaussian_kl(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    assert kl.item() == pytest.approx(2 * 0.5 * (math.e - 2.0))
    # KL(N(0, 1) || N(2, e^2)): 0.5 * (e^-2 + 4 e^-2 - 1 + 2)
    kl = gaussian_kl(zero, zero, torch.full((1, 1), 2.0), torch.full((1, 1), 2.0))
    assert kl.item() == pytest.approx(0.5 * (5 * math.exp(-2) + 1))


def test_info_nce_by_hand():
    energies = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    # row 0: -2 + log(e^2 + 1); row 1: -1 + log(2 e)
    expected = 0.5 * ((-2 + math.log(math.exp(2) + 1)) + (-1 + math.log(2 * math.e)))
    assert info_nce(energies).item() == pytest.approx(expected)
    assert info_nce(torch.zeros(4, 4)).item() == pytest.approx(math.log(4))  # no information: log B
    with pytest.raises(ValueError, match="B, B"):
        info_nce(torch.zeros(2, 3))


def test_weighted_info_nce_by_hand():
    positive = torch.tensor([1.0])
    candidates = torch.tensor([[1.0, 0.0]])
    weights = torch.tensor([0.25, 0.75])
    expected = -1.0 + math.log(0.25 * math.e + 0.75)
    assert weighted_info_nce(positive, candidates, weights).item() == pytest.approx(expected)


def test_reverse_gradient_flips_the_sign_only_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = reverse_gradient(x)
    assert torch.equal(y, x.detach())
    (3 * y).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-3.0, -3.0]))


# ----------------------------------------------------------- windows, latents
def window_batch(rows: int = 4, length: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(rows, length)
    mask[0, 1:] = 0.0  # the first row's episode ended after one step
    return {"obs": torch.randn(rows, length, OBS, generator=g), "action": torch.rand(rows, length, ACT, generator=g),
            "reward": torch.randn(rows, length, generator=g), "next_obs": torch.randn(rows, length, OBS, generator=g),
            "mc_return": torch.randn(rows, length, generator=g), "timestep": torch.arange(length).repeat(rows, 1),
            "mask": mask}


def test_dt_puts_no_loss_on_padding():
    agent = DT(DTConfig(**TINY), OBS, ACT, seed=0)
    batch = window_batch()
    loss = masked_mse(agent.forward_actions(batch), batch["action"], batch["mask"])
    poisoned = {key: value.clone() for key, value in batch.items()}
    for key in ("obs", "action", "mc_return", "reward"):
        poisoned[key][0, 1:] = 1e3  # padded steps: any value must leave the loss unchanged
    agent.eval()
    again = masked_mse(agent.forward_actions(poisoned), poisoned["action"], poisoned["mask"])
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)


def test_select_latent_picks_highest_or_closest_value():
    values = torch.tensor([[0.1, 0.9, 0.5], [2.0, -1.0, 0.0]])
    latents = torch.arange(6, dtype=torch.float32).reshape(2, 3, 1)
    assert select_latent(values, latents).flatten().tolist() == [1.0, 3.0]
    assert select_latent(values, latents, target=0.45).flatten().tolist() == [2.0, 5.0]


def test_doc_acts_on_the_highest_value_prior_sample():
    agent = DoC(DoCConfig(**TINY, future_length=2, latent_dim=2, num_samples=7), OBS, ACT, seed=3)
    agent.eval()
    window = {"obs": torch.randn(1, 1, OBS), "action": torch.zeros(1, 1, ACT), "prev_reward": torch.zeros(1, 1),
              "mc_return": torch.zeros(1, 1), "timestep": torch.zeros(1, 1, dtype=torch.long),
              "mask": torch.ones(1, 1)}
    state = agent.generator.get_state()
    action = agent.predict_action(window)
    # redo by hand with the same random draws: every sample's value, keep the best, act on it
    agent.generator.set_state(state)
    tokens = agent.context_tokens(window)
    h = agent.trunk(tokens)[:, 1]
    mean, logvar = agent.gaussian(agent.prior_head, agent.prior_trunk(tokens)[:, 1])
    z = mean + torch.randn((7, 2), generator=agent.generator) * torch.exp(0.5 * logvar)
    actions, values = agent.heads(h.expand(7, -1), z)
    assert torch.allclose(action, actions[values.argmax()], atol=1e-6)


def test_doc_update_moves_every_parameter_and_reports_each_term():
    agent = DoC(DoCConfig(**TINY, future_length=2, latent_dim=2, learning_rate=1e-2), OBS, ACT, seed=0)
    before = {name: p.detach().clone() for name, p in agent.named_parameters()}
    metrics = agent.update(window_batch(rows=6, length=5))
    assert {"losses/action", "losses/value", "losses/kl", "losses/energy"} <= set(metrics)
    still = [name for name, p in agent.named_parameters() if torch.equal(p, before[name])]
    assert still == []


def test_episode_context_tracks_remaining_target_and_previous_rewards():
    context = EpisodeContext(2, OBS, ACT, target_return=5.0)
    for step, reward in enumerate((1.0, 2.0, 0.5)):
        context.add_obs(np.full(OBS, step, np.float32))
        window = context.window()
        context.add_action(np.full(ACT, step, np.float32))
        context.add_reward(reward)
    # last window: steps 1 and 2; remaining target 5-1=4 before step 1 and 5-3=2 before step 2
    assert window["mc_return"].tolist() == [[4.0, 2.0]]
    assert window["prev_reward"].tolist() == [[0.0, 2.0]]  # the window's first step gets 0, as in training
    assert window["timestep"].tolist() == [[1, 2]]
    assert window["action"][0, 0].tolist() == [1.0, 1.0] and window["action"][0, 1].tolist() == [0.0, 0.0]


# ------------------------------------------------------------------ tabular
def bandit_data(seed: int, rows: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The DoC code's bandit data: arm 0 (pays w.p. 0.1) chosen w.p. 0.9, arm 1 (pays 0.9) w.p. 0.1."""
    rng = np.random.default_rng(seed)
    actions = (rng.random(rows) < 0.1).astype(np.int64)
    rewards = (rng.random(rows) < np.array([0.1, 0.9])[actions]).astype(np.float64)
    return np.zeros(rows, np.int64), actions, rewards


def test_tabular_doc_avoids_the_lucky_arm_trap_that_dt_falls_for():
    probs = np.array([0.1, 0.9])
    states, actions, rewards = bandit_data(seed=0)
    config = TabularConfig(steps=1500)
    doc = TabularDoC(config, 1, 2, seed=0)
    doc.fit(states, actions, rewards)
    dt = TabularDT(config, 1, 2, seed=0)
    dt.fit(states, actions, rewards)
    # rewarded episodes are half lucky arm-0 pulls, so DT conditioned on reward 1 is a coin flip (0.5)
    assert float(dt.action_probs(0) @ probs) < 0.65
    assert float(doc.action_probs(0) @ probs) > 0.75
    assert doc.action_probs(0).argmax() == 1


def test_return_bins_and_bad_tabular_rows():
    assert return_bins(np.array([0.0, 0.4, 0.6, 1.0, 7.0]), TabularConfig()).tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="action indices"):
        TabularDT(TabularConfig(steps=1), 1, 2).fit(np.zeros(2, int), np.array([0, 5]), np.zeros(2))


# ----------------------------------------------------- save/load, bad input
def test_save_load_gives_identical_actions(tmp_path):
    agent = DoC(DoCConfig(**TINY, future_length=2, latent_dim=2), OBS, ACT, seed=0)
    agent.update(window_batch(rows=6, length=5))
    save_agent(agent, tmp_path / "doc.pt")
    loaded = load_agent(tmp_path / "doc.pt")
    obs = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    runs = []
    for model in (agent.eval(), loaded):
        model.reset_context()
        actions = []
        for row in obs:
            actions.append(model.act(row))
            model.observe_reward(1.0)
        runs.append(np.stack(actions))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("cls,config", [(DT, DTConfig(**TINY)), (RCSL, RCSLConfig(hidden_dims=(8,)))])
def test_missing_returns_and_batched_acting_are_refused(cls, config):
    agent = cls(config, OBS, ACT)
    batch = window_batch() if cls is DT else {"obs": torch.randn(4, OBS), "action": torch.rand(4, ACT)}
    batch.pop("mc_return", None)
    with pytest.raises(KeyError, match="mc_return"):
        agent.update(batch)
    with pytest.raises(ValueError, match="one obs"):
        agent.act(np.zeros((2, OBS), np.float32))


def test_context_longer_than_every_episode_is_refused():
    agent = DT(DTConfig(**{**TINY, "context_length": 10}), OBS, ACT)
    with pytest.raises(ValueError, match="longer than the longest episode"):
        agent.check_episodes([3, 7], source="data.hdf5")


@pytest.fixture(scope="module")
def bandit_dataset(tmp_path_factory):
    from robokit.data import save_minari
    from robokit.envs import make_env
    from robokit.envs.stochastic import one_hot_action
    from robokit.trainers.datasets import collect_episodes

    rng = np.random.default_rng(0)
    episodes = collect_episodes(make_env("robokit/BernoulliBandit-v0"),
                                lambda _obs: one_hot_action(int(rng.random() < 0.1), 2), 40)
    return save_minari(episodes, tmp_path_factory.mktemp("bandit") / "data", env_id="robokit/BernoulliBandit-v0")


@pytest.mark.parametrize("algo", ["doc", "dt", "rcsl"])
def test_robokit_train_runs_offline_and_evaluates(algo, bandit_dataset, tmp_path, capsys):
    from robokit.trainers.cli import train_main

    extra = [] if algo == "rcsl" else ["--agent.context-length", "1", "--agent.hidden", "16"]
    extra += ["--agent.future-length", "1"] if algo == "doc" else []
    code = train_main(["--algo", algo, "--env", "robokit/BernoulliBandit-v0", "--dataset", str(bandit_dataset),
                       "--offline-steps", "5", "--online-steps", "0", "--eval-episodes", "3", "--out",
                       str(tmp_path / algo), "--logger", "csv", "--no-progress", *extra])
    assert code == 0, capsys.readouterr().err
    agent = load_agent(tmp_path / algo / "final.pt")
    assert agent.num_updates == 5 and agent.name == algo


def test_robokit_train_refuses_bad_sequence_settings(bandit_dataset, tmp_path, capsys):
    from robokit.trainers.cli import train_main

    base = ["--algo", "dt", "--env", "robokit/BernoulliBandit-v0", "--dataset", str(bandit_dataset),
            "--offline-steps", "2", "--logger", "csv", "--no-progress"]
    assert train_main([*base, "--online-steps", "0", "--out", str(tmp_path / "a")]) == 2  # context 5 > 1 step
    err = capsys.readouterr().err
    assert "longer than the longest episode (1 steps)" in err and str(bandit_dataset) in err
    assert len(err.strip().splitlines()) == 1
    assert train_main([*base, "--agent.context-length", "1", "--online-steps", "10", "--out", str(tmp_path / "b")]) == 2
    assert "offline only" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---------------------------------------------------------------- envs
def test_bandit_env_pays_each_arm_with_its_probability():
    from robokit.envs import make_env

    env = make_env("robokit/BernoulliBandit-v0")
    rewards = {arm: [] for arm in (0, 1)}
    for k in range(400):
        env.reset(seed=k)
        arm = k % 2
        _, reward, terminated, _, _ = env.step(np.array([1.0, -1.0]) if arm == 0 else np.array([-1.0, 1.0]))
        assert terminated  # (the 1-step time limit also reports truncated)
        rewards[arm].append(reward)
    assert np.mean(rewards[0]) == pytest.approx(0.1, abs=0.06) and np.mean(rewards[1]) == pytest.approx(0.9, abs=0.06)


def test_frozen_lake_is_one_hot_with_argmax_actions():
    from robokit.envs import make_env

    env = make_env("robokit/FrozenLakeDeterministic-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16,) and obs[0] == 1.0 and obs.sum() == 1.0
    obs, *_ = env.step(np.array([-1.0, 0.5, -1.0, -1.0]))  # argmax 1 = down
    assert obs[4] == 1.0
