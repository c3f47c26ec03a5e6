"""Agents: gradient routing, every parameter moves, save/load, seeding, input errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from robokit.algos import (
    ALGOS,
    BCConfig,
    CalQLConfig,
    CQLConfig,
    IQLConfig,
    PPOConfig,
    RLPDConfig,
    RoboFuMEConfig,
    SACConfig,
    WSRLConfig,
    load_agent,
    make_agent,
    save_agent,
)
from robokit.core.checkpoint import CheckpointError
from robokit.losses import calql_lower_bound, cql_penalty, sac_actor_loss

OBS, ACT = 5, 2
SMALL = {"hidden_dims": (16, 16), "batch_size": 8}


def batch(rows: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(rows, OBS, generator=g), "action": torch.rand(rows, ACT, generator=g) * 1.8 - 0.9,
            "reward": torch.randn(rows, generator=g), "next_obs": torch.randn(rows, OBS, generator=g),
            "terminated": (torch.rand(rows, generator=g) < 0.3).float(),
            "truncated": torch.zeros(rows), "mc_return": torch.randn(rows, generator=g),
            "log_prob": torch.randn(rows, generator=g), "advantage": torch.randn(rows, generator=g),
            "return": torch.randn(rows, generator=g)}


def small_configs(lr: float | None = None) -> dict[str, object]:
    lrs = {} if lr is None else {"actor_lr": lr, "critic_lr": lr}
    return {
        "sac": SACConfig(**SMALL, **lrs, temperature_lr=lr or 3e-4),
        "cql": CQLConfig(**SMALL, **lrs, cql_n_actions=3),
        "calql": CalQLConfig(**SMALL, **lrs, cql_n_actions=3, cql_lagrange=True),
        "iql": IQLConfig(**SMALL, **lrs, value_lr=lr or 3e-4),
        "rlpd": RLPDConfig(**SMALL, **lrs, ensemble_size=4, utd_ratio=2),
        "wsrl": WSRLConfig(**SMALL, **lrs, ensemble_size=4, cql_n_actions=3, utd_ratio=2),
        "robofume": RoboFuMEConfig(**SMALL, **lrs, cql_n_actions=3),
        "bc": BCConfig(**SMALL, **({"actor_lr": lr} if lr else {})),
        "ppo": PPOConfig(**SMALL, **({"lr": lr} if lr else {})),
    }


def test_registry_lists_every_algorithm():
    assert set(ALGOS.names()) == {"sac", "cql", "calql", "iql", "rlpd", "wsrl", "bc", "ppo", "dt", "rcsl", "doc",
                                  "unio4", "robofume"}


def params_of(agent, attr):
    module = getattr(agent, attr)
    return [module] if isinstance(module, torch.nn.Parameter) else list(module.parameters())


def grads_present(params) -> bool:
    return all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def grads_absent(params) -> bool:
    return all(p.grad is None for p in params)


@pytest.mark.parametrize("algo", ["sac", "cql", "calql", "wsrl", "rlpd", "robofume"])
def test_sac_family_gradient_routing(algo):
    agent = make_agent(algo, OBS, ACT, small_configs()[algo])
    b = batch()
    agent.update_critic(b)  # critic (+ CQL) loss: critic only
    assert grads_present(params_of(agent, "critic"))
    assert grads_absent(params_of(agent, "actor")) and grads_absent(params_of(agent, "log_alpha"))
    assert grads_absent(params_of(agent, "target_critic"))
    for p in agent.critic.parameters():
        p.grad = None
    agent.update_actor(b)  # actor + temperature: never the critic
    assert grads_present(params_of(agent, "actor")) and grads_present(params_of(agent, "log_alpha"))
    assert grads_absent(params_of(agent, "critic")) and grads_absent(params_of(agent, "target_critic"))
    assert all(not p.requires_grad for p in agent.target_critic.parameters())


def test_lagrange_weight_gets_only_its_own_gradient():
    agent = make_agent("calql", OBS, ACT, small_configs()["calql"])
    agent.update_critic(batch())
    assert agent.log_alpha_prime.grad is not None
    assert grads_absent(params_of(agent, "actor"))


def test_iql_gradient_routing():
    agent = make_agent("iql", OBS, ACT, small_configs()["iql"])
    agent.update(batch())
    for attr in ("critic", "value", "actor"):
        assert grads_present(params_of(agent, attr)), attr
    assert grads_absent(params_of(agent, "target_critic"))
    # the value loss alone reaches only V
    fresh = make_agent("iql", OBS, ACT, small_configs()["iql"])
    from robokit.losses import iql_value_loss

    b = batch()
    with torch.no_grad():
        q_target = fresh.target_critic(b["obs"], b["action"]).min(0).values
    iql_value_loss(q_target, fresh.value(b["obs"]), 0.7).backward()
    assert grads_present(params_of(fresh, "value"))
    assert grads_absent(params_of(fresh, "critic")) and grads_absent(params_of(fresh, "actor"))


@pytest.mark.parametrize("algo", sorted(small_configs()))
def test_every_trainable_parameter_moves_after_a_large_lr_update(algo):
    agent = make_agent(algo, OBS, ACT, small_configs(lr=0.1)[algo])
    before = {name: p.detach().clone() for name, p in agent.named_parameters()}
    rows = agent.config.batch_size * agent.config.utd_ratio
    agent.update(batch(rows))
    target_moved = []
    for name, p in agent.named_parameters():
        moved = not torch.equal(before[name], p.detach())
        if p.requires_grad:
            assert moved, f"{algo}: trainable parameter {name} did not move"
        else:  # target networks move only by Polyak averaging
            target_moved.append(moved)
    assert all(target_moved)


@pytest.mark.parametrize("algo", sorted(small_configs()))
def test_save_load_gives_identical_actions_and_updates(algo, tmp_path):
    agent = make_agent(algo, OBS, ACT, small_configs()[algo], seed=3)
    rows = agent.config.batch_size * agent.config.utd_ratio
    agent.update(batch(rows))
    path = save_agent(agent, tmp_path / f"{algo}.pt")
    loaded = load_agent(path)
    obs = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    np.testing.assert_array_equal(agent.act(obs), loaded.act(obs))
    np.testing.assert_array_equal(agent.act(obs[0]), loaded.act(obs[0]))
    # RNG, optimizer moments and counters came along: the next update is identical too
    loaded.train()
    assert agent.update(batch(rows, seed=1)) == loaded.update(batch(rows, seed=1))
    np.testing.assert_array_equal(agent.act(obs, deterministic=False), loaded.act(obs, deterministic=False))
    assert loaded.observation_shape == (OBS,) and loaded.action_dim == ACT


@pytest.mark.parametrize("algo", ["sac", "wsrl", "iql"])
def test_same_seed_same_results(algo):
    def run(seed):
        agent = make_agent(algo, OBS, ACT, small_configs()[algo], seed=seed)
        rows = agent.config.batch_size * agent.config.utd_ratio
        metrics = [agent.update(batch(rows, seed=k)) for k in range(3)]
        return metrics, agent.act(np.ones((2, OBS), np.float32), deterministic=False)

    (m1, a1), (m2, a2), (m3, a3) = run(0), run(0), run(1)
    assert not np.array_equal(a1, a3)
    assert m1 == m2
    np.testing.assert_array_equal(a1, a2)
    assert m1 != m3


def test_act_shapes_dtype_and_errors():
    agent = make_agent("sac", OBS, ACT, small_configs()["sac"])
    assert agent.act(np.zeros(OBS)).shape == (ACT,)
    out = agent.act(np.zeros((3, OBS)), deterministic=False)
    assert out.shape == (3, ACT) and out.dtype == np.float32 and np.abs(out).max() <= 1
    with pytest.raises(ValueError, match=r"expected obs of shape \(5,\)"):
        agent.act(np.zeros(OBS + 1))


def test_update_names_missing_batch_keys():
    agent = make_agent("sac", OBS, ACT, small_configs()["sac"])
    bad = batch()
    del bad["terminated"]
    with pytest.raises(KeyError, match="terminated"):
        agent.update(bad)
    calql = make_agent("calql", OBS, ACT, small_configs()["calql"])
    no_mc = batch()
    del no_mc["mc_return"]
    with pytest.raises(KeyError, match="mc_return"):
        calql.update(no_mc)


def test_wsrl_drops_the_penalty_online_and_cql_keeps_it():
    wsrl = make_agent("wsrl", OBS, ACT, small_configs()["wsrl"])
    cql = make_agent("cql", OBS, ACT, small_configs()["cql"])
    for agent in (wsrl, cql):
        agent.set_phase("offline")
        assert "losses/cql_penalty" in agent.update(batch(16))
        agent.set_phase("online")
    assert "losses/cql_penalty" not in wsrl.update(batch(16))
    assert "losses/cql_penalty" in cql.update(batch(16))
    assert wsrl.needs_mc_return is False and cql.needs_mc_return is False
    with pytest.raises(ValueError, match="unknown phase"):
        wsrl.set_phase("pretrain")


def test_utd_splits_into_critic_minibatches():
    agent = make_agent("rlpd", OBS, ACT, small_configs()["rlpd"])
    calls = []
    original = agent.update_critic
    agent.update_critic = lambda part: calls.append(len(part["obs"])) or original(part)
    agent.update(batch(16))
    assert calls == [8, 8]


def test_load_agent_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_agent(tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="broken.pt"):
        load_agent(broken)
    from robokit.core.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "empty.pt", {"something": 1})
    with pytest.raises(KeyError, match="empty.pt"):
        load_agent(tmp_path / "empty.pt")


def test_config_roundtrip_through_checkpoint(tmp_path):
    cfg = dataclasses.replace(small_configs()["wsrl"], discount=0.9)
    agent = make_agent("wsrl", OBS, ACT, cfg)
    loaded = load_agent(save_agent(agent, tmp_path / "a.pt"))
    assert loaded.config == cfg


def test_cql_pushes_down_out_of_distribution_actions():
    """Data actions are all near +0.5: after training, CQL values them above uniform random
    actions by a clear margin, while plain SAC (same seed, same data) has no such gap."""
    g = torch.Generator().manual_seed(0)
    rows = 64

    def data_batch():
        obs = torch.randn(rows, OBS, generator=g)
        return {"obs": obs, "action": 0.5 + 0.05 * torch.randn(rows, ACT, generator=g),
                "reward": torch.zeros(rows), "next_obs": obs, "terminated": torch.zeros(rows),
                "mc_return": torch.zeros(rows)}

    def gap(algo, config):
        agent = make_agent(algo, OBS, ACT, config, seed=0)
        for _ in range(150):
            agent.update(data_batch())
        probe = data_batch()
        with torch.no_grad():
            q_data = agent.critic(probe["obs"], probe["action"]).mean()
            q_random = agent.critic(probe["obs"], torch.rand(rows, ACT, generator=g) * 2 - 1).mean()
        return (q_data - q_random).item()

    common = {"hidden_dims": (32, 32), "batch_size": rows, "critic_lr": 1e-3}
    cql_gap = gap("cql", CQLConfig(**common, cql_n_actions=4))
    sac_gap = gap("sac", SACConfig(**common))
    assert cql_gap > 1.0
    assert abs(sac_gap) < cql_gap / 3


def test_ppo_explore_records_log_prob_and_value():
    agent = make_agent("ppo", OBS, ACT, small_configs()["ppo"])
    obs = np.linspace(-1, 1, OBS).astype(np.float32)
    action, log_prob, value = agent.explore(obs)
    tensor = torch.as_tensor(obs)[None]
    with torch.no_grad():
        assert log_prob == pytest.approx(float(agent.actor.log_prob(tensor, torch.as_tensor(action)[None])[0]),
                                         abs=1e-3)
    assert value == pytest.approx(agent.state_value(obs))
    # a step on data from the current policy starts at ratio 1: nothing is clipped
    b = batch(8)
    with torch.no_grad():
        b["log_prob"] = agent.actor.log_prob(b["obs"], b["action"])
    assert agent.update(b)["train/clip_fraction"] == 0.0


def test_building_an_agent_leaves_the_global_torch_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    for algo in sorted(small_configs()):
        make_agent(algo, OBS, ACT, small_configs()[algo], seed=11)
    assert torch.equal(torch.rand(3), expected)


def test_cql_penalty_samples_equal_the_per_proposal_computation():
    """The batched penalty pass gives, for the very actions it drew, the Q values of the old
    computation: one critic call per proposal (uniform, pi(.|s), pi(.|s')), all evaluated at s."""
    agent = make_agent("calql", OBS, ACT, small_configs()["calql"])
    b, n = batch(8), agent.config.cql_n_actions
    samples = agent.policy_q_samples(b)
    groups = samples["actions"].split(n, dim=1)
    for name, group in zip(("random", "current", "next"), groups, strict=True):
        per_group = torch.stack([agent.critic(b["obs"], group[:, k]) for k in range(n)], dim=-1)
        torch.testing.assert_close(samples[name], per_group, rtol=1e-5, atol=1e-6)
    assert samples["actions"][:, :n].abs().max() <= 1.0
    current_again = agent.actor.log_prob(b["obs"].repeat_interleave(n, dim=0), groups[1].reshape(-1, ACT))
    torch.testing.assert_close(samples["current_log_prob"], current_again.view(8, n), rtol=1e-4, atol=1e-4)
    next_again = agent.actor.log_prob(b["next_obs"].repeat_interleave(n, dim=0), groups[2].reshape(-1, ACT))
    torch.testing.assert_close(samples["next_log_prob"], next_again.view(8, n), rtol=1e-4, atol=1e-4)


def test_iql_runs_the_official_update_order_and_cosine_actor_lr():
    """IQL's learner.py: V step, then the actor's advantage Q_target - V reads the *updated* V,
    then Q; the actor lr follows optax.cosine_decay_schedule(lr, T)."""
    from robokit.algos.iql import cosine_lr
    from robokit.losses import awr_actor_loss

    config = dataclasses.replace(small_configs()["iql"], cosine_decay_steps=4)
    agent = make_agent("iql", OBS, ACT, config)
    b = batch()
    before = make_agent("iql", OBS, ACT, config)
    metrics = agent.update(b)
    # replay the V step by hand on a copy, then check the actor's advantage used the new V
    with torch.no_grad():
        q_target = before.target_critic(b["obs"], b["action"]).min(0).values
    from robokit.losses import iql_value_loss

    before._step(before.value_optimizer, iql_value_loss(q_target, before.value(b["obs"]), config.expectile))
    with torch.no_grad():
        advantage = q_target - before.value(b["obs"])
    assert metrics["train/advantage_mean"] == pytest.approx(advantage.mean().item(), rel=1e-5, abs=1e-6)
    loss = awr_actor_loss(before.actor.log_prob(b["obs"], b["action"]), advantage, config.awr_temperature)
    assert metrics["losses/actor"] == pytest.approx(loss.item(), rel=1e-5)
    assert metrics["train/actor_lr"] == config.actor_lr
    lrs = [agent.update(b)["train/actor_lr"] for _ in range(5)]
    assert lrs == pytest.approx([cosine_lr(config.actor_lr, k, 4) for k in range(1, 6)])
    assert lrs[1] == pytest.approx(config.actor_lr / 2) and lrs[3] == 0.0 and lrs[4] == 0.0


def test_iql_locomotion_reward_scale():
    from robokit.algos.iql import locomotion_reward_scale

    assert locomotion_reward_scale([10.0, 510.0, 60.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="different returns"):
        locomotion_reward_scale([3.0, 3.0])


def test_iql_keeps_the_tanh_gaussian_actor_as_an_option():
    from robokit.nets import TanhGaussianPolicy

    agent = make_agent("iql", OBS, ACT, dataclasses.replace(small_configs()["iql"], policy="tanh_gaussian",
                                                            actor_lr_schedule="constant"))
    assert isinstance(agent.actor, TanhGaussianPolicy)
    assert agent.update(batch())["train/actor_lr"] == agent.config.actor_lr
    with pytest.raises(ValueError, match="policy must be"):
        make_agent("iql", OBS, ACT, dataclasses.replace(small_configs()["iql"], policy="beta"))


def test_wsrl_actor_steps_on_the_full_utd_batch_and_critic_on_minibatches():
    """WSRL's update_high_utd (wsrl/agents/sac.py): utd critic steps on minibatches, then one actor
    and temperature step on the whole batch; RLPD's code steps the actor on the last minibatch."""
    for algo, actor_rows in (("wsrl", 16), ("rlpd", 8)):
        agent = make_agent(algo, OBS, ACT, small_configs()[algo])
        agent.set_phase("online")
        critic_rows, actor_calls = [], []
        critic, actor = agent.update_critic, agent.update_actor
        agent.update_critic = lambda part, f=critic, seen=critic_rows: seen.append(len(part["obs"])) or f(part)
        agent.update_actor = lambda part, f=actor, seen=actor_calls: seen.append(len(part["obs"])) or f(part)
        agent.update(batch(16))
        assert critic_rows == [8, 8] and actor_calls == [actor_rows], algo


def test_wsrl_actor_reads_the_min_over_all_critics():
    """WSRL's policy_loss_fn uses predicted_qs.min(axis=0) over all E members; RLPD the mean."""
    for algo, reduce in (("wsrl", lambda q: q.min(0).values), ("rlpd", lambda q: q.mean(0))):
        agent = make_agent(algo, OBS, ACT, small_configs()[algo])
        data = batch(16)
        state = agent.generator.get_state()
        with torch.no_grad():
            action, log_prob = agent.actor.sample(data["obs"], agent.generator)
            expected = sac_actor_loss(log_prob, reduce(agent.critic(data["obs"], action)), agent.alpha)
        agent.generator.set_state(state)
        assert agent.update_actor(data)["losses/actor"] == pytest.approx(expected.item(), rel=1e-5), algo


def test_wsrl_defaults_follow_the_wsrl_code():
    """experiments/configs/sac_config.py (lrs), wsrl_config.py (LayerNorm in policy and critic)."""
    cfg = WSRLConfig()
    assert (cfg.actor_lr, cfg.critic_lr, cfg.temperature_lr) == (1e-4, 3e-4, 1e-4)
    agent = make_agent("wsrl", OBS, ACT, dataclasses.replace(cfg, **SMALL))
    assert any(isinstance(m, torch.nn.LayerNorm) for m in agent.actor.modules())
    sac = make_agent("sac", OBS, ACT, small_configs()["sac"])
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in sac.actor.modules())


def test_ppo_starts_with_unit_action_std():
    """SB3 (log_std_init=0.0) and CleanRL (zero actor_logstd): std 1 before any update."""
    agent = make_agent("ppo", OBS, ACT, small_configs()["ppo"])
    _, log_std = agent.actor.distribution_params(torch.randn(3, OBS))
    torch.testing.assert_close(log_std, torch.zeros(3, ACT))


def test_cql_lagrange_starts_at_corl_log_alpha_prime_and_scales_cql_alpha():
    """log alpha' = 1.0 at start (Cal-QL conservative_sac.py, CORL cql.py); the critic's conservative
    term is alpha' * cql_alpha * (penalty - gap)."""
    cfg = dataclasses.replace(small_configs()["calql"], cql_alpha=2.0, cql_target_action_gap=0.3)
    agent = make_agent("calql", OBS, ACT, cfg)
    assert agent.log_alpha_prime.item() == pytest.approx(1.0)
    data = batch(8)
    q_data = agent.critic(data["obs"], data["action"])
    state = agent.generator.get_state()
    term, metrics = agent.critic_regularizer(data, q_data)
    agent.generator.set_state(state)
    with torch.no_grad():
        samples = agent.policy_q_samples(data)
        bound = calql_lower_bound
        penalty = cql_penalty(q_data, samples["random"], bound(samples["current"], data["mc_return"]),
                              bound(samples["next"], data["mc_return"]), samples["current_log_prob"],
                              samples["next_log_prob"], ACT)
    expected = (np.e * 2.0 * (penalty - 0.3)).sum()
    assert term.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["train/cql_alpha_prime"] != pytest.approx(np.e)  # one dual step was taken


def test_calql_calibration_online_official_on_corl_off():
    """Official Cal-QL keeps the bound online (enable_calql unchanged); CORL's cal_ql.py calls
    switch_calibration() when online tuning starts. Max-target backup: Cal-QL's default."""
    assert CalQLConfig().cql_max_target_backup and not CQLConfig().cql_max_target_backup
    official = make_agent("calql", OBS, ACT, small_configs()["calql"])
    corl = make_agent("calql", OBS, ACT, dataclasses.replace(small_configs()["calql"], calql_online=False))
    for agent in (official, corl):
        assert "train/calql_bound_rate" in agent.update(batch(8))
        agent.set_phase("online")
    assert official.needs_mc_return and "train/calql_bound_rate" in official.update(batch(8))
    assert not corl.needs_mc_return
    online = batch(8)
    del online["mc_return"]  # not needed any more
    metrics = corl.update(online)
    assert "losses/cql_penalty" in metrics and "train/calql_bound_rate" not in metrics


def test_wsrl_max_target_backup_only_while_pretraining():
    """WSRL pretrains with its CQL agent (cql_config.py: cql_max_target_backup=True) and fine-tunes
    with its SAC agent, which has none."""
    agent = make_agent("wsrl", OBS, ACT, small_configs()["wsrl"])
    assert agent.max_target_active
    agent.set_phase("online")
    assert not agent.max_target_active


def test_rlpd_update_unchanged_by_the_scalar_q_head(monkeypatch):
    """The Q head's dot-product layer (``_ScalarHead``, a CPU speed-up, benchmarks/sac_update.py)
    trains an RLPD agent like the plain ``baddbmm`` layer it replaces: same parameters, optimizer
    state and targets after 5 updates, up to float summation order."""
    from robokit.nets.ensemble import EnsembleLinear

    config = RLPDConfig(**SMALL, ensemble_size=4, utd_ratio=2)
    fast, plain = (make_agent("rlpd", OBS, ACT, config, seed=0) for _ in range(2))
    for k in range(5):
        fast.update(batch(16, seed=k))

    def baddbmm_forward(self, x, members=None):
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return torch.baddbmm(bias, x.expand(weight.shape[0], -1, -1) if x.dim() == 2 else x, weight)

    monkeypatch.setattr(EnsembleLinear, "forward", baddbmm_forward)
    for k in range(5):
        plain.update(batch(16, seed=k))
    for (name, got), (_, want) in zip(fast.training_state()["modules"].items(),
                                      plain.training_state()["modules"].items(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(fast.optimizers()["critic_optimizer"].state_dict(),
                               plain.optimizers()["critic_optimizer"].state_dict(), rtol=1e-5, atol=1e-6)


def test_sac_fused_adam_steps_like_the_default_adam():
    """SAC's optimizers use Adam's fused step (a speed-up, benchmarks/sac_update.py); the same agent
    stepped by torch's default (single-tensor loop) Adam reaches the same parameters."""
    config = RLPDConfig(**SMALL, ensemble_size=4, utd_ratio=2)
    fused, plain = (make_agent("rlpd", OBS, ACT, config, seed=0) for _ in range(2))
    assert all(opt.defaults["fused"] for opt in fused.optimizers().values())
    for name, opt in plain.optimizers().items():
        setattr(plain, name, torch.optim.Adam(opt.param_groups[0]["params"], lr=opt.defaults["lr"],
                                              foreach=False, fused=False))
    for k in range(5):
        fused.update(batch(16, seed=k))
        plain.update(batch(16, seed=k))
    for (name, got), (_, want) in zip(fused.state_dict().items(), plain.state_dict().items(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
