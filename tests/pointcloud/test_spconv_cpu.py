"""spconv (CPU after robokit's stream patch, and CUDA) agrees with a dense conv3d, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("spconv")

from robokit.pointcloud.spconv_patch import (  # noqa: E402
    ensure_spconv_cpu,
    is_patched,
    match_algorithms_to_device,
)

GRID_ZYX = (6, 5, 7)


def _sparse_input(seed: int, channels: int = 2, batch: int = 2, active: int = 25):
    """Random active voxels on a tiny grid: (features (V,C), coords (V,4) [b,z,y,x], dense (B,C,Z,Y,X))."""
    rng = np.random.default_rng(seed)
    coords = []
    for b in range(batch):
        flat = rng.choice(int(np.prod(GRID_ZYX)), size=active, replace=False)
        zyx = np.stack(np.unravel_index(flat, GRID_ZYX), axis=1)
        coords.append(np.concatenate([np.full((active, 1), b), zyx], axis=1))
    coords = torch.from_numpy(np.concatenate(coords).astype(np.int32))
    features = torch.from_numpy(rng.normal(size=(len(coords), channels)).astype(np.float32))
    return features, coords


def _to_dense(features, coords, batch):
    dense = torch.zeros((batch, features.shape[1], *GRID_ZYX), dtype=features.dtype, device=features.device)
    b, z, y, x = coords.long().unbind(1)
    dense[b, :, z, y, x] = features
    return dense


def _dense_weight(sparse_weight: torch.Tensor) -> torch.Tensor:
    """spconv stores (out, kz, ky, kx, in); conv3d wants (out, in, kz, ky, kx)."""
    return sparse_weight.permute(0, 4, 1, 2, 3)


CUDA = pytest.param(
    "cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
)


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("kind", ["subm", "strided"])
def test_sparse_conv_matches_dense_forward_and_backward(kind, device):
    spconv = ensure_spconv_cpu()
    assert is_patched()
    torch.manual_seed(0)
    batch = 2
    features, coords = _sparse_input(seed=1, batch=batch)
    features, coords = features.to(device), coords.to(device)
    if kind == "subm":
        layer = spconv.SubMConv3d(2, 3, 3, padding=1, bias=False, indice_key="t")
        stride = 1
    else:
        layer = spconv.SparseConv3d(2, 3, 3, stride=2, padding=1, bias=False)
        stride = 2
    layer = layer.to(device)
    match_algorithms_to_device(layer, on_cuda=device != "cpu")  # a CUDA spconv build: Native on CPU

    sparse_feats = features.clone().requires_grad_(True)
    tensor = spconv.SparseConvTensor(sparse_feats, coords, list(GRID_ZYX), batch)
    out = layer(tensor)
    out_coords = out.indices.long()

    dense_in = _to_dense(features, coords, batch).requires_grad_(True)
    dense_weight = _dense_weight(layer.weight.detach()).clone().requires_grad_(True)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # full fp32 reference on CUDA
        dense_out = torch.nn.functional.conv3d(dense_in, dense_weight, stride=stride, padding=1)
    b, z, y, x = out_coords.unbind(1)
    dense_at_sites = dense_out[b, :, z, y, x]
    torch.testing.assert_close(out.features, dense_at_sites, rtol=1e-4, atol=1e-5)

    if kind == "strided":
        # every non-zero dense output site must be an active sparse output site
        touched = (dense_out.detach().abs().sum(1) > 0).sum().item()
        assert touched <= len(out_coords)

    upstream = torch.randn(out.features.shape, generator=torch.Generator().manual_seed(3)).to(device)
    (out.features * upstream).sum().backward()
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        (dense_at_sites * upstream).sum().backward()
    ib, iz, iy, ix = coords.long().unbind(1)
    torch.testing.assert_close(sparse_feats.grad, dense_in.grad[ib, :, iz, iy, ix], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(_dense_weight(layer.weight.grad), dense_weight.grad, rtol=1e-4, atol=1e-4)


def test_patch_is_idempotent():
    first = ensure_spconv_cpu()
    import spconv.pytorch.ops as ops

    patched = ops.get_current_stream
    second = ensure_spconv_cpu()
    assert first is second
    assert ops.get_current_stream is patched
    if not torch.cuda.is_available():
        assert ops.get_current_stream() == 0


def test_encoder_built_with_cuda_algorithms_runs_on_cpu():
    """A CUDA build of spconv (the `cuda` extra) builds 3x3x3 layers with MaskImplicitGemm, which
    asserts "implicit gemm only support cuda" on CPU tensors (seen on an H200, spconv-cu126 2.3.8).
    The encoder runs such layers with Native on CPU, gives the same output, and remembers the
    build-time algorithm for CUDA."""
    from spconv.core import ConvAlgo
    from spconv.pytorch.conv import SparseConvolution

    from robokit.pointcloud.backbones import SparseEncoder8x

    torch.manual_seed(0)
    native = SparseEncoder8x(2, (8, 8, 8), channels=(4, 4, 8, 8)).eval()
    as_cuda_build = SparseEncoder8x(2, (8, 8, 8), channels=(4, 4, 8, 8)).eval()
    as_cuda_build.load_state_dict(native.state_dict())
    convs = [m for m in as_cuda_build.modules() if isinstance(m, SparseConvolution)]
    for layer in convs:
        layer.algo = ConvAlgo.MaskImplicitGemm  # what spconv-cu126 picks at build time
    rng = np.random.default_rng(1)
    zyx = np.unique(rng.integers(0, 8, size=(40, 3)), axis=0)
    coords = torch.from_numpy(np.concatenate([np.zeros((len(zyx), 1)), zyx], 1).astype(np.int32))
    features = torch.from_numpy(rng.normal(size=(len(zyx), 2)).astype(np.float32))
    with torch.no_grad():
        expected = native(features, coords, 1)
        got = as_cuda_build(features, coords, 1)
    torch.testing.assert_close(got.features, expected.features)
    assert torch.equal(got.indices, expected.indices)
    assert all(layer.algo == ConvAlgo.Native for layer in convs)
    assert all(layer._robokit_build_algo == ConvAlgo.MaskImplicitGemm for layer in convs)


def test_eval_with_input_grads_keeps_spconv_differentiable_and_restores_modes():
    """spconv's CUDA eval path runs outside autograd, so input gradients (INTACT saliency, PGD) keep
    spconv's convolutions in training mode (same maths) while BatchNorm reads running statistics.
    The CUDA half is tests/gpu/test_cuda_paths.py::test_input_gradients_on_cuda_match_cpu."""
    from spconv.pytorch.conv import SparseConvolution

    from robokit.pointcloud.backbones import SparseClassifier
    from robokit.pointcloud.spconv_patch import eval_with_input_grads

    model = SparseClassifier(num_classes=3, channels=(4, 4, 8, 8), hidden=8)
    convs = [m for m in model.modules() if isinstance(m, SparseConvolution)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for start_training in (True, False):
        model.train(start_training)
        with eval_with_input_grads(model):
            assert convs and all(conv.training for conv in convs)
            assert norms and not any(norm.training for norm in norms)
            points = torch.rand(2, 64, 3).mul(1.6).sub(0.8).requires_grad_(True)
            (grad,) = torch.autograd.grad(model(points).sum(), points)
            assert grad.abs().sum() > 0
        assert all(m.training == start_training for m in model.modules())
    plain = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3)).train()
    with eval_with_input_grads(plain):
        assert not plain.training and not plain[1].training
    assert plain.training and plain[1].training
