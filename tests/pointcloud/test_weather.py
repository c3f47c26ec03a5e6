"""Fog / rain-like scattering (robokit.pointcloud.corruptions.weather): seeded rates and hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.pointcloud.corruptions import weather


def _ring(n: int, r: float, intensity: float) -> np.ndarray:
    """(n, 4) points at range ``r`` around the sensor, all of ``intensity``."""
    angle = np.linspace(-np.pi, np.pi, n, endpoint=False)
    return np.stack([r * np.cos(angle), r * np.sin(angle), np.zeros(n), np.full(n, intensity)], 1).astype(np.float32)


def test_no_fog_changes_nothing_and_bad_input_is_refused():
    scan = _ring(50, 5.0, 0.3)
    np.testing.assert_array_equal(weather.fog(scan, 0.0, np.random.default_rng(0)), scan)
    with pytest.raises(ValueError, match="alpha"):
        weather.fog(scan, -0.1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="intensity"):
        weather.fog(scan[:, :3], 0.01, np.random.default_rng(0))
    with pytest.raises(ValueError, match="severity"):
        weather.CORRUPTIONS["fog"](scan, 6, np.random.default_rng(0))


def test_attenuation_and_loss_by_hand():
    # backscatter 0: only attenuation. r = 10 m, alpha = 0.06: transmission exp(-1.2) = 0.30119
    scan = np.array([[10, 0, 0, 0.3], [0, 10, 0, 0.1], [0, 0, 10, 0.01]], np.float32)
    out = weather.fog(scan, 0.06, np.random.default_rng(0), backscatter=0.0)
    # 0.3 -> 0.0904 kept; 0.1 -> 0.0301 lost (pushed below 0.05); 0.01 was already below: kept, 0.0030
    np.testing.assert_allclose(out[:, 3], [0.3 * np.exp(-1.2), 0.01 * np.exp(-1.2)], rtol=1e-6)
    np.testing.assert_array_equal(out[:, :3], scan[[0, 2], :3])


def test_backscatter_rate_and_range_follow_the_model():
    n, r, alpha = 20000, 8.0, 0.03
    out = weather.fog(_ring(n, r, 1.0), alpha, np.random.default_rng(1))  # bright: no hard return is lost
    assert len(out) == n
    scattered = out[:, 3] == 0.0
    expected = weather.BACKSCATTER * (1 - np.exp(-2 * alpha * r))  # 0.0381
    assert abs(scattered.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    ranges = np.linalg.norm(out[scattered, :3], axis=1)
    assert ranges.min() >= 0 and ranges.max() <= r + 1e-4
    # mean of Exp(alpha) truncated to [0, r]: 1/alpha - r exp(-alpha r) / (1 - exp(-alpha r)) = 3.88 m
    mean = 1 / alpha - r * np.exp(-alpha * r) / (1 - np.exp(-alpha * r))
    assert abs(ranges.mean() - mean) < 4 * r / np.sqrt(12 * scattered.sum())
    # survivors: attenuated exactly, same direction and range
    np.testing.assert_allclose(out[~scattered, 3], np.exp(-2 * alpha * r), rtol=1e-6)


def test_severities_grow_and_a_seed_fixes_the_result():
    scan = _ring(3000, 6.0, 0.3)
    counts = [int((weather.CORRUPTIONS["fog"](scan, s, np.random.default_rng(0))[:, 3] == 0).sum())
              for s in weather.LEVELS]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    a = weather.CORRUPTIONS["fog"](scan, 3, np.random.default_rng(7))
    np.testing.assert_array_equal(a, weather.CORRUPTIONS["fog"](scan, 3, np.random.default_rng(7)))
