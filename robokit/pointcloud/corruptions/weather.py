"""Fog / rain-like scattering of a LiDAR scan (metres, sensor at the origin), severities 1..5.

A scattering medium of extinction coefficient ``alpha`` (1/m) does two things to a pulse that
travels to a surface at range ``r`` and back (:func:`fog`):

* **attenuation**: the hard-target return loses power as ``exp(-2 alpha r)`` (two-way
  Beer-Lambert; the hard-target term of Hahner et al., "Fog Simulation on Real LiDAR Point Clouds
  for 3D Object Detection in Adverse Weather", ICCV 2021). Its intensity is multiplied by that
  factor, and a return that this pushes below the detection floor ``min_intensity`` is lost.
* **backscatter**: the pulse returns from the medium instead, with probability
  ``backscatter * (1 - exp(-2 alpha r))`` (the share of the pulse's power scattered on the way,
  times the part of it that comes back detectably), at the distance of the first scattering
  event along the same ray (exponential with rate ``alpha``, truncated to ``[0, r]``), with
  intensity 0 (a soft target: no surface). These are the spurious near returns fog and rain put
  into a scan.

================ ========================================================== ==============================
corruption       what it does                                               severity 1 .. 5
================ ========================================================== ==============================
fog              :func:`fog` (attenuation, loss below 0.05, backscatter     alpha = 0.005, 0.01, 0.02,
                 share 0.1)                                                 0.03, 0.06 per metre
================ ========================================================== ==============================

Sources: the ``alpha`` levels are the fog densities Hahner et al. simulate (0.005-0.06 /m, i.e.
meteorological visibility ``ln(20) / alpha`` from 600 m down to 50 m). The detection floor 0.05
is robokit's simulated scanner's ``weak_limit``. The backscatter share 0.1 and the single-event
ray model are robokit's simplification of their soft-target term (no pulse shape, no receiver
model), so the rates are stated, not fitted to a real sensor.
"""

from __future__ import annotations

import numpy as np

from robokit.pointcloud.corruptions._common import level_value

LEVELS = (1, 2, 3, 4, 5)
FOG_ALPHA = (0.005, 0.01, 0.02, 0.03, 0.06)
MIN_INTENSITY = 0.05
BACKSCATTER = 0.1


def fog(points: np.ndarray, alpha: float, rng: np.random.Generator, min_intensity: float = MIN_INTENSITY,
        backscatter: float = BACKSCATTER) -> np.ndarray:
    """A scan (N, 4) x, y, z, intensity in fog of extinction ``alpha`` (1/m) -> (M, 4) float32, M <= N.

    Point ``i`` at range ``r_i``: with probability ``backscatter * (1 - exp(-2 alpha r_i))`` it moves
    along its ray to ``d_i ~ Exp(alpha)`` truncated to ``[0, r_i]``, intensity 0; otherwise its
    intensity is multiplied by ``exp(-2 alpha r_i)`` and it is removed when that takes it from
    ``>= min_intensity`` to below. Survivors keep their order. ``alpha = 0`` returns the scan unchanged.
    """
    if alpha < 0 or not 0.0 <= backscatter <= 1.0:
        raise ValueError(f"fog: alpha must be >= 0 and backscatter in [0, 1], got {alpha} and {backscatter}")
    out = np.array(points, dtype=np.float32, copy=True)
    if out.ndim != 2 or out.shape[1] < 4:
        raise ValueError(f"fog: expects (N, 4) x, y, z, intensity points, got {out.shape}")
    if alpha == 0 or len(out) == 0:
        return out
    r = np.linalg.norm(out[:, :3].astype(np.float64), axis=1)
    transmission = np.exp(-2.0 * alpha * r)
    scattered = rng.random(len(out)) < backscatter * (1.0 - transmission)
    # inverse CDF of the exponential truncated to [0, r]: d = -ln(1 - u (1 - exp(-alpha r))) / alpha
    u = rng.random(len(out))
    distance = -np.log1p(-u * (1.0 - np.exp(-alpha * r))) / alpha
    scale = np.where(scattered, distance / np.maximum(r, 1e-9), 1.0)
    out[:, :3] *= scale[:, None].astype(np.float32)
    before = out[:, 3].copy()
    out[:, 3] = np.where(scattered, 0.0, before * transmission).astype(np.float32)
    lost = ~scattered & (before >= min_intensity) & (out[:, 3] < min_intensity)
    return out[~lost]


def _fog_level(points, severity, rng):
    return fog(points, level_value(FOG_ALPHA, severity, LEVELS[0], "fog"), rng)


#: name -> function(points, severity, rng), as in the other suites
CORRUPTIONS = {"fog": _fog_level}
