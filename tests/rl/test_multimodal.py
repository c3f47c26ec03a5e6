"""Observation specs, encoders and the shared-encoder rule across every replay/rollout algorithm.

Real parts throughout: real gymnasium spaces, robokit's replay buffer, real spconv for the
sparse encoder. The trainer test uses a tiny gymnasium env defined here (a dot on a 16x16
image) because the pixel wrapper of MuJoCo envs lives elsewhere (robokit.envs).
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from robokit.algos import ALGOS, load_agent, make_agent, save_agent
from robokit.core.checkpoint import load_checkpoint, save_checkpoint
from robokit.core.errors import ObservationError
from robokit.data import Episode, ReplayBuffer
from robokit.nets.encoders import EncodedHead, EncoderConfig, random_shift
from robokit.nets.obs_batch import ObsDict, PointBatch
from robokit.nets.obs_spec import (
    DictSpec,
    ImageSpec,
    PointCloudSpec,
    TextSpec,
    VectorSpec,
    spec_from_dict,
    spec_from_episodes,
    spec_from_replay,
    spec_from_space,
)
from robokit.nets.text import hash_embed

ACT = 2
BATCH = 8
#: every algorithm trained from replay or rollouts (DT/RCSL/DoC/Uni-O4 take vectors only)
ALGOS_ENCODED = ("sac", "rlpd", "wsrl", "cql", "calql", "iql", "bc", "ppo")
IMAGE = ImageSpec(16, 16, 3, frame_stack=2)
CLOUD = PointCloudSpec(3)
DICT = DictSpec({"image": ImageSpec(16, 16, 3), "proprio": VectorSpec(4), "task": VectorSpec(2)})
KINDS = {
    "cnn": (IMAGE, EncoderConfig()),
    "pointnet": (CLOUD, EncoderConfig(pointnet_widths=(16, 32))),
    "sparse": (CLOUD, EncoderConfig(pointcloud="sparse")),
    "dict": (DICT, EncoderConfig(cnn_filters=8)),
    "mlp": (VectorSpec(5), EncoderConfig(vector="mlp", mlp_hidden=(16,))),
}


def observation(spec, rng: np.random.Generator):
    """One random observation of ``spec``."""
    if isinstance(spec, VectorSpec):
        return rng.standard_normal(spec.dim).astype(np.float32)
    if isinstance(spec, ImageSpec):
        return rng.integers(0, 256, spec.shape, dtype=np.uint8)
    if isinstance(spec, PointCloudSpec):
        return rng.uniform(-0.9, 0.9, (int(rng.integers(20, 60)), spec.channels)).astype(np.float32)
    return {name: observation(part, rng) for name, part in spec.parts.items()}


def filled_replay(spec, steps: int = 40, seed: int = 0) -> ReplayBuffer:
    """A replay of ``steps`` random transitions of ``spec`` observations (episodes of 10 steps)."""
    rng = np.random.default_rng(seed)
    shape, dtype = spec.layout()
    buffer = ReplayBuffer(steps, shape, ACT, seed=seed, obs_dtype=dtype, store_mc_return=True)
    obs = observation(spec, rng)
    for step in range(steps):
        next_obs = observation(spec, rng)
        buffer.add(obs, rng.uniform(-1, 1, ACT), float(rng.normal()), next_obs, False, (step + 1) % 10 == 0)
        obs = next_obs
    return buffer


def small_config(algo: str, encoder: EncoderConfig):
    config_cls, _ = ALGOS.get(algo)
    names = {f.name for f in dataclasses.fields(config_cls)}
    options = {"batch_size": BATCH, "encoder": encoder, "hidden_dims": (32, 32)}
    if "ensemble_size" in names and config_cls().ensemble_size > 2:
        options["ensemble_size"] = 3  # RLPD/WSRL's 10 shrunk
    if algo in ("rlpd", "wsrl"):
        options["utd_ratio"] = 2
    if "cql_n_actions" in names:
        options["cql_n_actions"] = 3
    return config_cls(**options)


def training_batch(agent, buffer: ReplayBuffer, rows: int) -> dict:
    batch = agent.torch_batch(buffer.sample(rows))
    if agent.on_policy:  # PPO's rollout keys, on the same observations
        generator = torch.Generator().manual_seed(1)
        batch.update(log_prob=torch.randn(rows, generator=generator), advantage=torch.randn(rows, generator=generator),
                     **{"return": torch.randn(rows, generator=generator)})
    return batch


# ---------------------------------------------------------------------------------------- specs
def test_spec_round_trip_space_to_checkpoint(tmp_path):
    space = gym.spaces.Dict({
        "image": gym.spaces.Box(0, 255, (3, 16, 16, 3), np.uint8),
        "proprio": gym.spaces.Box(-np.inf, np.inf, (7,), np.float32),
        "cloud": gym.spaces.Sequence(gym.spaces.Box(-1, 1, (4,), np.float32)),
        "instruction": gym.spaces.Text(64),
    })
    spec = spec_from_space(space)
    assert spec == DictSpec({"image": ImageSpec(16, 16, 3, 3), "proprio": VectorSpec(7),
                             "cloud": PointCloudSpec(4), "instruction": TextSpec()})
    save_checkpoint(tmp_path / "spec.pt", {"spec": spec.to_dict()})
    assert spec_from_dict(load_checkpoint(tmp_path / "spec.pt")["spec"]) == spec
    assert spec_from_space(gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)) == ImageSpec(84, 84, 3)
    assert spec_from_space(gym.spaces.Box(-1, 1, (17,), np.float64)) == VectorSpec(17)
    with pytest.raises(ValueError, match=r"obs\['x'\]: observation space Discrete"):
        spec_from_space(gym.spaces.Dict({"x": gym.spaces.Discrete(3)}))


def test_spec_from_replay_and_episodes_match_the_space():
    spec = DictSpec({"image": ImageSpec(16, 16, 3), "proprio": VectorSpec(4)})
    assert spec_from_replay(filled_replay(spec, 10)) == spec
    rng = np.random.default_rng(0)
    clouds = [observation(CLOUD, rng) for _ in range(4)]
    episode = Episode(clouds, np.zeros((3, ACT)), np.zeros(3), [False] * 3, [False, False, True])
    assert spec_from_episodes([episode]) == CLOUD
    assert spec_from_replay(filled_replay(CLOUD, 10)) == CLOUD


def test_checkpoint_keeps_the_spec_and_load_agent_rebuilds_the_encoder(tmp_path):
    agent = make_agent("sac", DICT, ACT, small_config("sac", EncoderConfig(cnn_filters=8)), seed=3)
    path = save_agent(agent, tmp_path / "agent.pt")
    loaded = load_agent(path)
    assert loaded.obs_spec == DICT
    assert isinstance(loaded.actor, EncodedHead) and loaded.encoder_config.cnn_filters == 8
    obs = observation(DICT, np.random.default_rng(0))
    np.testing.assert_array_equal(loaded.act(obs), agent.eval().act(obs))


def test_vector_agents_are_unchanged_by_the_encoder_layer():
    """Vectors with the identity encoder: no wrapper, the same parameters and state keys as before."""
    agent = make_agent("sac", 5, ACT, seed=0)
    assert not isinstance(agent.actor, EncodedHead)
    assert all(not key.startswith(("actor.head", "critic.body")) for key in agent.state_dict())
    assert agent.observation_shape == (5,) and agent.feature_dim == 5


# ------------------------------------------------------------------- every algorithm x encoder
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("algo", ALGOS_ENCODED)
def test_algorithm_with_encoder_updates_and_reloads(algo, kind, tmp_path):
    spec, encoder = KINDS[kind]
    config = small_config(algo, encoder)
    agent = make_agent(algo, spec, ACT, config, seed=0)
    buffer = filled_replay(spec)
    before = {name: p.detach().clone() for name, p in agent.named_parameters()}
    rows = config.batch_size * getattr(config, "utd_ratio", 1)
    for _ in range(3):
        metrics = agent.update(training_batch(agent, buffer, rows))
        assert metrics and all(np.isfinite(value) for value in metrics.values()), metrics
    moved = [name for name, p in agent.named_parameters() if not torch.equal(p, before[name])]
    body = [name for name in before if ".body." in name]
    assert body and set(body) <= set(moved), f"encoder body did not train: {sorted(set(body) - set(moved))[:3]}"
    rng = np.random.default_rng(5)
    single, batch = observation(spec, rng), [observation(spec, rng) for _ in range(3)]
    path = save_agent(agent, tmp_path / "agent.pt")
    loaded = load_agent(path)
    np.testing.assert_array_equal(loaded.act(single), agent.eval().act(single))
    if isinstance(spec, PointCloudSpec):
        stacked = batch
    elif isinstance(spec, DictSpec):
        stacked = {name: np.stack([o[name] for o in batch]) for name in spec.parts}
    else:
        stacked = np.stack(batch)
    actions = loaded.act(stacked)
    assert actions.shape == (3, ACT) and np.all(np.abs(actions) <= 1)


@pytest.mark.parametrize("algo", ("sac", "cql", "iql"))
def test_shared_encoder_gets_no_gradient_from_the_actor_loss(algo):
    agent = make_agent(algo, IMAGE, ACT, small_config(algo, EncoderConfig()), seed=0)
    body = agent.critic.body
    assert agent.actor.body is body and agent.actor.detach and not agent.critic.detach
    body_ids = {id(p) for p in body.parameters()}
    assert not body_ids & {id(p) for p in agent.actor.parameters()}  # the actor's optimizer cannot move it
    batch = training_batch(agent, filled_replay(IMAGE), BATCH)
    agent.zero_grad(set_to_none=True)
    weights = [p.detach().clone() for p in body.parameters()]
    trunk = [p.detach().clone() for p in agent.actor.trunk.parameters()]
    if algo == "iql":  # IQL's actor and value losses (its update runs them with the critic step)
        loss = -agent.actor_log_prob(batch["obs"], batch["action"]).mean() + agent.value(batch["obs"]).mean()
        loss.backward()
        agent.actor_optimizer.step()
    else:  # the algorithm's own actor + temperature step
        agent.update_actor(batch)
    assert all(p.grad is None for p in body.parameters()), "actor loss reached the shared encoder"
    assert all(torch.equal(a, b) for a, b in zip(weights, body.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(trunk, agent.actor.trunk.parameters(), strict=True))
    agent.zero_grad(set_to_none=True)
    agent.critic(batch["obs"], batch["action"]).sum().backward()
    assert all(p.grad is not None for p in body.parameters())


def test_separate_encoders_option_gives_each_network_its_own_body():
    agent = make_agent("sac", IMAGE, ACT, small_config("sac", EncoderConfig(shared=False)), seed=0)
    assert agent.actor.body is not agent.critic.body and not agent.actor.detach
    batch = training_batch(agent, filled_replay(IMAGE), BATCH)
    action, _ = agent.actor.sample(batch["obs"], agent.generator)
    action.sum().backward()
    assert all(p.grad is not None for p in agent.actor.body.parameters())


def test_target_critic_keeps_its_own_polyak_copy_of_the_encoder():
    agent = make_agent("sac", IMAGE, ACT, small_config("sac", EncoderConfig()), seed=0)
    target, online = agent.target_critic.body, agent.critic.body
    assert target is not online and all(not p.requires_grad for p in target.parameters())
    first = next(target.parameters()).detach().clone()
    agent.update(training_batch(agent, filled_replay(IMAGE), BATCH))
    assert not torch.equal(first, next(target.parameters()))



def counting_body(agent) -> list[int]:
    """Count forward passes of the agent's shared encoder body (a forward hook; one list entry)."""
    calls = [0]
    agent.critic.body.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


