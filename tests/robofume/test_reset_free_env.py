"""The reset-free task pairs (robokit/envs/reset_free.py): gymnasium's checker, the reset-free
contract, instruction switching, success truth reached by the scripted experts, determinism."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import robokit.envs  # noqa: F401  (registers the ids)
from robokit.robofume.data import rollout, scripted_policy

PAIRS = ("robokit/PushBackForth-v0", "robokit/PushBackForth-v1", "robokit/DrawerOpenClose-v0")


@pytest.fixture(scope="module", params=PAIRS)
def env_id(request) -> str:
    return request.param


def _make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs)


def test_passes_gymnasiums_env_checker(env_id):
    from gymnasium.utils.env_checker import check_env

    env = _make(env_id, render_mode="rgb_array")
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["proprio"].shape == (4,) and obs["task"].tolist() == [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(env.render(), obs["image"])
    assert env.unwrapped.forward == env.unwrapped.instructions[0] != env.unwrapped.backward


def test_state_carries_over_and_real_resets_come_every_k_steps(env_id):
    env = _make(env_id, reset_every=30)
    unwrapped = env.unwrapped
    _, info = env.reset(seed=0)
    assert info["hard_reset"] and unwrapped.hard_resets == 1
    start = unwrapped.state()
    for _ in range(12):
        obs, *_ = env.step(unwrapped.expert_action(0))
    moved = unwrapped.state()
    assert not np.allclose(moved[:2], start[:2])  # the pusher moved
    obs_again, info = env.reset()  # a new episode, same physical state
    assert not info["hard_reset"] and unwrapped.hard_resets == 1
    np.testing.assert_array_equal(unwrapped.state(), moved)
    np.testing.assert_array_equal(obs_again["image"], obs["image"])
    for _ in range(18):  # 30 steps since the real reset
        env.step(unwrapped.expert_action(0))
    _, info = env.reset()
    assert info["hard_reset"] and unwrapped.hard_resets == 2 and unwrapped.steps_since_hard_reset == 0
    assert not unwrapped.success(unwrapped.forward)  # back at the start
    _, info = env.reset(options={"hard": True})
    assert info["hard_reset"] and unwrapped.hard_resets == 3
    env.step(unwrapped.expert_action(0))
    _, info = env.reset(seed=0)  # a seeded reset is a real one: the seed's start state again
    assert info["hard_reset"] and unwrapped.hard_resets == 4
    np.testing.assert_array_equal(unwrapped.state(), start)


def test_time_limit_ends_episodes_but_not_the_state(env_id):
    env = _make(env_id, max_episode_steps=5)
    env.reset(seed=1)
    truncations = [env.step(np.array([0.5, 0.5], np.float32))[3] for _ in range(5)]
    assert truncations == [False] * 4 + [True]
    before = env.unwrapped.state()
    _, info = env.reset()
    assert not info["hard_reset"]
    np.testing.assert_array_equal(env.unwrapped.state(), before)


def test_set_instruction_switches_without_resetting(env_id):
    env = _make(env_id)
    unwrapped = env.unwrapped
    env.reset(seed=2)
    before = unwrapped.state()
    assert not unwrapped.success() and unwrapped.success(unwrapped.backward)  # at the start = reset task done
    unwrapped.set_instruction(unwrapped.backward)
    np.testing.assert_array_equal(unwrapped.state(), before)
    obs, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert info["instruction"] == unwrapped.backward and obs["task"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert info["success"] and reward == 1.0 and not terminated  # success never ends the episode
    unwrapped.set_instruction(unwrapped.instructions[3])
    assert unwrapped.instruction == 3


def test_experts_reach_forward_then_backward_success_reset_free(env_id):
    env = _make(env_id)
    unwrapped = env.unwrapped
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(2):
        for name, other in ((unwrapped.forward, unwrapped.backward), (unwrapped.backward, unwrapped.forward)):
            episode = rollout(env, name, scripted_policy(env, name, noise=0.1, rng=rng))
            assert episode.is_terminated and episode.infos["success"][-1] and episode.rewards[-1] == 1.0
            assert not episode.infos["success"][:-1].any() and episode.task == name
            assert unwrapped.success(name) and not unwrapped.success(other)
    assert unwrapped.hard_resets == 1  # the experts undid each other: no real reset needed


def test_success_rules_follow_the_simulator_state():
    push = _make("robokit/PushBackForth-v0").unwrapped
    push.reset(seed=0)
    for name, zone in push.zones.items():
        push._set_block(zone + np.array([0.02, 0.0]))
        push._mujoco.mj_forward(push.model, push.data)
        assert push.success(name) and sum(push.success(other) for other in push.instructions) == 1
        push._set_block(zone + np.array([0.035, 0.0]))  # 3.5 cm from the centre: outside
        assert not push.success(name)
    drawer = _make("robokit/DrawerOpenClose-v0").unwrapped
    drawer.reset(seed=0)
    joint = drawer.model.joint("drawer").qposadr[0]
    for opening, truth in ((0.0, [False, True, False]), (0.075, [False, False, True]), (0.13, [True, False, False])):
        drawer.data.qpos[joint] = opening
        assert [drawer.success(i) for i in range(3)] == truth


def test_seeded_runs_are_identical_and_seeds_differ(env_id):
    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        env = _make(env_id)
        obs, _ = env.reset(seed=seed)
        policy = scripted_policy(env, 0, noise=0.3, rng=np.random.default_rng(seed))
        images = [obs["image"]]
        for _ in range(15):
            obs, *_ = env.step(policy(obs))
            images.append(obs["image"])
        return np.stack(images), env.unwrapped.state()

    images, state = run(4)
    again, state_again = run(4)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(state, state_again)
    assert not np.array_equal(run(5)[0][0], images[0])


def test_privileged_proprio_and_instruction_subset():
    env = _make("robokit/PushBackForth-v0", privileged_proprio=True,
                instructions=("push the block back to the start zone", "push the block to the green zone"))
    obs, _ = env.reset(seed=0)
    assert obs["proprio"].shape == (6,) and obs["task"].shape == (2,)
    np.testing.assert_allclose(obs["proprio"][4:], env.unwrapped.block_xy(), atol=1e-6)
    assert env.unwrapped.forward == "push the block back to the start zone"


@pytest.mark.parametrize("kwargs, message", [
    ({"reset_every": 0}, "reset_every must be a positive integer"),
    ({"reset_every": 2.5}, "reset_every must be a positive integer"),
    ({"instructions": ("fly to the moon",)}, "unknown instruction 'fly to the moon'"),
    ({"instruction": 7}, "unknown instruction 7"),
    ({"image_size": 4}, "image_size must be an integer >= 8"),
])
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _make("robokit/PushBackForth-v0", **kwargs)


def test_bad_instruction_and_action_are_named():
    env = _make("robokit/DrawerOpenClose-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="unknown instruction 'open the door'; instructions are"):
        env.unwrapped.set_instruction("open the door")
    with pytest.raises(ValueError, match="unknown instruction"):
        env.reset(options={"instruction": 9})
    with pytest.raises(ValueError, match="action must be 2 finite numbers"):
        env.unwrapped.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="unknown instruction"):
        scripted_policy(env, "fly")


def _push_block(env, direction: np.ndarray, contact: np.ndarray, steps: int = 25) -> np.ndarray:
    """Place the pusher at ``contact`` (relative to the block) and drive it along ``direction``;
    the block's xy [m] afterwards."""
    unwrapped = env.unwrapped
    env.reset(seed=0)
    unwrapped._set_pusher(unwrapped.block_xy() + contact)
    unwrapped._mujoco.mj_forward(unwrapped.model, unwrapped.data)
    for _ in range(steps):
        env.step(direction.astype(np.float32))
    return unwrapped.block_xy()


