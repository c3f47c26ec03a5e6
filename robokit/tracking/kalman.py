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
from numba import njit

__all__ = [
    "MEASUREMENT_DIM",
    "STATE_DIM",
    "KalmanNoise",
    "kalman_init",
    "kalman_predict",
    "kalman_update",
    "predict_inplace",
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
    mean, cov = np.array(mean, dtype=np.float64), np.array(cov, dtype=np.float64)
    _predict_inplace(mean, cov, np.diag(noise.process_cov()).copy())
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


def predict_inplace(mean: np.ndarray, cov: np.ndarray, noise: KalmanNoise) -> None:
    """:func:`kalman_predict` writing into float64 C-contiguous ``mean`` and ``cov``."""
    _predict_inplace(mean, cov, np.diag(noise.process_cov()).copy())


def kalman_update(
    mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray, noise: KalmanNoise
) -> tuple[np.ndarray, np.ndarray]:
    """Correct ``K`` tracks with ``measurements (K, 7)`` (H selects the first 7 state terms).

    Applies :func:`align_orientation` first, then the standard update with
    ``S = H P H^T + R``, gain ``P H^T S^-1`` and the Joseph-form covariance
    ``(I - KH) P (I - KH)^T + K R K^T``.
    """
    mean, cov = np.array(mean, dtype=np.float64), np.array(cov, dtype=np.float64)
    measurements = np.ascontiguousarray(measurements, dtype=np.float64)
    _update_inplace(mean, cov, measurements, float(noise.measurement_var))
    return mean, cov


# ----------------------------------------------------------------------------- numba kernels


@njit(cache=True)
def _wrap(angle):
    return (angle + np.pi) % (2 * np.pi) - np.pi


@njit(cache=True)
def _predict_inplace(mean, cov, process_diag):
    """F = I + E with E[i, 7 + i] = 1 (i < 3): F P F^T = P + E P + P E^T + E P E^T."""
    for k in range(mean.shape[0]):
        for i in range(3):
            mean[k, i] += mean[k, 7 + i]
        mean[k, THETA] = _wrap(mean[k, THETA])
        p = cov[k]
        for i in range(3):  # rows: P + E P
            for j in range(STATE_DIM):
                p[i, j] += p[7 + i, j]
        for j in range(3):  # columns: (.) + (.) E^T
            for i in range(STATE_DIM):
                p[i, j] += p[i, 7 + j]
        for i in range(STATE_DIM):
            p[i, i] += process_diag[i]


@njit(cache=True)
def _cholesky_solve(matrix, rhs):
    """Solve ``matrix @ x = rhs`` for symmetric positive-definite ``matrix (n, n)``, ``rhs (n, r)``."""
    n = matrix.shape[0]
    lower = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1):
            total = matrix[i, j]
            for k in range(j):
                total -= lower[i, k] * lower[j, k]
            lower[i, j] = np.sqrt(total) if i == j else total / lower[j, j]
    x = rhs.copy()
    for c in range(x.shape[1]):
        for i in range(n):  # forward: L y = b
            total = x[i, c]
            for k in range(i):
                total -= lower[i, k] * x[k, c]
            x[i, c] = total / lower[i, i]
        for i in range(n - 1, -1, -1):  # backward: L^T x = y
            total = x[i, c]
            for k in range(i + 1, n):
                total -= lower[k, i] * x[k, c]
            x[i, c] = total / lower[i, i]
    return x


@njit(cache=True)
def _update_inplace(mean, cov, measurements, measurement_var):
    m = MEASUREMENT_DIM
    for k in range(mean.shape[0]):
        # orientation correction (see align_orientation)
        measured = measurements[k, THETA]
        difference = _wrap(measured - mean[k, THETA])
        if abs(difference) > np.pi / 2:
            difference = _wrap(difference - np.pi)
        mean[k, THETA] = measured - difference
        p = cov[k]
        innovation_cov = p[:m, :m].copy()
        for i in range(m):
            innovation_cov[i, i] += measurement_var
        gain = _cholesky_solve(innovation_cov, p[:m, :].copy()).T  # (10, 7) = P H^T S^-1
        innovation = measurements[k] - mean[k, :m]
        mean[k] += gain @ innovation
        mean[k, THETA] = _wrap(mean[k, THETA])
        keep = np.eye(STATE_DIM)
        keep[:, :m] -= gain
        cov[k] = keep @ p @ keep.T + measurement_var * (gain @ gain.T)
