"""The one place robokit makes spconv 2.3.x usable on a CPU-only torch.

spconv 2.3.8's autograd functions call ``get_current_stream()`` (in
``spconv.pytorch.ops`` and ``spconv.pytorch.hash``), which asks
``torch.cuda.current_stream()`` and fails when torch has no CUDA. On CPU the
stream handle is unused, so returning ``0`` is exact. :func:`ensure_spconv_cpu`
replaces the two module-level references once; calling it again is a no-op.

A CUDA build of spconv (the ``cuda`` extra) fixes each convolution's algorithm when the layer is
built: MaskImplicitGemm for 3x3x3 kernels, which asserts "implicit gemm only support cuda" on CPU
tensors (seen on an H200 with spconv-cu126 2.3.8, 2026-11-30). :func:`match_algorithms_to_device`
gives every layer Native on CPU and its build-time algorithm on CUDA.

Two more CPU rules that this module cannot patch, and that robokit's layers
follow (see :mod:`robokit.pointcloud.backbones`): spconv convolutions are built with
``bias=False`` (the bias path fails in eval mode on CPU) and without a fused
activation; BatchNorm1d + ReLU follow as separate modules.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import ModuleType

_PATCHED_ATTR = "_robokit_cpu_stream_patch"
_BUILD_ALGO_ATTR = "_robokit_build_algo"


def _cpu_safe_stream(original):
    """Wrap spconv's ``get_current_stream``: the real stream on CUDA, 0 without it."""

    def get_current_stream() -> int:
        import torch

        if torch.cuda.is_available():
            return original()
        return 0

    setattr(get_current_stream, _PATCHED_ATTR, True)
    return get_current_stream


def ensure_spconv_cpu() -> ModuleType:
    """Import ``spconv.pytorch``, apply the CPU stream patch once, and return the module.

    Raises:
        robokit.optional.MissingOptionalDependency: when spconv is not installed,
            naming the ``lidar`` extra.
    """
    from robokit.optional import require

    spconv_pytorch = require("spconv.pytorch", "lidar")
    ops = require("spconv.pytorch.ops", "lidar")
    hash_mod = require("spconv.pytorch.hash", "lidar")
    for module in (ops, hash_mod):
        current = module.get_current_stream
        if not getattr(current, _PATCHED_ATTR, False):
            module.get_current_stream = _cpu_safe_stream(current)
    return spconv_pytorch


def match_algorithms_to_device(module, on_cuda: bool) -> None:
    """Set the algorithm of every spconv convolution under ``module`` for the device it runs on.

    CPU: ``ConvAlgo.Native`` (the only algorithm spconv runs on CPU tensors). CUDA: the algorithm
    spconv chose when the layer was built (remembered on the layer the first time). Weights are
    KRSC under every algorithm (``spconv.constants.ALL_WEIGHT_IS_KRSC``), so switching moves no
    weights; layers that share an ``indice_key`` always switch together.
    """
    from spconv.core import ConvAlgo

    for layer in _sparse_convolutions(module):
        if not hasattr(layer, _BUILD_ALGO_ATTR):
            setattr(layer, _BUILD_ALGO_ATTR, layer.algo)
        layer.algo = getattr(layer, _BUILD_ALGO_ATTR) if on_cuda else ConvAlgo.Native


@contextlib.contextmanager
def eval_with_input_grads(model) -> Iterator[None]:
    """Eval mode (BatchNorm on running statistics) in which the loss still differentiates w.r.t. the input.

    On CUDA, spconv's eval-mode implicit-GEMM path calls the kernel outside autograd, so no
    gradient reaches the input features ("One of the differentiated Tensors appears to not have
    been used in the graph", seen on an H200 with spconv-cu126 2.3.8). Inside this context every
    spconv convolution stays in training mode, which only selects spconv's differentiable path
    (convolutions have no train/eval behaviour of their own); everything else is in eval mode.
    The model's own mode is restored on exit. Models without spconv layers just run in eval.
    """
    was_training = model.training
    model.eval()
    for layer in _sparse_convolutions(model):
        layer.training = True
    try:
        yield
    finally:
        model.train(was_training)


def _sparse_convolutions(model) -> Iterator:
    """The spconv convolution layers under ``model`` (none when spconv was never imported).

    Looks the class up in ``sys.modules`` so that models without spconv never import it.
    """
    conv_module = sys.modules.get("spconv.pytorch.conv")
    if conv_module is None:
        return iter(())
    return (layer for layer in model.modules() if isinstance(layer, conv_module.SparseConvolution))


def is_patched() -> bool:
    """True once :func:`ensure_spconv_cpu` has patched both spconv modules."""
    modules = [sys.modules.get("spconv.pytorch.ops"), sys.modules.get("spconv.pytorch.hash")]
    return all(
        m is not None and getattr(m.get_current_stream, _PATCHED_ATTR, False) for m in modules
    )
