"""Batched constant-velocity Kalman filter over 3D boxes (AB3DMOT's motion model).

State (10,): ``[x, y, z, theta, l, w, h, vx, vy, vz]``; measurement (7,): the first seven.
Positions move with their velocities once per frame; orientation and size are constant.
All functions work on K tracks at once: ``mean (K, 10)``, ``cov (K, 10, 10)``.

Defaults (:class:`KalmanNoise`) are AB3DMOT's: initial covariance 10 on the measured
terms and 10 x 1000 on the unobserved velocities, process noise 1 (0.01 on velocities),
measurement noise 1. Units are those of the boxes (metres, radians, per frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MEASUREMENT_DIM",
    "STATE_DIM",
    "KalmanNoise",
    "kalman_init",
    "kalman_predict",
    "kalman_update",
    "transition_matrix",
    "wrap_angle",
]

STATE_DIM = 10
MEASUREMENT_DIM = 7
THETA = 3  # index of the orientation in state and measurement


@dataclass(frozen=True)
class KalmanNoise:
    """Diagonal noise levels (variances)."""

    initial_var: float = 10.0
    initial_velocity_var: float = 10_000.0
    process_var: float = 1.0
    process_velocity_var: float = 0.01
    measurement_var: float = 1.0

    def initial_cov(self) -> np.ndarray:
        return np.diag([self.initial_var] * MEASUREMENT_DIM + [self.initial_velocity_var] * 3)

    def process_cov(self) -> np.ndarray:
        return np.diag([self.process_var] * MEASUREMENT_DIM + [self.process_velocity_var] * 3)


def transition_matrix() -> np.ndarray:
    """``(10, 10)`` F: x, y, z each gain their velocity; everything else is constant."""
    f = np.eye(STATE_DIM)
    f[0, 7] = f[1, 8] = f[2, 9] = 1.0
    return f


_F = transition_matrix()


def wrap_angle(angle):
    """Wrap radians into ``[-pi, pi)``."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def kalman_init(measurements: np.ndarray, noise: KalmanNoise) -> tuple[np.ndarray, np.ndarray]:
    """New tracks at ``measurements (K, 7)`` with zero velocity -> ``mean (K, 10), cov (K, 10, 10)``."""
    count = measurements.shape[0]
    mean = np.zeros((count, STATE_DIM))
    mean[:, :MEASUREMENT_DIM] = measurements
    cov = np.broadcast_to(noise.initial_cov(), (count, STATE_DIM, STATE_DIM)).copy()
    return mean, cov


def kalman_predict(
    mean: np.ndarray, cov: np.ndarray, noise: KalmanNoise
) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: ``mean' = F mean``, ``cov' = F cov F^T + Q``; theta wrapped."""
    mean = mean @ _F.T
    mean[:, THETA] = wrap_angle(mean[:, THETA])
    cov = _F @ cov @ _F.T + noise.process_cov()
    return mean, cov


def align_orientation(state_theta: np.ndarray, measured_theta: np.ndarray) -> np.ndarray:
    """Orientation correction: state angles re-expressed near the measurement.

    A box's heading is ambiguous by pi for the detector, so when the measured angle differs
    from the state's by more than pi/2 the state is flipped by pi; the result is then the
    equivalent angle within pi/2 of the measurement (no 2*pi jump in the innovation).
    Shapes ``(K,)``.
    """
    difference = wrap_angle(measured_theta - state_theta)
    flip = np.abs(difference) > np.pi / 2
    difference = np.where(flip, wrap_angle(difference - np.pi), difference)
    return measured_theta - difference


def kalman_update(
    mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray, noise: KalmanNoise
) -> tuple[np.ndarray, np.ndarray]:
    """Correct ``K`` tracks with ``measurements (K, 7)`` (H selects the first 7 state terms).

    Applies :func:`align_orientation` first, then the standard update with
    ``S = H P H^T + R``, gain ``P H^T S^-1`` and the Joseph-form covariance.
    """
    mean = mean.copy()
    mean[:, THETA] = align_orientation(mean[:, THETA], measurements[:, THETA])
    innovation = measurements - mean[:, :MEASUREMENT_DIM]  # (K, 7)
    cov_ht = cov[:, :, :MEASUREMENT_DIM]  # P H^T: (K, 10, 7)
    innovation_cov = cov[:, :MEASUREMENT_DIM, :MEASUREMENT_DIM] + noise.measurement_var * np.eye(
        MEASUREMENT_DIM
    )
    gain = np.linalg.solve(innovation_cov, cov_ht.transpose(0, 2, 1)).transpose(0, 2, 1)  # (K,10,7)
    mean += np.einsum("kij,kj->ki", gain, innovation)
    mean[:, THETA] = wrap_angle(mean[:, THETA])
    keep = np.eye(STATE_DIM) - np.pad(gain, ((0, 0), (0, 0), (0, STATE_DIM - MEASUREMENT_DIM)))
    cov = keep @ cov @ keep.transpose(0, 2, 1) + noise.measurement_var * gain @ gain.transpose(
        0, 2, 1
    )
    return mean, cov