@pytest.mark.parametrize(("algo", "reused", "fresh"), [("sac", 2, 4), ("cql", 2, 6), ("iql", 3, 4)])
def test_one_update_reuses_the_critic_steps_encoding(algo, reused, fresh):
    """SAC: critic step encodes s' (actor, no graph) and s (critic, with graph); the actor step then
    reads s twice (actor, frozen critic) from the cache instead of running the CNN again. CQL's
    penalty reads the TD term's encoding of s (with its graph) and the cached s and s' for its
    policy actions, so it adds no pass with reuse (without: the policy's s and s'); IQL's actor
    reuses V's encoding of s."""
    counts = {}
    for reuse in (True, False):
        config = small_config(algo, EncoderConfig(reuse_features=reuse))
        agent = make_agent(algo, IMAGE, ACT, config, seed=0)
        calls = counting_body(agent)
        agent.update(training_batch(agent, filled_replay(IMAGE), BATCH))
        counts[reuse] = calls[0]
    assert counts == {True: reused, False: fresh}


def test_reused_features_are_the_pre_step_encoding_drqv2_rule():
    """With reuse the actor step equals re-encoding with the body weights from before the critic's
    optimizer step (DrQ-v2); re-encoding with the updated weights (DrQ) gives another update, and
    with a zero critic learning rate (weights unchanged) the two rules agree exactly."""
    buffer = filled_replay(IMAGE)
    batches = [buffer.sample(BATCH) for _ in range(3)]

    def trained(reuse: bool, pre_step_weights: bool = False, critic_lr: float = 1e-3):
        config = dataclasses.replace(small_config("sac", EncoderConfig(reuse_features=reuse)), critic_lr=critic_lr)
        agent = make_agent("sac", IMAGE, ACT, config, seed=0)
        if pre_step_weights:  # the reference: re-encode, but with the weights the update started from
            update_actor, body = agent.update_actor, agent.critic.body
            start = {}
            agent.update_critic = lambda batch, inner=agent.update_critic: (
                start.update({k: v.clone() for k, v in body.state_dict().items()}), inner(batch))[1]

            def actor_step(batch):
                now = {k: v.clone() for k, v in body.state_dict().items()}
                body.load_state_dict(start)
                try:
                    return update_actor(batch)
                finally:
                    body.load_state_dict(now)
            agent.update_actor = actor_step
        for raw in batches:
            agent.update(agent.torch_batch(raw))
        return agent.state_dict()

    def same(a, b) -> bool:
        return all(torch.equal(a[k], b[k]) for k in a)

    reused = trained(True)
    assert same(reused, trained(False, pre_step_weights=True))
    assert not same(reused, trained(False))
    assert same(trained(True, critic_lr=0.0), trained(False, critic_lr=0.0))