def test_v1_block_stays_on_its_track_where_the_v0_puck_leaves_the_line():
    """The cause of v0's failure (docs/robofume_envs.md): an off-centre push (the pusher 2 cm off the
    line) sends v0's puck sideways; v1's block slides only along the track and stops at the green end."""
    off_centre = np.array([-0.045, 0.02])
    v0 = _push_block(_make("robokit/PushBackForth-v0"), np.array([1.0, 0.0]), off_centre)
    v1_env = _make("robokit/PushBackForth-v1")
    v1 = _push_block(v1_env, np.array([1.0, 0.0]), off_centre)
    assert abs(v0[1]) > 0.01  # the puck left the line to the green zone
    assert v1[1] == 0.0 and v1[0] == pytest.approx(0.1, abs=2e-3)  # on the track, at the end stop
    assert v1_env.unwrapped.success(0) and not v1_env.unwrapped.success(1)


def test_v1_success_rules_and_start_state():
    env = _make("robokit/PushBackForth-v1")
    push = env.unwrapped
    _, info = env.reset(seed=1)
    assert info["success"] is False and push.success(1)  # the block starts at the start end
    assert -0.1 <= push.block_xy()[0] <= -0.09 and np.linalg.norm(push.pusher_xy() - push.block_xy()) > 0.08
    for x, truth in ((-0.1, [False, True, False]), (0.0, [False, False, True]), (0.08, [True, False, False]),
                     (0.05, [False, False, False])):
        push._set_block(np.array([x, 0.0]))
        push._mujoco.mj_forward(push.model, push.data)
        assert [push.success(i) for i in range(3)] == truth, x
    push._set_block(np.array([0.0, 0.0]))
    for pusher, behind in (((-0.045, 0.0), True), ((-0.045, 0.02), False), ((0.045, 0.0), False),
                           ((-0.09, 0.0), False)):
        push._set_pusher(np.array(pusher))
        assert push.success("put the pusher behind the block") is behind, pusher


def test_v1_experts_reach_every_instruction_reset_free():
    env = _make("robokit/PushBackForth-v1")
    unwrapped = env.unwrapped
    env.reset(seed=2)
    rng = np.random.default_rng(1)
    for name in (*unwrapped.instructions, *unwrapped.instructions):
        if unwrapped.success(name):
            continue
        episode = rollout(env, name, scripted_policy(env, name, noise=0.1, rng=rng))
        assert episode.is_terminated, name
    assert unwrapped.hard_resets == 1
