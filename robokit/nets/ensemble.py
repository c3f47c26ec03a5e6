"""Vectorised ensembles: E independent MLPs evaluated with batched weights.

A layer holds weights ``(E, in, out)`` and computes ``x @ W + b`` for all members
with one ``torch.baddbmm`` call, so an ensemble of 10 costs one (bigger) matmul
per layer rather than ten small ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from robokit.nets.mlp import HIDDEN_GAIN


class _ScalarHead(torch.autograd.Function):
    """x (E, B, in) @ w (E, in, 1) + b (E, 1, 1) -> (E, B, 1): an ensemble layer with one output
    (the Q head), as dot products instead of ``baddbmm``.

    On CPU a batched matmul whose result has one column (and its backward: the outer product
    grad @ w^T, the weight gradient x^T @ grad) takes a slow path, ~1 ms per call on (10, 256, 256)
    against ~0.1 ms for the same work as a broadcast multiply or a row-vector ``bmm``
    (benchmarks/sac_update.py, docs/benchmarks.md). Same values up to float summation order.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.linalg.vecdot(x, weight.transpose(1, 2)).unsqueeze(-1) + bias

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad * weight.transpose(1, 2) if ctx.needs_input_grad[0] else None  # (E, B, 1) * (E, 1, in)
        grad_weight = torch.bmm(grad.transpose(1, 2), x).transpose(1, 2) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(1, keepdim=True) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


class EnsembleLinear(nn.Module):
    """E independent affine maps.

    forward(x (E, B, in) or (B, in), members (M,) long or None) -> (E or M, B, out); a 2-D
    input is shared by all (chosen) members. Initialised like ``nn.Linear`` member by member
    (uniform(+-1/sqrt(in))).
    """

    def __init__(self, in_dim: int, out_dim: int, ensemble_size: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.ensemble_size = in_dim, out_dim, ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_dim))
        bound = 1.0 / math.sqrt(in_dim)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(weight.shape[0], -1, -1)
        if self.out_dim == 1:
            return _ScalarHead.apply(x, weight, bias)
        return torch.baddbmm(bias, x, weight)

    def orthogonal_(self, gain: float) -> None:
        """Orthogonal init of each member's weight; zero biases."""
        with torch.no_grad():
            for member in range(self.ensemble_size):  # init only, not the forward pass
                nn.init.orthogonal_(self.weight[member].T, gain=gain)
            self.bias.zero_()

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, ensemble={self.ensemble_size}"


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over features with a separate affine per member: (E, B, H) -> (E, B, H).

    The affine is one fused ``addcmul`` (bias + normed * weight), one pass over the activations
    instead of a multiply and an add (benchmarks/sac_update.py).
    """

    def __init__(self, hidden: int, ensemble_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ensemble_size, 1, hidden))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, hidden))

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        return torch.addcmul(bias, F.layer_norm(x, x.shape[-1:], eps=self.eps), weight)


class EnsembleMLP(nn.Module):
    """E independent MLPs: forward(x (B, in) or (E, B, in), members (M,) or None) -> (E or M, B, out).

    ``members`` evaluates only those members (e.g. the random target subset), at M/E of the cost.
    """

    def __init__(self, in_dim: int, out_dim: int, ensemble_size: int, hidden_dims: Sequence[int] = (256, 256),
                 layer_norm: bool = False, orthogonal_init: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for hidden in hidden_dims:
            layers.append(EnsembleLinear(width, hidden, ensemble_size))
            if layer_norm:
                layers.append(EnsembleLayerNorm(hidden, ensemble_size))
            # in place: it always follows a fresh output whose backward does not need it
            # (baddbmm, addcmul), so no extra (E, B, H) buffer is allocated per layer
            layers.append(nn.ReLU(inplace=True))
            width = hidden
        layers.append(EnsembleLinear(width, out_dim, ensemble_size))
        self.net = nn.Sequential(*layers)
        self.ensemble_size = ensemble_size
        if orthogonal_init:
            linears = [m for m in self.net if isinstance(m, EnsembleLinear)]
            for layer in linears[:-1]:
                layer.orthogonal_(HIDDEN_GAIN)
            linears[-1].orthogonal_(1e-2)

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        if members is None:
            return self.net(x)
        for layer in self.net:
            x = layer(x, members) if isinstance(layer, EnsembleLinear | EnsembleLayerNorm) else layer(x)
        return x

    def forward_rows(self, x: torch.Tensor) -> torch.Tensor:
        """The same function as ``forward`` for a shared 2-D input with many rows, member by member
        with 2-D GEMMs: x (R, in) -> (E, R, out).

        For large R (CQL's 3N actions per state) this is faster on CPU than the batched
        ``baddbmm`` pass, whose backward multiplies by the transposed (E, in, out) weights on a
        slow strided path (benchmarks/cql_update.py); for R of a minibatch ``forward`` is faster.
        """
        outputs = []
        for member in range(self.ensemble_size):
            h = x
            for layer in self.net:
                if isinstance(layer, EnsembleLinear):
                    h = torch.addmm(layer.bias[member], h, layer.weight[member])
                elif isinstance(layer, EnsembleLayerNorm):
                    h = F.layer_norm(h, h.shape[-1:], layer.weight[member, 0], layer.bias[member, 0], layer.eps)
                else:  # ReLU, in place on the fresh output of the layer before (saves one R x H buffer)
                    h = h.relu_()
            outputs.append(h)
        return torch.stack(outputs)


class QEnsemble(nn.Module):
    """E state-action value functions Q_e(s, a).

    forward(obs (B, O), action (B, A), members (M,) long or None) -> (E or M, B)
    """

    def __init__(self, obs_dim: int, action_dim: int, ensemble_size: int = 2,
                 hidden_dims: Sequence[int] = (256, 256), layer_norm: bool = False,
                 orthogonal_init: bool = False) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        self.mlp = EnsembleMLP(obs_dim + action_dim, 1, ensemble_size, hidden_dims, layer_norm, orthogonal_init)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        return self.mlp(torch.cat([obs, action], dim=-1), members).squeeze(-1)

    def many_actions(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q of K actions per state in one pass per layer: obs (B, O), actions (B, K, A) -> (E, B, K).

        Equal (to float rounding) to K calls of ``forward`` on (obs, actions[:, k]).
        """
        batch, count, action_dim = actions.shape
        rows = torch.cat([obs.unsqueeze(1).expand(-1, count, -1), actions], dim=-1).reshape(batch * count, -1)
        return self.mlp.forward_rows(rows).view(self.ensemble_size, batch, count)