def test_feature_cache_lives_for_one_update_and_skips_the_target():
    agent = make_agent("sac", IMAGE, ACT, small_config("sac", EncoderConfig()), seed=0)
    batch = training_batch(agent, filled_replay(IMAGE), BATCH)
    assert agent.target_critic.cache is not agent.critic.cache  # its own (never active) copy
    agent.update(batch)
    assert agent.critic.cache.entries is None  # nothing kept after the update
    calls = counting_body(agent)
    with torch.no_grad():
        agent.actor.sample(batch["obs"], agent.generator)
        agent.actor.sample(batch["obs"], agent.generator)
    assert calls[0] == 2  # outside an update every read runs the body


# ----------------------------------------------------------------------------- replay -> torch
def test_replay_batches_keep_images_uint8_and_clouds_flat():
    agent = make_agent("sac", DICT, ACT, small_config("sac", EncoderConfig(cnn_filters=8)), seed=0)
    batch = agent.torch_batch(filled_replay(DICT).sample(BATCH))
    assert isinstance(batch["obs"], ObsDict) and batch["obs"]["image"].dtype == torch.uint8
    cloud_agent = make_agent("sac", CLOUD, ACT, small_config("sac", EncoderConfig()), seed=0)
    buffer = filled_replay(CLOUD)
    raw = buffer.gather_transitions(np.arange(5))
    batch = cloud_agent.torch_batch(raw)
    assert isinstance(batch["obs"], PointBatch) and "obs_offsets" not in batch
    assert batch["obs"].points.shape == raw["obs"].shape and len(batch["obs"]) == 5
    assert np.shares_memory(batch["obs"].points.numpy(), raw["obs"])  # no copy on the way to torch


