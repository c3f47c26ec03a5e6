"""Networks: the vectorised ensemble equals E separate MLPs; policy densities are consistent."""

from __future__ import annotations

import pytest
import torch

from robokit.nets import MLP, DeterministicPolicy, EnsembleMLP, QEnsemble, TanhGaussianPolicy
from robokit.nets.ensemble import EnsembleLayerNorm, EnsembleLinear, _ScalarHead


def member_forward(mlp: EnsembleMLP, x: torch.Tensor, member: int) -> torch.Tensor:
    """The same computation for one member, layer by layer, with plain torch ops."""
    for layer in mlp.net:
        if isinstance(layer, EnsembleLinear):
            x = x @ layer.weight[member] + layer.bias[member, 0]
        elif isinstance(layer, EnsembleLayerNorm):
            x = torch.nn.functional.layer_norm(x, x.shape[-1:]) * layer.weight[member, 0] + layer.bias[member, 0]
        else:
            x = layer(x)
    return x


def test_ensemble_matches_per_member_loop():
    torch.manual_seed(0)
    mlp = EnsembleMLP(5, 3, ensemble_size=4, hidden_dims=(8, 8), layer_norm=True)
    with torch.no_grad():  # give LayerNorm affines distinct values per member
        for layer in mlp.net:
            if isinstance(layer, EnsembleLayerNorm):
                layer.weight.normal_()
                layer.bias.normal_()
    x = torch.randn(6, 5, requires_grad=True)
    out = mlp(x)
    assert out.shape == (4, 6, 3)
    for member in range(4):
        torch.testing.assert_close(out[member], member_forward(mlp, x, member))
    # gradients too: the fused LayerNorm affine (addcmul) and the in-place ReLU backpropagate
    # exactly like the plain per-member ops
    upstream = torch.randn(4, 6, 3)
    grads = torch.autograd.grad((out * upstream).sum(), [x, *mlp.parameters()])
    reference = torch.stack([member_forward(mlp, x, m) for m in range(4)])
    expected = torch.autograd.grad((reference * upstream).sum(), [x, *mlp.parameters()])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("hidden_dims", [(8, 8), ()])
def test_scalar_output_layer_matches_per_member_loop(hidden_dims):
    """A one-output ensemble (the Q head) computes its last layer as dot products (``_ScalarHead``,
    a CPU speed-up over ``baddbmm``): values and gradients equal the per-member loop with trainable
    weights (critic step), frozen weights (actor step: input gradient only) and a member subset."""
    torch.manual_seed(3)
    mlp = EnsembleMLP(5, 1, ensemble_size=4, hidden_dims=hidden_dims, layer_norm=True)
    x = torch.randn(6, 5, requires_grad=True)
    upstream = torch.randn(4, 6, 1)
    out = mlp(x)
    reference = torch.stack([member_forward(mlp, x, m) for m in range(4)])
    torch.testing.assert_close(out, reference)
    grads = torch.autograd.grad((out * upstream).sum(), [x, *mlp.parameters()])
    expected = torch.autograd.grad((reference * upstream).sum(), [x, *mlp.parameters()])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want)
    members = torch.tensor([3, 1])
    torch.testing.assert_close(mlp(x, members), out[members])
    mlp.requires_grad_(False)
    (grad_x,) = torch.autograd.grad((mlp(x) * upstream).sum(), [x])
    torch.testing.assert_close(grad_x, expected[0])


def test_scalar_head_gradcheck():
    """``_ScalarHead``'s hand-written backward against finite differences (float64)."""
    torch.manual_seed(4)
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 7, 1, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, 1, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_ScalarHead.apply, (x, weight, bias))


def test_ensemble_members_subset_and_per_member_inputs():
    torch.manual_seed(1)
    q = QEnsemble(3, 2, ensemble_size=5, hidden_dims=(8,), layer_norm=True)
    obs, act = torch.randn(4, 3), torch.randn(4, 2)
    members = torch.tensor([4, 1])
    torch.testing.assert_close(q(obs, act, members), q(obs, act)[members])
    per_member = torch.randn(5, 4, 5)  # (E, B, in): each member sees its own batch
    out = q.mlp(per_member)
    torch.testing.assert_close(out[2], member_forward(q.mlp, per_member[2], 2))


def test_members_are_independent():
    torch.manual_seed(2)
    q = QEnsemble(3, 2, ensemble_size=3, hidden_dims=(8,))
    obs, act = torch.randn(4, 3), torch.randn(4, 2)
    q(obs, act)[1].sum().backward()
    grads = [layer.weight.grad for layer in q.mlp.net if isinstance(layer, EnsembleLinear)]
    for grad in grads:
        assert grad[1].abs().sum() > 0
        assert grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0


def test_orthogonal_init():
    mlp = MLP(6, 2, (16, 16), orthogonal_init=True)
    weight = mlp.net[0].weight  # (16, 6): orthonormal columns scaled by sqrt(2)
    torch.testing.assert_close(weight.T @ weight, 2.0 * torch.eye(6), atol=1e-5, rtol=1e-5)
    assert (mlp.net[0].bias == 0).all()
    ens = EnsembleMLP(6, 1, 3, (16,), orthogonal_init=True)
    w = ens.net[0].weight[2]  # (6, 16)
    torch.testing.assert_close(w @ w.T, 2.0 * torch.eye(6), atol=1e-5, rtol=1e-5)


