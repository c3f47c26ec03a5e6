"""INTACT on a range-scan policy's input: targeted corruption of one observation, and the
adversarial curriculum as a training-env wrapper.

A LiDAR navigation policy (``robokit/LidarNavRange-v0`` and its variants) reads ``obs["scan"]``,
a (2 * bins,) range scan built from the sensor's cloud (:func:`robokit.envs.lidar_nav.range_scan`:
per azimuth bin the nearest horizontal range / max range, then the brightest intensity).
:func:`corrupt_observation` sends the cloud behind the scan through one of INTACT's operations
(:func:`robokit.intact.attacks.corrupt_cloud`, on the cloud divided by the max range so it spans
the unit sphere as INTACT's clouds do), aimed by the policy's own perturbation saliency
(:func:`scan_saliency`, Greydanus et al. 2018) or untargeted at the same budget, and rebuilds the
scan. The evaluation (``benchmarks/lidar_nav_sac.py --intact``) and the curriculum share it.

:class:`ScanCurriculum` is INTACT's student side for an RL agent: during training, a share of the
episodes (``1 - clean_fraction``) see every observation corrupted this way, one of INTACT's
operations drawn per observation (INTACT draws one per cloud), at the strength of
:class:`robokit.intact.curriculum.Curriculum` (the classifier's and detector's schedule, unchanged
class). The gate's "robust accuracy at the current level" is the success rate of the corrupted
training episodes at that level, reported every ``report_every`` of them. The agent acts on and
learns from (the replay stores) what it saw, so actor and critic both train on corrupted scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch

from robokit.intact.attacks import TARGETED_OPS, TargetedCorruptionConfig, corrupt_cloud
from robokit.intact.curriculum import DEFAULT_LEVELS, Curriculum
from robokit.intact.policy import BatchPolicy, occlusion_saliency
from robokit.intact.saliency import rank_normalise

#: the fill of an emptied bin: range 1 (no return within max range), intensity 0
EMPTY_BIN = np.array([1.0, 0.0])


def scan_saliency(policy: BatchPolicy, obs: Mapping[str, np.ndarray], bins: int) -> np.ndarray:
    """(bins,) perturbation saliency of a range-scan policy: each bin emptied (range 1, intensity 0,
    what dropping every return in it does) -> half the squared change of the deterministic action
    (:func:`robokit.intact.policy.occlusion_saliency`, Greydanus et al. 2018)."""
    groups = np.stack([np.arange(bins), bins + np.arange(bins)], axis=1)
    return occlusion_saliency(policy, obs, "scan", groups, EMPTY_BIN)


def point_saliency(policy: BatchPolicy, obs: Mapping[str, np.ndarray], points: np.ndarray, bins: int) -> np.ndarray:
    """(N,) saliency of each point of ``points`` (N, >=2): its bin's rank percentile in [0, 1]."""
    from robokit.envs.lidar_nav import range_bins

    ranks = rank_normalise(torch.from_numpy(scan_saliency(policy, obs, bins))[None])[0].numpy()
    return ranks[range_bins(points, bins)]


def corrupt_observation(policy: BatchPolicy | None, obs: dict, points: np.ndarray, bins: int, max_range: float,
                        op: str, strength: float, rng: np.random.Generator,
                        config: TargetedCorruptionConfig | None = None) -> dict:
    """``obs`` with its scan rebuilt from ``points`` (N, 4) (metres, the cloud behind the scan) after
    INTACT's ``op`` at ``strength``: targeted by ``policy``'s saliency, or untargeted (uniform
    saliency, the same budget) when ``policy`` is None. Fewer than two points: ``obs`` unchanged."""
    from robokit.envs.lidar_nav import range_scan

    if len(points) < 2:
        return obs
    saliency = None if policy is None else point_saliency(policy, obs, points, bins)
    cloud = np.array(points, np.float32)
    cloud[:, :3] /= max_range
    cloud = corrupt_cloud(cloud, saliency, op, strength, rng, config or TargetedCorruptionConfig())
    cloud[:, :3] *= max_range
    return {**obs, "scan": range_scan(cloud, bins, max_range)}