def test_point_batch_row_operations_match_per_cloud_lists():
    rng = np.random.default_rng(0)
    clouds = [observation(CLOUD, rng) for _ in range(5)]
    batch = PointBatch.from_clouds(clouds)

    def as_list(points: PointBatch) -> list:
        return [points.points[points.offsets[i]:points.offsets[i + 1]].numpy() for i in range(len(points))]

    both = torch.cat([batch, batch[1:3]])
    expected = clouds + clouds[1:3]
    assert all(np.array_equal(a, b) for a, b in zip(as_list(both), expected, strict=True))
    repeated = batch.repeat_interleave(2, dim=0)
    assert all(np.array_equal(a, clouds[i // 2]) for i, a in enumerate(as_list(repeated)))
    parts = batch.chunk(2)
    assert [len(p) for p in parts] == [3, 2] and np.array_equal(as_list(parts[1])[0], clouds[3])
    picked = batch[torch.tensor([4, 0])]
    assert np.array_equal(as_list(picked)[0], clouds[4]) and np.array_equal(as_list(picked)[1], clouds[0])


def test_pointnet_point_scale_divides_xyz_only():
    """``--agent.encoder.point-scale s``: PointNet reads x, y, z / s and the other channels as they are."""
    from robokit.core.config import ConfigError
    from robokit.nets.encoders import build_body

    rng = np.random.default_rng(0)
    clouds = [rng.uniform(-8, 8, (n, 4)).astype(np.float32) for n in (5, 9)]
    spec = PointCloudSpec(channels=4)
    torch.manual_seed(0)
    scaled = build_body(spec, EncoderConfig(point_scale=8.0))
    torch.manual_seed(0)
    plain = build_body(spec, EncoderConfig())
    by_hand = [np.concatenate([c[:, :3] / 8.0, c[:, 3:]], axis=1) for c in clouds]
    torch.testing.assert_close(scaled(PointBatch.from_clouds(clouds)), plain(PointBatch.from_clouds(by_hand)))
    assert not torch.allclose(plain(PointBatch.from_clouds(clouds)), plain(PointBatch.from_clouds(by_hand)))
    with pytest.raises(ConfigError, match="point-scale"):
        EncoderConfig(point_scale=0.0)


def test_training_batches_are_shifted_except_for_on_policy_agents():
    buffer = filled_replay(IMAGE)
    raw = buffer.gather_transitions(np.arange(BATCH))
    for algo, shifted in (("sac", True), ("ppo", False)):
        agent = make_agent(algo, IMAGE, ACT, small_config(algo, EncoderConfig()), seed=0)
        batch = agent.torch_batch(raw)
        assert batch["obs"].dtype == torch.uint8
        assert torch.equal(batch["obs"], torch.from_numpy(raw["obs"])) is not shifted, algo
    off = make_agent("sac", IMAGE, ACT, small_config("sac", EncoderConfig(augment="none")), seed=0)
    assert torch.equal(off.torch_batch(raw)["obs"], torch.from_numpy(raw["obs"]))


def test_random_shift_equals_replicate_pad_then_crop():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (4, 2, 12, 10, 3), dtype=np.uint8))
    generator = torch.Generator().manual_seed(7)
    shifts = torch.randint(0, 9, (2, 4), generator=torch.Generator().manual_seed(7))
    out = random_shift(images, 4, generator)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    frames = images.permute(0, 1, 4, 2, 3).reshape(4, 6, 12, 10).float()
    padded = torch.nn.functional.pad(frames, (4, 4, 4, 4), mode="replicate")
    for i in range(4):
        dy, dx = int(shifts[0, i]), int(shifts[1, i])
        crop = padded[i, :, dy:dy + 12, dx:dx + 10].reshape(2, 3, 12, 10).permute(0, 2, 3, 1)
        assert torch.equal(crop.to(torch.uint8), out[i])
    assert torch.equal(random_shift(images, 0, generator), images)


# ----------------------------------------------------------------------------- bad observations
@pytest.mark.parametrize("bad, message", [
    ({"image": np.zeros((8, 8, 3), np.uint8)}, r"obs\['image'\]: expected an image of shape \(16, 16, 3\)"),
    ({"image": np.full((16, 16, 3), 0.5, np.float32)}, r"obs\['image'\]: images are uint8 pixels.*\[0\.5, 0\.5\]"),
    ({"image": np.full((16, 16, 3), 300.0)}, r"obs\['image'\]: .*\[300, 300\]"),
    ({"proprio": np.array([0, np.nan, 0, 0], np.float32)}, r"obs\['proprio'\]: non-finite value nan at index \(1,\)"),
    ({"task": np.zeros(3, np.float32)}, r"obs\['task'\]: expected obs of shape \(2,\)"),
])
def test_bad_dict_observations_name_the_key(bad, message):
    agent = make_agent("sac", DICT, ACT, small_config("sac", EncoderConfig(cnn_filters=8)), seed=0)
    obs = {**observation(DICT, np.random.default_rng(0)), **bad}
    with pytest.raises(ObservationError, match=message):
        agent.act(obs)


def test_bad_clouds_and_missing_keys_name_the_key():
    cloud_agent = make_agent("bc", CLOUD, ACT, small_config("bc", EncoderConfig()), seed=0)
    with pytest.raises(ObservationError, match=r"obs: empty point cloud"):
        cloud_agent.act(np.zeros((0, 3), np.float32))
    with pytest.raises(ObservationError, match=r"obs\[1\]: expected a point cloud of shape \(N, 3\)"):
        cloud_agent.act([np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32)])
    with pytest.raises(ObservationError, match=r"obs\[0\]: non-finite value inf at index \(2, 1\)"):
        cloud_agent.act(np.array([[[0, 0, 0]] * 2 + [[0, np.inf, 0]]], np.float32))  # (B, N, C) of a vector env
    assert cloud_agent.act(np.zeros((2, 5, 3), np.float32)).shape == (2, ACT)
    space = gym.spaces.Sequence(gym.spaces.Box(-1, 1, (3,), np.float32), seed=0)  # unstacked: a tuple of points
    points = space.sample()
    while not points:
        points = space.sample()
    np.testing.assert_array_equal(cloud_agent.act(points), cloud_agent.act(np.stack(points)))
    with pytest.raises(ObservationError, match=r"obs: empty point cloud"):
        cloud_agent.act(())
    agent = make_agent("bc", DICT, ACT, small_config("bc", EncoderConfig(cnn_filters=8)), seed=0)
    obs = observation(DICT, np.random.default_rng(0))
    del obs["task"]
    with pytest.raises(ObservationError, match=r"obs: keys .* \(missing \['task'\], unexpected \[\]\)"):
        agent.act(obs)
    assert issubclass(ObservationError, ValueError)  # the CLI's bad-input convention (exit 2, one line)


