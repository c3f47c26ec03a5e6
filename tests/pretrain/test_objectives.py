"""Each objective's loss against a hand case; gradient routing; augmentation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from robokit.data.episode import Episode
from robokit.pretrain.data import PairSampler, demos_from_episodes, to_torch
from robokit.pretrain.objectives import (
    Contrastive,
    EncoderOptions,
    InverseDynamics,
    ObjectiveOptions,
    PairBatch,
    PixelDecoder,
    PixelEncoder,
    augment_pair,
    build_objective,
    info_nce_logits,
    info_nce_loss,
    pixel_targets,
)
from robokit.pretrain.training import ObjectiveTrainer

FLAT = EncoderOptions(embed_dim=16, keypoints=0, cnn_filters=8, cnn_strides=(2, 1))


def linear_toy(episodes: int = 64, steps: int = 2, size: int = 16, seed: int = 0) -> list[Episode]:
    """Frames of one colour per channel, ``128 + 30 s``; ``s_{t+1} = s_t + a_t``, a_t uniform in [-1, 1]^3
    and independent of s_t: a_t is a linear function of (o_t, o_{t+1}) and of nothing in o_t alone."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        s = rng.uniform(-1, 1, 3)
        actions = rng.uniform(-1, 1, (steps, 3)).astype(np.float32)
        states = np.concatenate([s[None], s[None] + np.cumsum(actions, axis=0)])
        frames = np.round(128 + 30 * states)[:, None, None, :] * np.ones((1, size, size, 1))
        out.append(Episode(frames.astype(np.uint8), actions, np.zeros(steps), np.zeros(steps, bool),
                           np.arange(steps) == steps - 1))
    return out


def train_on(objective_name: str, episodes: list[Episode], steps: int, **options) -> float:
    torch.manual_seed(0)
    demos = demos_from_episodes(episodes)
    encoder = PixelEncoder(demos.frame, FLAT)
    objective = build_objective(objective_name, encoder, demos.action_dim,
                                ObjectiveOptions(head_hidden=(64,), head_dropout=0.0, **options))
    trainer = ObjectiveTrainer(objective, PairSampler(demos, k=1), batch_size=64, steps=steps, lr=2e-2,
                               shift_pad=0, seed=0)
    trainer.run()
    objective.eval()
    with torch.no_grad():
        losses = [float(objective.loss(to_torch(PairSampler(demos, 1).sample(256)))[0]) for _ in range(3)]
    return float(np.mean(losses))


def test_inverse_dynamics_recovers_the_action_on_a_linear_toy_where_bc_cannot():
    episodes = linear_toy()
    inverse = train_on("inverse_dynamics", episodes, steps=300)
    bc = train_on("bc", episodes, steps=300)
    # predicting 0 gives E[a^2] = 1/3; the action is a linear function of the two frames
    assert inverse < 0.02, inverse
    # o_t alone says nothing about a_t: BC stays near the variance
    assert bc > 0.2, bc


def test_info_nce_logits_and_loss_match_a_hand_computation():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positives = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    logits = info_nce_logits(anchors, positives, temperature=0.5)
    assert torch.allclose(logits, torch.tensor([[2.0, 1.2], [0.0, 1.6]]))
    hand = 0.5 * ((-2.0 + math.log(math.exp(2.0) + math.exp(1.2))) + (-1.6 + math.log(1.0 + math.exp(1.6))))
    assert float(info_nce_loss(logits)) == pytest.approx(hand, rel=1e-6)


def tiny_batch(batch: int = 4, size: int = 24, action_dim: int = 2, seed: int = 0) -> PairBatch:
    gen = torch.Generator().manual_seed(seed)
    return PairBatch(obs=torch.randint(0, 256, (batch, size, size, 3), generator=gen, dtype=torch.uint8),
                     future_obs=torch.randint(0, 256, (batch, size, size, 3), generator=gen, dtype=torch.uint8),
                     action=torch.rand(batch, action_dim, generator=gen) * 2 - 1,
                     task=torch.zeros(batch, dtype=torch.long))


def test_contrastive_module_logits_are_cosines_of_its_projections_over_temperature():
    torch.manual_seed(0)
    encoder = PixelEncoder((24, 24, 3), EncoderOptions(embed_dim=8, keypoints=4, cnn_filters=4))
    model = Contrastive(encoder, 2, ObjectiveOptions(temperature=0.1, projection_dim=5, action_embed_dim=3)).eval()
    batch = tiny_batch()
    with torch.no_grad():
        now, later = encoder(batch["obs"]), encoder(batch["future_obs"])
        anchors = model.anchor_projector(torch.cat([now, model.action_encoder(batch["action"])], dim=-1))
        positives = model.positive_projector(later)
        cosines = F.cosine_similarity(anchors[:, None], positives[None], dim=-1)
        logits = model.logits(batch)
        loss, metrics = model.loss(batch)
    assert torch.allclose(logits, cosines / 0.1, atol=1e-5)
    rows = [-logits[i, i] + torch.logsumexp(logits[i], 0) for i in range(4)]
    assert float(loss) == pytest.approx(float(torch.stack(rows).mean()), rel=1e-5)
    assert 0.0 <= metrics["train/contrastive_accuracy"] <= 1.0