@dataclass(frozen=True)
class ScanCurriculumConfig:
    """Settings of :class:`ScanCurriculum` (sources in docs/sim_lidar.md)."""

    levels: tuple[float, ...] = DEFAULT_LEVELS
    """curriculum strengths (``Curriculum``'s default, INTACT's table)"""
    threshold: float = 0.5
    """success rate of the corrupted training episodes at the current level that advances it"""
    report_every: int = 10
    """corrupted training episodes per gate report (the RL stand-in for an epoch)"""
    clean_fraction: float = 0.5
    """share of training episodes left clean (INTACT's half-clean batches)"""
    start_step: int = 1000
    """env steps before the first corrupted episode (the agent's random warm-up: no policy to target)"""
    ops: tuple[str, ...] = ("drop", "noise", "displace")
    """INTACT's operations, one drawn per observation"""
    targeted: bool = True
    """False: the plain curriculum (uniform saliency, the same budgets)"""
    attack: TargetedCorruptionConfig = field(default_factory=TargetedCorruptionConfig)

    def __post_init__(self) -> None:
        unknown = set(self.ops) - set(TARGETED_OPS)
        if unknown or not self.ops:
            raise ValueError(f"ScanCurriculum ops must be some of {TARGETED_OPS}, got {self.ops}")
        if not 0.0 <= self.clean_fraction < 1.0:
            raise ValueError(f"ScanCurriculum clean_fraction must be in [0, 1), got {self.clean_fraction}")
        if self.report_every < 1:
            raise ValueError(f"ScanCurriculum report_every must be >= 1, got {self.report_every}")


class ScanCurriculum:
    """INTACT's curriculum on a range-scan env's training observations.

    ``wrap(env)`` returns the env the agent trains in; the trainer calls :meth:`end_episode` with
    each episode's success and logs what it returns (``curriculum/*``). ``policy`` is called
    with a batch of observations (dict of (B, ...) arrays) -> (B, A) deterministic actions: the
    current agent, whose saliency aims the corruption.
    """

    def __init__(self, policy: BatchPolicy, config: ScanCurriculumConfig = ScanCurriculumConfig(),
                 seed: int = 0) -> None:
        self.policy, self.config = policy, config
        self.curriculum = Curriculum(levels=config.levels, threshold=config.threshold)
        self.rng = np.random.default_rng(seed)
        self.env_steps = 0
        self.corrupted = False  # the current episode's
        self.successes: list[float] = []  # corrupted episodes at the current level since the last report
        self.ops_used = dict.fromkeys(config.ops, 0)

    def wrap(self, env: gym.Env) -> gym.Env:
        base = env.unwrapped
        if getattr(base, "observation", None) != "range" or not hasattr(base, "last_points"):
            raise ValueError(f"--intact-curriculum needs a range-scan LiDAR env (robokit/LidarNavRange-v0 "
                             f"family), got {env.spec.id if env.spec else type(base).__name__}")
        return _CurriculumEnv(env, self)

    def begin_episode(self) -> None:
        """Draw whether the episode about to start is corrupted."""
        self.corrupted = self.env_steps >= self.config.start_step and self.rng.random() >= self.config.clean_fraction

    def observe(self, obs: dict, base: gym.Env) -> dict:
        """One observation as the agent sees it: corrupted in a corrupted episode, else as is."""
        if not self.corrupted:
            return obs
        op = self.config.ops[int(self.rng.integers(len(self.config.ops)))]
        self.ops_used[op] += 1
        policy = self.policy if self.config.targeted else None
        return corrupt_observation(policy, obs, base.last_points, base.bins, base.max_range, op,
                                   self.curriculum.strength, self.rng, self.config.attack)

    def end_episode(self, success: bool) -> dict[str, float]:
        """Account one finished training episode; the ``curriculum/*`` metrics to log."""
        row = {"curriculum/corrupted": float(self.corrupted)}
        if self.corrupted:
            self.successes.append(float(success))
            if len(self.successes) >= self.config.report_every:
                rate = float(np.mean(self.successes))
                row["curriculum/robust_success"] = rate
                row["curriculum/advanced"] = float(self.curriculum.report(rate))
                self.successes = []
        return {**row, "curriculum/level": float(self.curriculum.level),
                "curriculum/strength": self.curriculum.strength}

    def state_dict(self) -> dict:
        return {"curriculum": self.curriculum.state_dict(), "rng": self.rng.bit_generator.state,
                "env_steps": self.env_steps, "successes": list(self.successes), "ops_used": dict(self.ops_used)}

    def load_state_dict(self, state: dict) -> None:
        self.curriculum = Curriculum.from_state_dict(state["curriculum"])
        self.rng.bit_generator.state = state["rng"]
        self.env_steps, self.successes = int(state["env_steps"]), list(state["successes"])
        self.ops_used = dict(state["ops_used"])


class _CurriculumEnv(gym.Wrapper):
    """The training env seen through a :class:`ScanCurriculum`."""

    def __init__(self, env: gym.Env, schedule: ScanCurriculum) -> None:
        super().__init__(env)
        self.schedule = schedule

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.schedule.begin_episode()
        return self.schedule.observe(obs, self.env.unwrapped), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.schedule.env_steps += 1
        return self.schedule.observe(obs, self.env.unwrapped), reward, terminated, truncated, info
