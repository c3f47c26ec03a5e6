"""Simulated LiDAR in MuJoCo: a KITTI-like scanner, labelled datasets from meshes and moving scenes.

* :mod:`robokit.simlidar.patterns` - beam tables of the HDL-64E S2, HDL-32E, VLP-16 and a solid-state unit.
* :mod:`robokit.simlidar.scanner` - :class:`LidarScanner`, one ``mujoco.mj_multiRay`` call per scan.
* :mod:`robokit.simlidar.objects` - object scans for classification (ModelNet-style HDF5).
* :mod:`robokit.simlidar.scenes` - moving street scenes (KITTI object and tracking layouts).
* :mod:`robokit.simlidar.cli` - ``robokit sim-lidar make-objects | make-scenes | scan``.

MuJoCo is imported only when a scanner is built, so importing this package stays cheap.
"""

from robokit.simlidar.patterns import PATTERNS, BeamPattern, make_pattern
from robokit.simlidar.scanner import LidarConfig, LidarScanner

__all__ = ["PATTERNS", "BeamPattern", "LidarConfig", "LidarScanner", "make_pattern"]