def test_agents_refuse_observations_they_cannot_take():
    with pytest.raises(ValueError, match="--algo dt takes vector or image or text or dict observations only, "
                                         "got pointcloud"):
        make_agent("dt", CLOUD, ACT)
    with pytest.raises(ValueError, match="--algo unio4 takes vector observations only, got image"):
        make_agent("unio4", IMAGE, ACT)


@pytest.mark.parametrize("spec", [IMAGE, DICT], ids=["image", "dict"])
@pytest.mark.parametrize("algo", ("dt", "rcsl", "doc"))
def test_sequence_agents_encode_each_step_and_reload(algo, spec, tmp_path):
    config_cls, _ = ALGOS.get(algo)
    options = {"hidden": 16, "batch_size": BATCH, "context_length": 1 if algo == "rcsl" else 3,
               "encoder": EncoderConfig(cnn_filters=8)}
    if algo == "rcsl":
        options = {"hidden_dims": (16,), "batch_size": BATCH, "context_length": 1, "encoder": options["encoder"]}
    if algo == "doc":
        options.update(future_length=2, latent_dim=2)
    agent = make_agent(algo, spec, ACT, config_cls(**options), seed=0)
    buffer = filled_replay(spec)
    before = {name: p.detach().clone() for name, p in agent.named_parameters()}
    for _ in range(3):
        metrics = agent.update(agent.torch_batch(buffer.sample(BATCH, view=agent.replay_view())))
        assert all(np.isfinite(value) for value in metrics.values()), metrics
    body = [name for name in before if name.startswith("step_encoder.body.")]
    assert body and all(not torch.equal(before[name], dict(agent.named_parameters())[name]) for name in body)
    loaded = load_agent(save_agent(agent, tmp_path / "agent.pt"))
    agent.eval()
    rng = np.random.default_rng(3)
    for _ in range(3):  # the history grows, so the window's encoder sees 1, 2, 3 steps
        obs = observation(spec, rng)
        np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
        loaded.observe_reward(1.0)
        agent.observe_reward(1.0)


