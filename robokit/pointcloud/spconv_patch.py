"""The one place robokit makes spconv 2.3.x usable on a CPU-only torch.

spconv 2.3.8's autograd functions call ``get_current_stream()`` (in
``spconv.pytorch.ops`` and ``spconv.pytorch.hash``), which asks
``torch.cuda.current_stream()`` and fails when torch has no CUDA. On CPU the
stream handle is unused, so returning ``0`` is exact. :func:`ensure_spconv_cpu`
replaces the two module-level references once; calling it again is a no-op.

Two more CPU rules that this module cannot patch, and that robokit's layers
follow (see :mod:`robokit.pointcloud.backbones`): spconv convolutions are built with
``bias=False`` (the bias path fails in eval mode on CPU) and without a fused
activation; BatchNorm1d + ReLU follow as separate modules.
"""

from __future__ import annotations

from types import ModuleType

_PATCHED_ATTR = "_robokit_cpu_stream_patch"


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


def is_patched() -> bool:
    """True once :func:`ensure_spconv_cpu` has patched both spconv modules."""
    import sys

    modules = [sys.modules.get("spconv.pytorch.ops"), sys.modules.get("spconv.pytorch.hash")]
    return all(
        m is not None and getattr(m.get_current_stream, _PATCHED_ATTR, False) for m in modules
    )
