"""Deprecated: ``robokit.lidar`` was split by flow; its old module paths still import for one release.

=====================================  =============================================
old path                               new path
=====================================  =============================================
``robokit.lidar.points``, ``io``,      ``robokit.pointcloud.<same name>``
``voxelizer``, ``boxes``,
``corruptions``, ``backbones``,
``spconv_patch``, ``procedural``,
``kitti_crops``
``robokit.lidar.saliency``,            ``robokit.intact.<same name>``
``curriculum``, ``attacks``
``robokit.lidar.robust_train``         ``robokit.intact.train``
``robokit.lidar.robust_eval``          ``robokit.intact.evaluate``
``robokit.lidar.cli`` / ``demo``       ``robokit.intact.cli`` / ``robokit.intact.demo``
``robokit.lidar.detection[.*]``        ``robokit.detection[.*]``
``robokit.lidar.tracking[.*]``         ``robokit.tracking[.*]``
``robokit.lidar.kitti_cli``            ``robokit.tracking.cli``
=====================================  =============================================

Importing an old path emits a :class:`DeprecationWarning` and returns the *new* module object
itself (not a copy), so classes, monkeypatching and ``isinstance`` behave as before.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED", "new_name"]

#: first component under ``robokit.lidar`` -> module it moved to
MOVED: dict[str, str] = {
    **{name: f"robokit.pointcloud.{name}" for name in (
        "points", "io", "voxelizer", "boxes", "corruptions", "backbones", "spconv_patch",
        "procedural", "kitti_crops")},
    **{name: f"robokit.intact.{name}" for name in ("saliency", "curriculum", "attacks", "cli", "demo")},
    "robust_train": "robokit.intact.train",
    "robust_eval": "robokit.intact.evaluate",
    "detection": "robokit.detection",
    "tracking": "robokit.tracking",
    "kitti_cli": "robokit.tracking.cli",
}


def new_name(old: str) -> str | None:
    """The module an old ``robokit.lidar.*`` path now lives at (None if it is not an old path)."""
    prefix = __name__ + "."
    if not old.startswith(prefix):
        return None
    head, _, rest = old[len(prefix):].partition(".")
    if head not in MOVED:
        return None
    return MOVED[head] + ("." + rest if rest else "")


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path to the new module object (runs before the path-based finders)."""

    def find_spec(self, fullname, path=None, target=None):
        if new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        target = new_name(spec.name)
        warnings.warn(f"{spec.name} moved to {target}; the old path will be removed in the next "
                      "release", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(target)
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the alias spec on the real module; give it its own back
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())


def __getattr__(name: str) -> ModuleType:
    """``robokit.lidar.io`` as an attribute (after ``import robokit.lidar``) resolves like an import."""
    if name in MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