# ------------------------------------------------------------------------------ text and tasks
def test_hash_text_embedding_is_deterministic_and_conditions_a_policy():
    vectors = hash_embed(["open the drawer", "open the drawer", "close the window"], 32)
    assert vectors.shape == (3, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1)
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert not np.allclose(vectors[0], vectors[2])
    np.testing.assert_array_equal(hash_embed(["open the drawer"], 32)[0], vectors[0])  # no per-process salt
    spec = DictSpec({"proprio": VectorSpec(3), "instruction": TextSpec(32)})
    agent = make_agent("bc", spec, ACT, small_config("bc", EncoderConfig()), seed=0)
    obs = {"proprio": np.zeros(3, np.float32), "instruction": "open the drawer"}
    embedded = {"proprio": obs["proprio"], "instruction": vectors[0]}
    np.testing.assert_array_equal(agent.act(obs), agent.act(embedded))
    assert spec.storable(obs)["instruction"].shape == (32,)


def test_text_embedder_choice_and_fallback(monkeypatch):
    import importlib.util

    import robokit.nets.obs_spec as obs_spec
    from robokit.nets.text import make_text_embedder

    np.testing.assert_array_equal(make_text_embedder("hash", 16)(["pick"]), hash_embed(["pick"], 16))
    if importlib.util.find_spec("sentence_transformers") is None:  # this environment: the documented fallback
        np.testing.assert_array_equal(make_text_embedder("auto", 16)(["pick"]), hash_embed(["pick"], 16))
    with pytest.raises(ValueError, match="unknown text embedder 'bert'"):
        make_text_embedder("bert")
    # an embedder whose size differs from the checkpoint's spec (a swapped local model) is refused
    monkeypatch.setattr(obs_spec, "make_text_embedder", lambda name, dim: lambda texts: hash_embed(texts, 8))
    with pytest.raises(ObservationError, match=r"obs\['task'\]: text embedder 'hash' gave vectors \(8,\)"):
        TextSpec(4).embed(["x"], "obs['task']")