def test_simclr_variant_has_no_action_encoder():
    encoder = PixelEncoder((24, 24, 3), EncoderOptions(embed_dim=8, keypoints=4, cnn_filters=4))
    model = Contrastive(encoder, 2, ObjectiveOptions(include_action=False))
    assert not hasattr(model, "action_encoder") and not model.uses_actions


def test_stop_grad_routes_the_encoder_gradient_through_the_first_view_only():
    torch.manual_seed(0)
    encoder = PixelEncoder((24, 24, 3), EncoderOptions(embed_dim=8, keypoints=4, cnn_filters=4))
    model = InverseDynamics(encoder, 2, ObjectiveOptions(stop_grad=True, head_dropout=0.0))
    batch = tiny_batch()
    loss, _ = model.loss(batch)
    grads = torch.autograd.grad(loss, list(encoder.parameters()))
    now, later = encoder(batch["obs"]), encoder(batch["future_obs"]).detach()
    hand = F.mse_loss(torch.tanh(model.head(torch.cat([now, later], dim=-1))), batch["action"])
    hand_grads = torch.autograd.grad(hand, list(encoder.parameters()))
    for got, want in zip(grads, hand_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    model.stop_grad = False
    loss, _ = model.loss(batch)
    both = torch.autograd.grad(loss, list(encoder.parameters()))
    assert any(not torch.allclose(a, b) for a, b in zip(both, grads, strict=True))


@pytest.mark.parametrize("name", ["forward", "reconstruction"])
def test_pixel_objectives_are_the_mse_of_the_decoded_frame(name):
    torch.manual_seed(0)
    encoder = PixelEncoder((24, 24, 3), EncoderOptions(embed_dim=8, keypoints=4, cnn_filters=4))
    model = build_objective(name, encoder, 2, ObjectiveOptions(decoder_widths=(4, 4, 4, 4))).eval()
    batch = tiny_batch()
    with torch.no_grad():
        loss, metrics = model.loss(batch)
        if name == "forward":
            code = torch.cat([encoder(batch["obs"]), model.action_encoder(batch["action"])], dim=-1)
            target = batch["future_obs"]
        else:
            code, target = encoder(batch["obs"]), batch["obs"]
        decoded = model.decoder(code)
    assert decoded.shape == (4, 24, 24, 3)
    assert float(loss) == pytest.approx(float(((decoded - (target.float() / 255 - 0.5)) ** 2).mean()), rel=1e-6)
    assert f"losses/{name}" in metrics


def test_pixel_targets_and_decoder_sizes():
    assert pixel_targets(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-0.5, 0.5]
    for size in (24, 64, 84):
        assert PixelDecoder(4, (size, size, 3), (2, 2, 2, 2))(torch.zeros(1, 4)).shape == (1, size, size, 3)
    with pytest.raises(ValueError, match="square frames"):
        PixelDecoder(4, (30, 30, 3))


def test_multihead_bc_uses_the_head_of_each_rows_context():
    encoder = PixelEncoder((24, 24, 3), EncoderOptions(embed_dim=8, keypoints=4, cnn_filters=4))
    model = build_objective("bc", encoder, 2, ObjectiveOptions(multihead=True, num_tasks=3, head_hidden=()))
    with torch.no_grad():
        model.head[0].weight.zero_()
        model.head[0].bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]))
    obs = tiny_batch(3)["obs"]
    actions = model.act(obs, torch.tensor([2, 0, 1]))
    assert torch.allclose(actions, torch.tanh(torch.tensor([[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]])))
    with pytest.raises(ValueError, match="task indices"):
        model.act(obs, torch.tensor([0, 3, 1]))


def test_augment_pair_shifts_each_uint8_image_independently():
    batch = tiny_batch(8)
    out = augment_pair(batch, 4, torch.Generator().manual_seed(0))
    assert out["obs"].dtype == torch.uint8 and out["obs"].shape == batch["obs"].shape
    assert not torch.equal(out["obs"], batch["obs"])
    same = PairBatch(obs=batch["obs"], future_obs=batch["obs"], action=batch["action"], task=batch["task"])
    shifted = augment_pair(same, 4, torch.Generator().manual_seed(1))
    assert not torch.equal(shifted["obs"], shifted["future_obs"])  # two views of one frame differ
    assert augment_pair(batch, 0, torch.Generator()) is batch


