"""The reset-free loop: instruction switching on a success signal, hard-reset counting, FP/FN logging.

The success models here are stubs at the reward-model boundary (rfreward's models are tested on their
own): a scripted signal, and the simulator's truth (inverted or not) read from ``info``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from robofume_contract_env import ENV_ID, INSTRUCTIONS

from robokit.algos import make_agent
from robokit.algos.cql import RoboFuMEConfig
from robokit.core.config import ConfigError
from robokit.core.logging import Logger
from robokit.core.rundir import RunDirError
from robokit.nets.encoders import EncoderConfig
from robokit.nets.obs_spec import spec_from_space
from robokit.robofume.loop import Confusion, FinetuneConfig, ResetFreeLoop, finetune
from robokit.robofume.reward import OracleReward


class Rows(Logger):
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict]] = []

    def log(self, metrics, step: int) -> None:
        self.rows.append((step, dict(metrics)))


class EveryThirdCall:
    """Scripted success signal: P = 1 on every third call, else 0 (records the instructions it is asked)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def predict_proba(self, images: np.ndarray, instructions) -> np.ndarray:
        assert images.shape == (1, 16, 16, 3) and images.dtype == np.uint8
        self.calls.extend(instructions)
        return np.array([1.0 if len(self.calls) % 3 == 0 else 0.0])


class InvertedOracle:
    def from_info(self, info) -> float:
        return 1.0 - float(info["success"])


def tiny_agent(seed: int = 0):
    import gymnasium as gym

    import robokit.envs  # noqa: F401

    env = gym.make(ENV_ID)
    config = RoboFuMEConfig(batch_size=8, hidden_dims=(16, 16), cql_n_actions=2,
                            encoder=EncoderConfig(cnn_filters=4, cnn_layers=2, feature_dim=8))
    return make_agent("robofume", spec_from_space(env.observation_space), 1, config, seed=seed)


def loop_for(model, tmp_path, **options) -> ResetFreeLoop:
    config = FinetuneConfig(env=ENV_ID, out=tmp_path / "run", eval_every=0, eval_episodes=1, logger=("none",),
                            progress=False, **options)
    return ResetFreeLoop(config, tiny_agent(), model)


def test_instruction_switches_when_the_success_model_says_so(tmp_path):
    model = EveryThirdCall()
    loop = loop_for(model, tmp_path, online_steps=12)
    logger = Rows()
    summary = loop.run(logger)
    # success on calls 3, 6, 9, 12: four sub-episodes of 3 steps, alternating forward/backward
    assert model.calls == [INSTRUCTIONS[0]] * 3 + [INSTRUCTIONS[1]] * 3 + [INSTRUCTIONS[0]] * 3 + [INSTRUCTIONS[1]] * 3
    ends = [row for _, row in logger.rows if "train/sub_episodes" in row]
    assert [row["train/forward"] for row in ends] == [1.0, 0.0, 1.0, 0.0]
    assert all(row["train/success_by_model"] == 1.0 for row in ends)
    assert summary["sub_episodes"] == 4 and summary["forward_attempts"] == 2
    batch = loop.online_buffer.sample(64)
    # the stored reward is the model's output, and terminated is its success decision
    np.testing.assert_array_equal(batch["terminated"], batch["reward"] == 1.0)
    # the observation's task one-hot follows the instruction the model was asked about
    assert set(map(tuple, batch["obs"]["task"])) == {(1.0, 0.0), (0.0, 1.0)}


def test_time_limit_switches_too_and_hard_resets_are_counted(tmp_path):
    class Never:
        def predict_proba(self, images, instructions):
            return np.zeros(len(instructions))

    loop = loop_for(Never(), tmp_path, online_steps=60, reset_every=25)
    summary = loop.run(Rows())
    assert summary["sub_episodes"] == 6  # the 10-step time limit ends each one
    env = loop.env.unwrapped
    # the first reset, then one soft reset per sub-episode that turns hard once 25 steps have passed
    assert summary["hard_resets"] == env.hard_resets == 1 + 2
    assert summary["hard_resets"] < summary["sub_episodes"]


def test_fp_fn_against_the_simulator_truth(tmp_path):
    truthful = loop_for(OracleReward(), tmp_path / "a", online_steps=40)
    result = truthful.run(Rows())
    assert result["reward_fp"] == 0 and result["reward_fn"] == 0
    inverted = loop_for(InvertedOracle(), tmp_path / "b", online_steps=40)
    logger = Rows()
    result = inverted.run(logger)
    confusion = Confusion(**inverted.counters.confusion)
    assert confusion.tp == confusion.tn == 0 and confusion.fp + confusion.fn == 40
    assert result["reward_fp_rate"] == 1.0 and result["reward_fp"] == confusion.fp
    logged = [row for _, row in logger.rows if "train/reward_fp_rate" in row]
    assert logged and logged[-1]["train/reward_fp"] <= confusion.fp


def test_confusion_rates_by_hand():
    confusion = Confusion()
    for predicted, truth in [(True, True), (True, False), (False, False), (False, False), (False, True)]:
        confusion.add(predicted, truth)
    rates = confusion.rates()
    assert rates["train/reward_fp_rate"] == pytest.approx(1 / 3) and rates["train/reward_fn_rate"] == 0.5


def test_sac_ablation_drops_the_conservative_terms(tmp_path):
    loop = loop_for(OracleReward(), tmp_path, online_steps=0, fine_tune="sac")
    assert not loop.agent.penalty_active or loop.agent.phase == "offline"
    loop.agent.set_phase("online")
    assert not loop.agent.penalty_active and not loop.agent.calibrating and not loop.agent.max_target_active


def test_finetune_run_writes_resumes_and_refuses_an_occupied_folder(tmp_path):
    config = FinetuneConfig(env=ENV_ID, out=tmp_path / "run", online_steps=30, eval_every=15, eval_episodes=2,
                            checkpoint_every=10, logger=("csv",), progress=False)
    summary = finetune(config, agent=tiny_agent(), success_model=OracleReward())
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["env_steps"] == summary["env_steps"] == 30
    assert [row["env_steps"] for row in saved["history"]] == [0.0, 15.0, 30.0]
    with pytest.raises(RunDirError, match="--resume"):
        finetune(config, agent=tiny_agent(), success_model=OracleReward())
    longer = FinetuneConfig(**{**config.__dict__, "online_steps": 40, "resume": True})
    resumed = finetune(longer, agent=tiny_agent(), success_model=OracleReward())
    assert resumed["env_steps"] == 40 and resumed["hard_resets"] >= summary["hard_resets"] + 1


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="forward"):
        FinetuneConfig(forward=1, backward=1)
    with pytest.raises(ConfigError, match="threshold"):
        FinetuneConfig(threshold=1.5)


def test_env_options_pass_privileged_proprio_only_when_set():
    """--privileged-proprio reaches the env constructor (the budget-sweep diagnostic); unset options
    leave the env's defaults."""
    from robokit.robofume.loop import env_options

    assert env_options(FinetuneConfig()) == {}
    options = env_options(FinetuneConfig(image_size=32, privileged_proprio=True), reset_every=1)
    assert options == {"image_size": 32, "privileged_proprio": True, "reset_every": 1}