# -------------------------------------------------------------------------------------- trainer
class DotEnv(gym.Env):
    """A dot on a 16x16 image (optionally with the dot's position as a proprio part); actions move
    it; reward is minus its distance to the centre. 20 steps per episode."""

    metadata = {"render_modes": []}

    def __init__(self, with_proprio: bool = False, render_mode: str | None = None) -> None:
        image = gym.spaces.Box(0, 255, (16, 16, 3), np.uint8)
        self.with_proprio = with_proprio
        self.observation_space = gym.spaces.Dict({"image": image, "proprio": gym.spaces.Box(-1, 1, (2,))}) \
            if with_proprio else image
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self):
        image = np.zeros((16, 16, 3), np.uint8)
        row, col = ((self.pos + 1) * 7.5).round().astype(int)
        image[row, col] = 255
        return {"image": image, "proprio": self.pos.astype(np.float32)} if self.with_proprio else image

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = self.np_random.uniform(-1, 1, 2), 0
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.2 * np.asarray(action), -1, 1)
        self.t += 1
        return self._obs(), -float(np.linalg.norm(self.pos)), False, self.t >= 20, {}


gym.register("robokit-test/Dot-v0", entry_point=DotEnv)
gym.register("robokit-test/DotDict-v0", entry_point=DotEnv, kwargs={"with_proprio": True})


@pytest.mark.parametrize("algo, env_id", [("sac", "robokit-test/Dot-v0"), ("ppo", "robokit-test/Dot-v0"),
                                          ("sac", "robokit-test/DotDict-v0")])
def test_trainer_runs_image_and_dict_observations_end_to_end(algo, env_id, tmp_path):
    from robokit.trainers.cli import evaluate_checkpoint
    from robokit.trainers.trainer import config_class_for, train

    agent_cls, _ = ALGOS.get(algo)
    agent = dataclasses.replace(small_config(algo, EncoderConfig(cnn_filters=8)), warmup_steps=10) \
        if algo != "ppo" else dataclasses.replace(small_config(algo, EncoderConfig(cnn_filters=8)), n_steps=20,
                                                  epochs=1)
    config = config_class_for(algo)(env=env_id, online_steps=40, eval_every=0, eval_episodes=1, log_every=20,
                                     checkpoint_every=40, logger=("csv",), progress=False, out=tmp_path / "run",
                                     agent=agent)
    summary = train(algo, config)
    assert np.isfinite(summary["final_return"])
    state = load_checkpoint(tmp_path / "run" / "final.pt")
    assert spec_from_dict(state["agent"]["obs_spec"]) == spec_from_space(gym.make(env_id).observation_space)
    assert np.isfinite(evaluate_checkpoint(tmp_path / "run" / "final.pt", 1)["eval/return_mean"])