def test_tanh_gaussian_log_prob_matches_sample_and_is_a_density():
    torch.manual_seed(3)
    policy = TanhGaussianPolicy(4, 1, (16,))
    obs = torch.randn(1, 4)
    gen = torch.Generator().manual_seed(0)
    action, log_prob = policy.sample(obs, gen)
    assert action.abs().max() < 1
    torch.testing.assert_close(policy.log_prob(obs, action), log_prob, atol=1e-4, rtol=1e-4)
    # the density integrates to ~1 over (-1, 1)
    grid = torch.linspace(-0.9999, 0.9999, 20001)[:, None]
    density = policy.log_prob(obs.expand(len(grid), -1), grid).exp()
    integral = torch.trapezoid(density, grid[:, 0])
    assert abs(integral.item() - 1.0) < 0.02


def test_sampling_uses_the_given_generator():
    policy = TanhGaussianPolicy(4, 2, (16,))
    obs = torch.randn(3, 4)
    a1, _ = policy.sample(obs, torch.Generator().manual_seed(5))
    a2, _ = policy.sample(obs, torch.Generator().manual_seed(5))
    a3, _ = policy.sample(obs, torch.Generator().manual_seed(6))
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)


def test_log_std_bounds_and_deterministic_policy():
    policy = TanhGaussianPolicy(4, 2, (16,))
    _, log_std = policy.distribution_params(torch.randn(10, 4) * 100)
    assert log_std.min() >= -5 - 1e-6 and log_std.max() <= 2 + 1e-6
    det = DeterministicPolicy(4, 2, (16,))
    out = det(torch.randn(7, 4))
    assert out.shape == (7, 2) and out.abs().max() <= 1
    obs = torch.randn(3, 4)
    mean, _ = policy.distribution_params(obs)
    torch.testing.assert_close(policy.mode(obs), torch.tanh(mean))


def test_many_actions_equals_one_call_per_action_group_values_and_gradients():
    """CQL's batched pass (all K actions of every state through each layer at once, member by
    member) computes what K separate ``forward`` calls compute, and back-propagates the same."""
    torch.manual_seed(3)
    batch, count, obs_dim, act_dim = 7, 9, 5, 3
    for layer_norm in (False, True):
        q = QEnsemble(obs_dim, act_dim, ensemble_size=3, hidden_dims=(16, 16), layer_norm=layer_norm)
        obs, actions = torch.randn(batch, obs_dim), torch.rand(batch, count, act_dim) * 2 - 1
        batched = q.many_actions(obs, actions)
        (batched.exp().sum() + batched.pow(2).sum()).backward()
        batched_grads = [p.grad.clone() for p in q.parameters()]
        q.zero_grad()
        grouped = torch.stack([q(obs, actions[:, k]) for k in range(count)], dim=-1)
        (grouped.exp().sum() + grouped.pow(2).sum()).backward()
        assert batched.shape == (3, batch, count)
        torch.testing.assert_close(batched, grouped, rtol=1e-5, atol=1e-6)
        for got, want in zip(batched_grads, [p.grad for p in q.parameters()], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_sample_n_draws_from_the_policy_density():
    torch.manual_seed(4)
    policy = TanhGaussianPolicy(4, 2, (16,))
    obs = torch.randn(5, 4)
    actions, log_prob = policy.sample_n(obs, 6, torch.Generator().manual_seed(0))
    assert actions.shape == (5, 6, 2) and log_prob.shape == (5, 6)
    again = policy.log_prob(obs.repeat_interleave(6, dim=0), actions.reshape(30, 2)).view(5, 6)
    torch.testing.assert_close(log_prob, again, rtol=1e-4, atol=1e-4)


def test_gaussian_policy_is_iqls_actor():
    """N(tanh mu, std) with a state-independent log std clipped to [-5, 2] starting at 0: the
    density of a dataset action at the bound is ordinary (no atanh), and it equals the hand formula."""
    from robokit.nets import GaussianPolicy

    torch.manual_seed(5)
    policy = GaussianPolicy(4, 2, (16,))
    obs = torch.randn(3, 4)
    mean, log_std = policy.distribution_params(obs)
    torch.testing.assert_close(log_std, torch.zeros(3, 2))
    action = torch.tensor([[1.0, -1.0], [0.3, 0.0], [-1.0, 1.0]])
    want = torch.distributions.Normal(mean, 1.0).log_prob(action).sum(-1)
    torch.testing.assert_close(policy.log_prob(obs, action), want)
    assert torch.isfinite(policy.log_prob(obs, action)).all() and policy.log_prob(obs, action).max() < 0
    with torch.no_grad():
        policy.log_std.fill_(-9.0)
    assert policy.distribution_params(obs)[1].min() == -5.0
    torch.testing.assert_close(policy.mode(obs), mean)
    sample, _ = policy.sample(obs, torch.Generator().manual_seed(0))
    assert sample.abs().max() <= 1.0


def test_gaussian_policy_dropout_only_in_the_training_pass():
    from robokit.nets import GaussianPolicy

    torch.manual_seed(6)
    policy = GaussianPolicy(4, 2, (32, 32), dropout_rate=0.5)
    obs, action = torch.randn(8, 4), torch.zeros(8, 2)
    torch.testing.assert_close(policy.mode(obs), policy.mode(obs))
    torch.testing.assert_close(policy.log_prob(obs, action), policy.log_prob(obs, action))
    assert not torch.allclose(policy.log_prob(obs, action, dropout=True), policy.log_prob(obs, action))
