"""The spatial softmax (Levine et al. 2016), with a hand-written backward.

``SpatialSoftmax(F, K, h, w)``: a 1x1 conv ``F -> K`` keypoint maps, a softmax over each map's
``h * w`` positions and its expected ``(x, y)`` in ``[-1, 1]``: ``(B, F, h, w) -> (B, 2K)`` (the
official ``imitation_pretraining`` encoder's ``SpatialSoftmax``, ``networks/spatial_layers.py``).

On CPU the layer is memory-bound: with K = 256 keypoints on an 11x11 map its probabilities are
256 x 121 floats per frame, 32x the map that feeds it. :class:`SpatialSoftmaxFunction` computes
the same values and gradients in fewer passes over them than autograd's chain of
``baddbmm -> softmax -> matmul`` does, in row chunks of :data:`CACHE_CHUNK_BYTES` on CPU:

- forward: ``logits = W @ maps`` (one ``bmm`` on the channels-last map as it is), ``p =
  softmax(logits)`` in place, ``y = p @ C`` with the ``(h*w, 2)`` coordinate table ``C`` (one
  ``mm``); only ``p`` is kept;
- backward, for ``g = dL/dy`` of shape (B, K, 2): ``dL/dlogits = p * (g @ C^T - <g, y>)`` as one
  ``mm`` and two in-place passes (autograd: an ``mm``, then the softmax backward's own passes),
  then ``dL/dmaps = W^T @ dlogits``, written channels-last (the conv before it runs its backward
  ~1.35x faster on a channels-last gradient than on NCHW), and ``dL/dW = sum_b dlogits_b @ maps_b^T``.

The 1x1 conv's bias is added to every position of a keypoint's map, and a softmax over positions
does not change when one constant is added to all its inputs: ``softmax(x + b_k) = softmax(x)``.
So the bias never changes the output and its exact gradient is 0 (autograd's is 0 up to rounding:
about 5e-7 at 256 keypoints). The function skips the add (a pass over the logits) and returns
that exact 0; the bias stays a parameter, so checkpoints and parameter counts are those of
``Conv2d(F, K, 1)``.
Tested against the autograd form (``tests/pretrain/test_objectives.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from robokit.nets.encoders import in_cpu_chunks

CACHE_CHUNK_BYTES = 2 << 20
"""On CPU the layer runs in row chunks of at most this many bytes of probabilities (16 frames at
256 keypoints x 121 positions), so each chunk's passes (logits, softmax, expectation; its backward)
find it in cache: ~18% faster than 135-frame chunks on one thread, measured."""


class SpatialSoftmaxFunction(torch.autograd.Function):
    """``(pixels (B, P, F), weight (K, F), bias (K,), table (2, P)) -> (B, 2K)``: the expected (x, y)
    of ``softmax_P(weight @ pixels_b^T + bias)`` per keypoint, keypoint-major (x_0, y_0, x_1, ...);
    ``table[:, p]`` holds the (x, y) of position p (:func:`coordinate_table`).
    ``pixels`` is the map position-major, a view of a channels-last map; its gradient comes back
    contiguous, i.e. channels-last, the layout the conv that made the map runs its backward in."""

    @staticmethod
    def forward(ctx, pixels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, table: torch.Tensor,
                ) -> torch.Tensor:
        batch, keypoints, positions = len(pixels), len(weight), table.shape[1]
        probs = torch.bmm(weight.expand(batch, -1, -1), pixels.transpose(1, 2))  # logits (B, K, P); bias cancels
        torch.softmax(probs, dim=-1, out=probs)  # in place: no second (B, K, P) buffer
        # (2, P) @ (P, B*K): ~2x faster on one thread than (B*K, P) @ (P, 2), whose 2-wide output the
        # BLAS kernels handle poorly; the transpose back is a small (B*K, 2) copy
        coords = torch.mm(table, probs.view(batch * keypoints, positions).T).T.contiguous()
        ctx.save_for_backward(pixels, weight, table, probs, coords)
        return coords.view(batch, 2 * keypoints)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pixels, weight, table, probs, coords = ctx.saved_tensors
        batch, keypoints, positions = probs.shape
        rows = batch * keypoints
        grad = grad.reshape(rows, 2)
        centred = (grad * coords).sum(dim=1, keepdim=True).neg_()  # -<g, y>, (rows, 1)
        # no addmm(centred, ...): it would first copy the broadcast (rows, 1) column into the output
        dlogits = torch.mm(grad, table).add_(centred).mul_(probs.view(rows, positions))
        dlogits = dlogits.view(batch, keypoints, positions)
        dpixels = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            dpixels = torch.bmm(dlogits.transpose(1, 2), weight.expand(batch, -1, -1))  # (B, P, F)
        if ctx.needs_input_grad[1]:
            dweight = torch.bmm(dlogits, pixels).sum(dim=0)  # (K, F)
        if ctx.needs_input_grad[2]:
            dbias = torch.zeros_like(weight[:, 0])  # the softmax is shift-invariant per keypoint
        return dpixels, dweight, dbias, None


def coordinate_table(height: int, width: int) -> torch.Tensor:
    """(2, h*w): the (x, y) in [-1, 1] of each flattened position ``i * w + j`` (x from the column j,
    y from the row i)."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)])


class SpatialSoftmax(nn.Module):
    """Keypoints of a feature map: a 1x1 conv to K maps, a softmax over each map's positions and its
    expected (x, y) in [-1, 1]: (B, F, h, w) -> (B, 2K), in either memory layout."""

    def __init__(self, channels: int, keypoints: int, height: int, width: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, 1)
        self.register_buffer("table", coordinate_table(height, width), persistent=False)
        self.out_dim = 2 * keypoints

    @property
    def grid(self) -> torch.Tensor:
        """(h*w, 2): the (x, y) of each flattened position."""
        return self.table.T

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        # position-major (B, h*w, F): a view of a channels-last map (ConvBody's layout), a copy of an NCHW one
        pixels = maps.permute(0, 2, 3, 1).reshape(len(maps), -1, maps.shape[1])
        weight, bias = self.project.weight.flatten(1), self.project.bias
        return in_cpu_chunks(lambda part: SpatialSoftmaxFunction.apply(part, weight, bias, self.table),
                             pixels, 4 * len(weight) * pixels.shape[1], CACHE_CHUNK_BYTES)
