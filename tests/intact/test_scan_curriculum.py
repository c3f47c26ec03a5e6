"""INTACT's curriculum on a range-scan policy's training observations (robokit.intact.scan).

The env and the corruption ops are real; the policy is a stand-in that steers by one bin, so its
saliency is known."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import robokit.envs  # noqa: F401  (registers the ids)
from robokit.intact.scan import ScanCurriculum, ScanCurriculumConfig

pytest.importorskip("mujoco")


def reads_bin(index: int, bins: int = 90):
    """A batch policy steering by one bin's range and intensity."""
    def policy(batch: dict) -> np.ndarray:
        scan = np.asarray(batch["scan"])
        return np.stack([scan[..., index], scan[..., bins + index]], axis=-1).astype(np.float32)
    return policy


def test_strength_grows_on_the_gated_rule():
    schedule = ScanCurriculum(reads_bin(0), ScanCurriculumConfig(report_every=4, start_step=0, clean_fraction=0.0))
    schedule.begin_episode()
    assert schedule.corrupted and schedule.curriculum.strength == 0.2
    rows = [schedule.end_episode(s) for s in (True, False, True, False)]  # 0.5 at level 0: reaches 0.5, advance
    assert rows[-1]["curriculum/robust_success"] == 0.5 and rows[-1]["curriculum/advanced"] == 1.0
    assert rows[-1]["curriculum/strength"] == 0.4 and "curriculum/robust_success" not in rows[0]
    for _ in range(4):  # 0.25 < 0.5: stays
        row = schedule.end_episode(_ % 4 == 0)
    assert row["curriculum/advanced"] == 0.0 and row["curriculum/strength"] == 0.4
    for _ in range(40):  # all succeed: one level per report, never past the last
        row = schedule.end_episode(True)
    assert row["curriculum/strength"] == 1.0 and schedule.curriculum.at_max
    assert [h[0] for h in schedule.curriculum.history if h[2]] == [0, 1, 2, 3]


def test_clean_fraction_and_start_step_follow_their_seeded_rates():
    schedule = ScanCurriculum(reads_bin(0), ScanCurriculumConfig(start_step=100), seed=3)
    schedule.begin_episode()
    assert not schedule.corrupted  # inside the warm-up
    schedule.env_steps = 100
    drawn = []
    for _ in range(2000):
        schedule.begin_episode()
        drawn.append(schedule.corrupted)
        schedule.end_episode(False)
    assert abs(np.mean(drawn) - 0.5) < 4 * np.sqrt(0.25 / 2000)
    assert schedule.curriculum.level == 0 and len(schedule.curriculum.history) == sum(drawn) // 10  # failures: no advance


def test_corrupted_episodes_see_targeted_drops_of_the_bin_the_policy_reads():
    env = gym.make("robokit/LidarNavRange-v0")
    clean, _ = env.reset(seed=0)
    nearest = int(np.argmin(clean["scan"][:90]))
    assert clean["scan"][nearest] < 0.5
    config = ScanCurriculumConfig(start_step=0, clean_fraction=0.0, ops=("drop",), levels=(1.0,))
    schedule = ScanCurriculum(reads_bin(nearest), config, seed=0)
    wrapped = schedule.wrap(gym.make("robokit/LidarNavRange-v0"))
    obs, _ = wrapped.reset(seed=0)
    assert obs["scan"][nearest] == 1.0 and schedule.ops_used["drop"] == 1  # its bin emptied
    assert (obs["scan"][:90] == 1.0).sum() > (clean["scan"][:90] == 1.0).sum()
    obs, *_ = wrapped.step(np.zeros(2, np.float32))
    assert obs["scan"][nearest] == 1.0 and schedule.env_steps == 1
    untargeted = ScanCurriculum(reads_bin(nearest), ScanCurriculumConfig(
        start_step=0, clean_fraction=0.0, ops=("drop",), levels=(1.0,), targeted=False), seed=0)
    obs, _ = untargeted.wrap(gym.make("robokit/LidarNavRange-v0")).reset(seed=0)
    assert obs["scan"][nearest] < 1.0  # 75% of the points dropped at random: the near bin keeps returns
    with pytest.raises(ValueError, match="range-scan"):
        schedule.wrap(gym.make("robokit/LidarNav-v0"))


def test_state_dict_round_trip_continues_the_same_draws():
    a = ScanCurriculum(reads_bin(0), ScanCurriculumConfig(start_step=0, report_every=2), seed=1)
    for success in (True, True, False):
        a.begin_episode()
        a.end_episode(success)
    b = ScanCurriculum(reads_bin(0), ScanCurriculumConfig(start_step=0, report_every=2), seed=99)
    b.load_state_dict(a.state_dict())
    for schedule in (a, b):
        schedule.begin_episode()
    assert a.corrupted == b.corrupted and a.curriculum.level == b.curriculum.level
    assert a.rng.random() == b.rng.random()


def test_training_with_the_option_writes_curriculum_metrics(tmp_path):
    """robokit train --intact-curriculum: a tiny SAC run on the range scan, the option's metrics in
    metrics.csv, its state in the checkpoint; a non-range env is refused with exit code 2."""
    import csv

    import torch

    from robokit.cli import main

    out = tmp_path / "run"
    code = main(["train", "--algo", "sac", "--env", "robokit/LidarNavRange-v0", "--online-steps", "300",
                 "--warmup-steps", "10", "--agent.batch-size", "8", "--eval-every", "1000", "--eval-episodes", "1",
                 "--out", str(out), "--no-progress", "--logger", "csv", "--threads", "1", "--intact-curriculum"])
    assert code == 0 and (out / "final.pt").is_file()
    rows = [r for r in csv.DictReader(open(out / "metrics.csv")) if r.get("curriculum/strength")]
    assert len(rows) == 2  # two 150-step episodes ended
    assert {float(r["curriculum/strength"]) for r in rows} == {0.2}
    state = torch.load(out / "final.pt", weights_only=True)
    assert state["curriculum"]["curriculum"]["levels"] == [0.2, 0.4, 0.6, 0.8, 1.0]
    # every observation of a corrupted episode went through one op (the reset's and 150 steps'); the
    # first episode starts inside the 10-step warm-up, so it is clean
    corrupted = [float(r["curriculum/corrupted"]) for r in rows]
    assert corrupted == [0.0, 1.0] and sum(state["curriculum"]["ops_used"].values()) == 151 * sum(corrupted)
    code = main(["train", "--algo", "sac", "--env", "robokit/LidarNav-v0", "--online-steps", "4",
                 "--out", str(tmp_path / "bad"), "--no-progress", "--intact-curriculum"])
    assert code == 2 and not any((tmp_path / "bad").glob("*.pt"))