def test_spatial_softmax_finds_a_bright_spot():
    from robokit.pretrain.objectives import SpatialSoftmax

    layer = SpatialSoftmax(1, 1, 5, 5)
    with torch.no_grad():
        layer.project.weight.fill_(50.0)
        layer.project.bias.zero_()
    maps = torch.zeros(1, 1, 5, 5)
    maps[0, 0, 4, 0] = 1.0  # bottom-left: x = -1, y = +1
    assert torch.allclose(layer(maps), torch.tensor([[-1.0, 1.0]]), atol=1e-3)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_spatial_softmax_equals_the_1x1_conv_form_in_either_memory_layout(layout):
    """The keypoint logits as one batched matmul equal ``Conv2d(F, K, 1)`` then a softmax over the
    flattened positions, for an NCHW map and for the channels-last map ConvBody produces."""
    from robokit.pretrain.objectives import SpatialSoftmax

    torch.manual_seed(0)
    layer = SpatialSoftmax(6, 5, 4, 3)
    maps = torch.randn(2, 6, 4, 3).contiguous(memory_format=layout)
    reference = (layer.project(maps).flatten(2).softmax(-1) @ layer.grid).flatten(1)
    torch.testing.assert_close(layer(maps), reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_spatial_softmax_function_matches_autograd_values_and_gradients(layout):
    """The hand-written backward (robokit.nets.spatial_softmax) against autograd through the plain
    ``Conv2d(F, K, 1) -> softmax -> @ grid``: output, dL/dmaps (channels-last: the layout the conv
    before it runs its backward fastest in), dL/dweight, and the bias's gradient, which is 0 (the softmax is shift-invariant per
    keypoint); and ``gradcheck`` in float64."""
    from robokit.nets.spatial_softmax import SpatialSoftmax, SpatialSoftmaxFunction

    torch.manual_seed(0)
    layer = SpatialSoftmax(6, 5, 4, 3)
    with torch.no_grad():
        layer.project.bias.uniform_(-2.0, 2.0)
    maps = torch.randn(3, 6, 4, 3).contiguous(memory_format=layout).requires_grad_(True)
    upstream = torch.randn(3, 10)
    reference = (layer.project(maps).flatten(2).softmax(-1) @ layer.grid).flatten(1)
    expected = torch.autograd.grad(reference, (maps, layer.project.weight, layer.project.bias), upstream)
    out = layer(maps)
    got = torch.autograd.grad(out, (maps, layer.project.weight, layer.project.bias), upstream)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(got, expected, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)
    assert torch.equal(got[2], torch.zeros(5)) and expected[2].abs().max() < 1e-5
    assert got[0].is_contiguous(memory_format=torch.channels_last)

    inputs = (torch.randn(2, 4 * 3, 6, dtype=torch.float64, requires_grad=True),
              torch.randn(5, 6, dtype=torch.float64, requires_grad=True),
              torch.randn(5, dtype=torch.float64, requires_grad=True), layer.table.double())
    assert torch.autograd.gradcheck(SpatialSoftmaxFunction.apply, inputs)


def test_spatial_softmax_cache_chunks_equal_one_pass(monkeypatch):
    """On CPU the spatial softmax runs in row chunks of CACHE_CHUNK_BYTES of probabilities; outputs
    and gradients equal one pass over the batch."""
    import robokit.nets.spatial_softmax as spatial

    torch.manual_seed(0)
    layer = spatial.SpatialSoftmax(6, 5, 4, 3)
    maps = torch.randn(7, 6, 4, 3).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    upstream = torch.randn(7, 10)
    calls, apply = [], spatial.SpatialSoftmaxFunction.apply
    monkeypatch.setattr(spatial.SpatialSoftmaxFunction, "apply", lambda *args: calls.append(len(args[0])) or apply(*args))
    results = []
    for budget in (1 << 30, 2 * 4 * 5 * 12):  # one pass; chunks of 2 frames (5 keypoints x 12 positions)
        monkeypatch.setattr(spatial, "CACHE_CHUNK_BYTES", budget)
        out = layer(maps)
        results.append((out, *torch.autograd.grad(out, (maps, layer.project.weight), upstream), list(calls)))
        calls.clear()
    assert results[0][3] == [7] and results[1][3] == [2, 2, 2, 1]
    for one, chunked in zip(results[0][:3], results[1][:3], strict=True):
        torch.testing.assert_close(chunked, one, rtol=1e-5, atol=1e-6)


def test_conv_body_runs_channels_last_and_keeps_the_logical_map(monkeypatch):
    """ConvBody hands its convs a channels-last batch (faster mkldnn kernels) and returns an
    NCHW-contiguous map whose values, and every parameter's gradient, equal those of the same
    convs on the NCHW batch ``x / 255 - 0.5`` (ConvBody folds that scaling into the first conv)."""
    from torch.nn import functional

    from robokit.nets.encoders import ConvBody
    from robokit.nets.obs_spec import ImageSpec

    torch.manual_seed(0)
    body = ConvBody(ImageSpec(20, 20, 3), filters=4, layers=2)
    images = torch.randint(0, 256, (3, 20, 20, 3), dtype=torch.uint8)
    inputs, conv2d = [], functional.conv2d
    monkeypatch.setattr(functional, "conv2d", lambda x, *args: inputs.append(x) or conv2d(x, *args))
    out = body.feature_map(images)
    monkeypatch.undo()
    assert inputs[0].is_contiguous(memory_format=torch.channels_last) and out.is_contiguous()
    upstream = torch.randn_like(out)
    mine = torch.autograd.grad(out, list(body.parameters()), upstream)
    nchw = images.permute(0, 3, 1, 2).contiguous().float() / 255.0 - 0.5
    reference = body.convs(nchw)
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    for got, expected in zip(mine, torch.autograd.grad(reference, list(body.parameters()), upstream), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)

