"""Beam patterns of real scanners: the elevation table and the azimuth steps of one sweep.

Sensor frame (KITTI velodyne): x forward, y left, z up. A ray at elevation ``e`` and azimuth
``a`` (counter-clockwise from +x, seen from above) has the unit direction
``(cos e cos a, cos e sin a, sin e)``.

Rays are ordered azimuth-major, the order in which a spinning scanner fires them: ray
``k = j * num_beams + i`` is beam ``i`` at azimuth step ``j``. A spinning scanner turns
clockwise seen from above (as Velodyne units do) and starts behind the car, so step ``j`` has
azimuth ``180 - j * 360 / A`` degrees; its firing time is ``j / A`` of the sweep.

Elevation tables (degrees, top beam first) and where they come from:

* ``hdl64e``: Velodyne HDL-64E S2 (the KITTI scanner). The S2 manual and datasheet give a
  vertical field of view of +2.0 to -24.8 degrees in 64 equally spaced steps (~0.4254 deg);
  MAVS (Mississippi State's simulator, ``src/sensors/lidar/hdl64e.cpp``) models the upper
  block as 32 beams from +2.0 to -11.1873 and the lower block as 32 beams from -11.6127 to
  -24.8, which is exactly ``linspace(2.0, -24.8, 64)``. Real units differ per laser by a few
  tenths of a degree (their ``db.xml`` calibration, e.g. ros-drivers/velodyne's
  ``64e_s2.1-sztaki.yaml``); pass your unit's table to :class:`BeamPattern` to use it.
* ``hdl32e``: Velodyne HDL-32E, -30.67 to +10.67 degrees in 32 steps of 1.333 (datasheet;
  MAVS ``hdl32e.cpp`` uses the same).
* ``vlp16``: Velodyne VLP-16 (Puck), -15 to +15 degrees in steps of 2 (datasheet).
* ``solid_state``: a non-spinning unit scanning a rectangular field of view, here 120 x 25
  degrees at 0.2 degree resolution like the RoboSense RS-LiDAR-M1 datasheet; rows fire
  top to bottom, columns left to right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["BeamPattern", "PATTERNS", "make_pattern", "hdl64e_elevations"]


def hdl64e_elevations() -> np.ndarray:
    """The 64 HDL-64E S2 beam elevations in degrees, top first: ``linspace(2.0, -24.8, 64)``."""
    return np.linspace(2.0, -24.8, 64)


@dataclass(frozen=True)
class BeamPattern:
    """Where the rays of one scan point.

    Attributes:
        name: pattern name (``hdl64e``, ``hdl32e``, ``vlp16``, ``solid_state`` or your own).
        elevation_deg: ``(B,)`` beam elevations, degrees.
        azimuth_deg: ``(A,)`` azimuth of each step, degrees, in firing order.
        spinning: True for a rotating scanner (firing time grows with the azimuth step).
    """

    name: str
    elevation_deg: np.ndarray
    azimuth_deg: np.ndarray
    spinning: bool = True
    _directions: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        elevation = np.asarray(self.elevation_deg, dtype=np.float64).reshape(-1)
        azimuth = np.asarray(self.azimuth_deg, dtype=np.float64).reshape(-1)
        if elevation.size == 0 or azimuth.size == 0:
            raise ValueError(
                f"beam pattern {self.name!r}: needs at least one beam and one azimuth step, got "
                f"{elevation.size} beams x {azimuth.size} steps"
            )
        if not (np.isfinite(elevation).all() and np.isfinite(azimuth).all()):
            raise ValueError(f"beam pattern {self.name!r}: angles must be finite")
        if np.abs(elevation).max() > 90.0:
            raise ValueError(f"beam pattern {self.name!r}: elevations must lie in [-90, 90] degrees")
        object.__setattr__(self, "elevation_deg", elevation)
        object.__setattr__(self, "azimuth_deg", azimuth)
        object.__setattr__(self, "_directions", _unit_directions(elevation, azimuth))

    @property
    def num_beams(self) -> int:
        return int(self.elevation_deg.size)

    @property
    def num_steps(self) -> int:
        return int(self.azimuth_deg.size)

    @property
    def num_rays(self) -> int:
        return self.num_beams * self.num_steps

    def directions(self) -> np.ndarray:
        """Unit ray directions in the sensor frame, ``(A * B, 3)`` float64, azimuth-major (read-only)."""
        return self._directions

    def firing_fraction(self) -> np.ndarray:
        """``(A,)`` fraction of the sweep at which each azimuth step fires, in [0, 1)."""
        return np.arange(self.num_steps) / self.num_steps


def _unit_directions(elevation_deg: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    elevation = np.deg2rad(elevation_deg)[None, :]  # (1, B)
    azimuth = np.deg2rad(azimuth_deg)[:, None]  # (A, 1)
    cos_e = np.cos(elevation)
    directions = np.stack(
        np.broadcast_arrays(cos_e * np.cos(azimuth), cos_e * np.sin(azimuth), np.sin(elevation)), axis=-1
    ).reshape(-1, 3)
    directions.setflags(write=False)
    return directions


def _spin_azimuths(steps: int) -> np.ndarray:
    """``steps`` azimuths of a clockwise sweep that starts behind the sensor (degrees)."""
    return 180.0 - 360.0 * np.arange(steps) / steps


def _spinning(name: str, elevation_deg: np.ndarray, azimuth_steps: int) -> BeamPattern:
    if azimuth_steps < 1:
        raise ValueError(f"beam pattern {name!r}: azimuth_steps must be >= 1, got {azimuth_steps}")
    return BeamPattern(name, elevation_deg, _spin_azimuths(azimuth_steps))


def _solid_state(azimuth_steps: int, beams: int) -> BeamPattern:
    """120 x 25 degree grid; ``beams`` rows, ``azimuth_steps`` columns (0.2 deg: 125 x 600)."""
    if azimuth_steps < 1 or beams < 1:
        raise ValueError(f"beam pattern 'solid_state': needs >= 1 rows and columns, got {beams} x {azimuth_steps}")
    return BeamPattern(
        "solid_state",
        np.linspace(12.5, -12.5, beams),
        np.linspace(60.0, -60.0, azimuth_steps),
        spinning=False,
    )


#: pattern name -> (number of beams, default azimuth steps)
PATTERNS: dict[str, tuple[int, int]] = {
    "hdl64e": (64, 2048),
    "hdl32e": (32, 2048),
    "vlp16": (16, 1800),
    "solid_state": (125, 600),
}


def make_pattern(name: str, azimuth_steps: int | None = None, beams: int | None = None) -> BeamPattern:
    """A named beam pattern (see the module doc) with ``azimuth_steps`` steps per sweep.

    Args:
        name: one of :data:`PATTERNS`.
        azimuth_steps: steps per sweep (default: the pattern's, 2048 for ``hdl64e``).
        beams: rows of the ``solid_state`` grid only (the spinning units have fixed tables).
    Raises:
        ValueError: an unknown name, zero beams or zero steps (the message names the pattern).
    """
    if name not in PATTERNS:
        raise ValueError(f"unknown beam pattern {name!r} (known: {', '.join(PATTERNS)})")
    default_beams, default_steps = PATTERNS[name]
    steps = default_steps if azimuth_steps is None else int(azimuth_steps)
    if name == "solid_state":
        return _solid_state(steps, default_beams if beams is None else int(beams))
    if beams is not None and beams != default_beams:
        raise ValueError(f"beam pattern {name!r} has a fixed table of {default_beams} beams, got beams={beams}")
    if name == "hdl64e":
        return _spinning(name, hdl64e_elevations(), steps)
    if name == "hdl32e":
        return _spinning(name, np.linspace(-30.67, 10.67, 32)[::-1], steps)
    return _spinning(name, np.arange(15.0, -16.0, -2.0), steps)  # vlp16: +15 .. -15 step 2
