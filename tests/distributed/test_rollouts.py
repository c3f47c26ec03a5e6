"""Distributed rollouts: a killed actor is replaced, the replay holds only whole episodes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.distributed.conftest import ENV_ID

pytestmark = pytest.mark.slow


def _gather(fleet) -> list[dict]:
    results = []
    while fleet.inflight:
        results += fleet.receive(timeout=None)
    return results


def _check_whole_episodes(buffer, lengths: list[int]) -> None:
    """Every stored episode runs step 0..T-1 in order and only its last step ends it."""
    size = len(buffer)
    episode, step = buffer.storage.dense("episode")[:size], buffer.storage.dense("step")[:size]
    ends = buffer.storage.dense("terminated")[:size] + buffer.storage.dense("truncated")[:size]
    assert size == sum(lengths)
    for index, length in enumerate(lengths):
        rows = np.flatnonzero(episode == index)
        np.testing.assert_array_equal(step[rows], np.arange(length))
        np.testing.assert_array_equal(ends[rows], np.r_[np.zeros(length - 1), 1.0])


def test_killed_actor_is_replaced_and_its_unfinished_episodes_never_reach_the_replay(ray_local):
    from robokit.algos.sac import SACConfig
    from robokit.data.replay import ReplayBuffer
    from robokit.distributed.rollouts import RolloutFleet, RolloutSpec, policy_weights

    spec = RolloutSpec(ENV_ID, "sac", SACConfig(hidden_dims=(8, 8)), 3, 1, envs=2, seed=0)
    fleet = RolloutFleet(ray_local, spec, workers=2)
    try:
        for index in (0, 1):  # 75 steps in each env: Pendulum episodes (200 steps) stay unfinished
            fleet.request(index, 150, random_actions=True)
        assert [r["episodes"] for r in _gather(fleet)] == [[], []]
        ray_local.kill(fleet.actors[0])  # dies holding two 75-step episodes
        from robokit.algos import make_agent

        fleet.publish(1, policy_weights(make_agent("sac", 3, 1, spec.agent_config, seed=7)))
        for index in (0, 1):
            fleet.request(index, 300, random_actions=False)
        survivors = _gather(fleet)
        assert fleet.restarts == 1 and len(survivors) == 1
        assert [len(ep) for ep in survivors[0]["episodes"]] == [200, 200] and survivors[0]["version"] == 1
        fleet.request(0, 400, random_actions=False)  # the replacement starts fresh episodes
        fresh = _gather(fleet)
        assert [len(ep) for ep in fresh[0]["episodes"]] == [200, 200] and fresh[0]["version"] == 1
    finally:
        fleet.shutdown()
    buffer = ReplayBuffer(2000, (3,), 1)
    episodes = survivors[0]["episodes"] + fresh[0]["episodes"]
    for episode in episodes:
        buffer.add_episode(episode)
    _check_whole_episodes(buffer, [len(ep) for ep in episodes])


def test_train_with_ray_rollout_actors(ray_local, tmp_path):
    from robokit.core.checkpoint import load_checkpoint
    from robokit.data.replay import ReplayBuffer
    from robokit.trainers.cli import train_main

    out = tmp_path / "run"
    assert train_main(["--algo", "sac", "--env", ENV_ID, "--online-steps", "400", "--out", str(out), "--logger", "csv",
                       "--eval-every", "0", "--eval-episodes", "1", "--no-progress", "--agent.hidden-dims", "8", "8",
                       "--agent.batch-size", "16", "--agent.warmup-steps", "200", "--distributed", "ray",
                       "--workers", "2", "--rollout-envs", "2", "--rollout-chunk", "100", "--broadcast-every",
                       "20"]) == 0
    state = load_checkpoint(out / "final.pt")
    summary = state["summary"]
    assert summary["rollout_actors"] == 2 and summary["actor_restarts"] == 0
    assert summary["learner_updates"] == state["counters"]["env_step"] - 200
    assert summary["weight_versions"] == summary["learner_updates"] // 20
    replay = ReplayBuffer.load(out / "checkpoints" / state["online_replay"])
    _check_whole_episodes(replay, [200] * (len(replay) // 200))
    assert len(replay) == state["counters"]["env_step"] >= 400