def test_encoder_shorthand_flag_and_its_bad_value(capsys):
    from robokit.trainers.cli import expand_encoder_flags, train_main

    assert expand_encoder_flags(["--encoder", "sparse,mlp", "--seed", "1", "--encoder=cnn"]) == [
        "--agent.encoder.pointcloud", "sparse", "--agent.encoder.vector", "mlp", "--seed", "1",
        "--agent.encoder.image", "cnn"]
    assert train_main(["--algo", "sac", "--encoder", "resnet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown --encoder 'resnet'" in err


def test_collected_dict_episodes_fill_a_replay_with_the_env_spec():
    from robokit.trainers.datasets import collect_episodes

    env = gym.make("robokit-test/DotDict-v0")
    episodes = collect_episodes(env, lambda obs: np.zeros(2, np.float32), 2, seed=0)
    spec = spec_from_space(env.observation_space)
    assert spec_from_episodes(episodes) == spec and episodes[0].observations["image"].dtype == np.uint8
    shape, dtype = spec.layout()
    buffer = ReplayBuffer(100, shape, ACT, obs_dtype=dtype)
    for episode in episodes:
        buffer.add_episode(episode)
    assert spec_from_replay(buffer) == spec and len(buffer) == 40


def test_cql_penalty_on_the_td_terms_encoding_equals_encoding_again():
    """CQL's penalty reads the TD term's encoding of s (one graph, gradients from both terms
    summed in the shared body); encoding s a second time for the penalty (the old computation)
    gives the same update up to float summation order."""

    def trained(reencode: bool) -> dict:
        agent = make_agent("cql", IMAGE, ACT, small_config("cql", EncoderConfig()), seed=0)
        if reencode:
            inner = agent.critic_regularizer
            agent.critic_regularizer = lambda batch, q_data, critic_input=None: inner(batch, q_data)
        buffer = filled_replay(IMAGE)
        for _ in range(2):
            agent.update(training_batch(agent, buffer, BATCH))
        return agent.state_dict()

    shared, again = trained(False), trained(True)
    for key in shared:
        torch.testing.assert_close(shared[key], again[key], rtol=1e-4, atol=1e-5, msg=key)



def _conv_body():
    from robokit.nets.encoders import ConvBody
    from robokit.nets.obs_spec import ImageSpec

    body = ConvBody(ImageSpec(16, 16, 3, frame_stack=2), filters=4, layers=2)
    return body, "feature_map", torch.randint(0, 256, (7, 2, 16, 16, 3), dtype=torch.uint8)


def _pretraining_encoder():
    from robokit.pretrain.objectives import EncoderOptions, PixelEncoder

    encoder = PixelEncoder((24, 24, 3), EncoderOptions(embed_dim=8, keypoints=4, cnn_filters=4))
    return encoder, "_encode", torch.randint(0, 256, (7, 24, 24, 3), dtype=torch.uint8)


@pytest.mark.parametrize("make", [_conv_body, _pretraining_encoder])
def test_encoders_in_cpu_chunks_equal_one_pass(make, monkeypatch):
    """Pixel encoders run large CPU batches in row chunks (glibc's mmap threshold: docs/multimodal.md);
    outputs and every parameter gradient equal one pass over the whole batch."""
    import robokit.nets.encoders as encoders

    torch.manual_seed(0)
    module, inner, images = make()
    whole = module(images)
    whole.square().sum().backward()
    expected = [p.grad.clone() for p in module.parameters()]
    module.zero_grad()
    calls = []
    original = getattr(module, inner)
    monkeypatch.setattr(module, inner, lambda chunk: calls.append(len(chunk)) or original(chunk))
    monkeypatch.setattr(encoders, "CPU_CHUNK_BYTES", 2 * module.activation_bytes)
    chunked = module(images)
    chunked.square().sum().backward()
    assert calls == [2, 2, 2, 1]
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    for param, grad in zip(module.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad, grad, rtol=1e-4, atol=1e-6)
