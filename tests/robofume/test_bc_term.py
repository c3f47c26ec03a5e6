"""Cal-QL + BC (RoboFuME's pretraining objective): the actor loss is the SAC/Cal-QL actor loss plus
weight x BC, with the weight fixed or matched to the two losses' running magnitudes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robokit.algos import make_agent
from robokit.algos.cql import CalQLConfig, RoboFuMEConfig
from robokit.core.config import ConfigError
from robokit.data.replay import ReplayBuffer
from robokit.losses import bc_mse_loss, matched_scale_weight
from robokit.nets.encoders import EncoderConfig
from robokit.nets.obs_spec import DictSpec, ImageSpec, VectorSpec

ACT, BATCH = 2, 16
SPEC = DictSpec({"image": ImageSpec(16, 16, 3), "proprio": VectorSpec(3), "task": VectorSpec(2)})
SMALL = {"batch_size": BATCH, "hidden_dims": (32, 32), "cql_n_actions": 3,
         "encoder": EncoderConfig(cnn_filters=8, cnn_layers=2)}


def replay(steps: int = 48, seed: int = 0) -> ReplayBuffer:
    """Random dict-observation transitions, episodes of 12 steps, with mc_return (Cal-QL)."""
    rng = np.random.default_rng(seed)
    shape, dtype = SPEC.layout()
    buffer = ReplayBuffer(steps, shape, ACT, seed=seed, obs_dtype=dtype, store_mc_return=True)

    def obs():
        return {"image": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
                "proprio": rng.standard_normal(3).astype(np.float32),
                "task": np.eye(2, dtype=np.float32)[rng.integers(2)]}

    current = obs()
    for step in range(steps):
        following = obs()
        buffer.add(current, rng.uniform(-0.9, 0.9, ACT), float(rng.integers(2)), following, False,
                   (step + 1) % 12 == 0)
        current = following
    return buffer


def test_bc_mse_loss_by_hand():
    policy = torch.tensor([[0.5, -0.5], [0.0, 1.0]])
    data = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert bc_mse_loss(policy, data).item() == pytest.approx((0.25 + 0.25 + 0.0 + 1.0) / 2)
    assert matched_scale_weight(3.0, 1.5, 1.0) == pytest.approx(2.0)
    assert matched_scale_weight(3.0, 0.0, 0.5) == pytest.approx(0.5 * 3.0 / 1e-6)


@pytest.mark.parametrize("scale", ["fixed", "matched"])
def test_actor_loss_is_rl_plus_weight_times_bc(scale):
    config = RoboFuMEConfig(**SMALL, bc_weight=0.7, bc_scale=scale)
    agent = make_agent("robofume", SPEC, ACT, config, seed=0)
    buffer = replay()
    first = agent.update(agent.torch_batch(buffer.sample(BATCH)))
    for metrics in (first, agent.update(agent.torch_batch(buffer.sample(BATCH)))):
        total = metrics["losses/actor_rl"] + metrics["train/bc_weight"] * metrics["losses/bc"]
        assert metrics["losses/actor"] == pytest.approx(total, rel=1e-5, abs=1e-6)
    if scale == "fixed":
        assert first["train/bc_weight"] == pytest.approx(0.7)
    else:  # the docs' rule: weight = bc_weight x avg|L_rl| / avg L_bc; the first update starts the averages
        assert first["train/bc_weight"] == pytest.approx(0.7 * abs(first["losses/actor_rl"]) / first["losses/bc"],
                                                         rel=1e-5)


def test_matched_weight_uses_running_averages():
    config = RoboFuMEConfig(**SMALL, bc_scale_decay=0.5)
    agent = make_agent("robofume", SPEC, ACT, config, seed=0)
    buffer = replay()
    rows = [agent.update(agent.torch_batch(buffer.sample(BATCH))) for _ in range(3)]
    rl = bc = None
    for metrics in rows:
        new_rl, new_bc = abs(metrics["losses/actor_rl"]), metrics["losses/bc"]
        rl = new_rl if rl is None else 0.5 * rl + 0.5 * new_rl
        bc = new_bc if bc is None else 0.5 * bc + 0.5 * new_bc
        assert metrics["train/bc_weight"] == pytest.approx(rl / bc, rel=1e-4)
    assert agent.bc_magnitudes[2].item() == 3  # saved with the weights, so a resumed run continues the averages
    assert "bc_magnitudes" in agent.training_state()["modules"]


def test_calql_has_no_bc_term_and_bc_is_off_online_by_default():
    buffer = replay()
    calql = make_agent("calql", SPEC, ACT, CalQLConfig(**SMALL), seed=0)
    assert "losses/bc" not in calql.update(calql.torch_batch(buffer.sample(BATCH)))
    agent = make_agent("robofume", SPEC, ACT, RoboFuMEConfig(**SMALL), seed=0)
    agent.set_phase("online")
    assert "losses/bc" not in agent.update(agent.torch_batch(buffer.sample(BATCH)))
    kept = make_agent("robofume", SPEC, ACT, RoboFuMEConfig(**SMALL, bc_online=True), seed=0)
    kept.set_phase("online")
    assert "losses/bc" in kept.update(kept.torch_batch(buffer.sample(BATCH)))


def test_bc_term_pulls_the_policy_to_the_data_actions():
    """With the BC term dominating, the policy's mean action approaches the batch's actions."""
    config = RoboFuMEConfig(**SMALL, bc_weight=100.0, bc_scale="fixed", actor_lr=3e-3)
    agent = make_agent("robofume", SPEC, ACT, config, seed=0)
    batch = agent.torch_batch(replay(steps=16).sample(BATCH))
    losses = [agent.update(batch)["losses/bc"] for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_bad_bc_options_are_refused():
    with pytest.raises(ConfigError, match="bc_scale"):
        RoboFuMEConfig(bc_scale="auto")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="bc-weight"):
        RoboFuMEConfig(bc_weight=-1.0)
    assert math.isclose(RoboFuMEConfig().bc_weight, 1.0) and RoboFuMEConfig().calql
