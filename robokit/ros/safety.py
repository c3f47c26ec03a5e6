"""Safety layer: every command a robokit policy sends to a robot passes through here.

What it does, in order, for each control tick (:meth:`SafetyLayer.filter`):

1. e-stop latched -> stop command (stays latched until :meth:`SafetyLayer.reset_estop`).
2. no accepted observation within ``watchdog_ms`` -> stop command (watchdog).
3. the policy raised, or returned NaN/inf or the wrong number of values -> stop command
   (a policy that hangs is caught by the runner, which publishes :meth:`emergency_stop`).
4. otherwise clamp: twist commands to ``max_linear_speed`` (m/s, norm of the linear part)
   and ``max_angular_speed`` (rad/s, norm of the angular part), then limit the change per
   tick to ``max_linear_accel`` / ``max_angular_accel`` (m/s^2, rad/s^2); joint position
   commands to ``[joint_position_min, joint_position_max]`` (rad or m) and to a step of at most
   ``joint_velocity_max * dt`` from the previous command (position limits win if the robot is
   observed outside them).

A stop is a zero twist, or "hold position" (the last commanded joint positions, or the
last observed ones before any command) for joint commands.

Observations are screened by :meth:`SafetyLayer.screen_observation` before the policy sees
them: NaN/inf values, wrong sizes, stamps older than ``stale_ms`` and stamps older than the
previous accepted one are dropped and counted, never acted on.

Every intervention is counted in :attr:`SafetyLayer.counts`, logged through the
``robokit.ros.safety`` logger, and appended to a JSON-lines file when ``log_path`` is given.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LOG = logging.getLogger("robokit.ros.safety")


@dataclass(frozen=True)
class SafetyLimits:
    """Limits applied to every command. Defaults suit a small indoor mobile base
    (TurtleBot-class: ~0.2-0.5 m/s, ~1-2 rad/s); set them from your robot's datasheet."""

    max_linear_speed: float = 0.5
    max_angular_speed: float = 1.5
    max_linear_accel: float = 2.0
    max_angular_accel: float = 6.0
    joint_position_min: tuple[float, ...] = ()
    joint_position_max: tuple[float, ...] = ()
    joint_velocity_max: tuple[float, ...] = ()
    watchdog_ms: float = 250.0
    stale_ms: float | None = 500.0

    def __post_init__(self) -> None:
        for name in ("max_linear_speed", "max_angular_speed", "max_linear_accel",
                     "max_angular_accel", "watchdog_ms"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"safety limit '{name}' must be positive and finite, got {value}")
        lengths = {len(self.joint_position_min), len(self.joint_position_max),
                   len(self.joint_velocity_max)} - {0}
        if len(lengths) > 1:
            raise ValueError("joint_position_min/max and joint_velocity_max need equal lengths")
        if any(lo > hi for lo, hi in zip(self.joint_position_min, self.joint_position_max, strict=False)):
            raise ValueError("joint_position_min must not exceed joint_position_max")


@dataclass
class Intervention:
    """One thing the safety layer changed or refused. ``time_ns`` is wall-clock ns."""

    time_ns: int
    kind: str
    detail: str
    command: list[float] | None = None


@dataclass
class _State:
    last_observation_ns: int | None = None
    last_stamp_ns: dict[str, int] = field(default_factory=dict)
    last_command: np.ndarray | None = None
    last_command_ns: int | None = None
    hold_position: np.ndarray | None = None
    hold_ns: int | None = None
    estop: bool = False


class SafetyLayer:
    """Screens observations and filters commands; thread-safe.

    Args:
        limits: the limits above.
        command_kind: ``"twist"`` (commands are (6,) ``[vx vy vz wx wy wz]``) or
            ``"joint_position"`` (commands are (J,) joint targets).
        log_path: optional JSON-lines file receiving one line per intervention.
        period_s: the control period; when given, the time step used for rate limits is
            capped at it, so a late tick never licenses a bigger jump.

    The first twist command is rate-limited from rest (zero twist); the first joint command
    from the last observed joint positions.
    """

    def __init__(self, limits: SafetyLimits, command_kind: str = "twist",
                 log_path: str | Path | None = None, period_s: float | None = None) -> None:
        if command_kind not in ("twist", "joint_position"):
            raise ValueError(f"command_kind must be 'twist' or 'joint_position', got {command_kind!r}")
        self.limits = limits
        self.command_kind = command_kind
        self.period_s = period_s
        self.counts: dict[str, int] = {}
        self.interventions: list[Intervention] = []
        self._state = _State()
        # re-entrant: filter() and emergency_stop() run whole under it (the loop thread and the
        # stuck-step guard thread may both publish), and the helpers they call take it too
        self._lock = threading.RLock()
        self._last_kind = ""
        self._log_file = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115

    # -- observations -----------------------------------------------------------------------

    def screen_observation(self, key: str, values: np.ndarray, stamp_ns: int | None, now_ns: int,
                           expected_size: int | None = None, min_rows: int = 1) -> bool:
        """True if the observation may be used; otherwise it is dropped, counted and logged.

        Args:
            key: observation name (for counts and logs).
            values: decoded values, (N,) vector or (N, C) points.
            stamp_ns: header stamp (ns) or None when the message has none.
            now_ns: current wall-clock time (ns).
            expected_size: required length of a vector observation, if fixed.
            min_rows: fewest rows a point cloud must keep after invalid points are removed.
        """
        reason = self._observation_problem(key, values, stamp_ns, now_ns, expected_size, min_rows)
        if reason is not None:
            self._record(now_ns, f"drop_{reason}", f"{key}: {reason}")
            return False
        with self._lock:
            if stamp_ns is not None:
                self._state.last_stamp_ns[key] = stamp_ns
        return True

    def _observation_problem(self, key: str, values: np.ndarray, stamp_ns: int | None,
                             now_ns: int, expected_size: int | None, min_rows: int) -> str | None:
        if values.ndim == 1 and expected_size is not None and values.shape[0] != expected_size:
            return "wrong_size"
        if values.ndim == 2 and values.shape[0] < min_rows:
            return "nan" if values.shape[0] == 0 else "too_few_points"
        if not np.isfinite(values).all():
            return "nan"
        if stamp_ns is not None:
            stale_ms = self.limits.stale_ms
            if stale_ms is not None and now_ns - stamp_ns > stale_ms * 1e6:
                return "stale"
            previous = self._state.last_stamp_ns.get(key)
            if previous is not None and stamp_ns < previous:
                return "out_of_order"
        return None

    def record_dropped(self, now_ns: int, key: str, reason: str, detail: str = "") -> None:
        """Count and log an observation dropped before screening (e.g. it failed to decode)."""
        self._record(now_ns, f"drop_{reason}", f"{key}: {detail or reason}")

    def observation_accepted(self, now_ns: int, joint_positions: np.ndarray | None = None) -> None:
        """Feed the watchdog: a complete, valid observation arrived at ``now_ns``."""
        with self._lock:
            self._state.last_observation_ns = now_ns
            if joint_positions is not None and self._state.last_command is None:
                self._state.hold_position = np.asarray(joint_positions, dtype=np.float64).copy()
                self._state.hold_ns = now_ns

    def observation_age_ms(self, now_ns: int) -> float:
        """Milliseconds since the last accepted observation (inf before the first)."""
        last = self._state.last_observation_ns
        return float("inf") if last is None else (now_ns - last) / 1e6

    # -- e-stop -----------------------------------------------------------------------------

    def trigger_estop(self, now_ns: int, source: str = "estop topic") -> None:
        with self._lock:
            already = self._state.estop
            self._state.estop = True
        if not already:
            self._record(now_ns, "estop_latched", f"e-stop from {source}")

    def reset_estop(self, now_ns: int, source: str = "reset") -> None:
        with self._lock:
            was = self._state.estop
            self._state.estop = False
        if was:
            self._record(now_ns, "estop_reset", f"e-stop released by {source}")

    @property
    def estopped(self) -> bool:
        return self._state.estop

    # -- commands ---------------------------------------------------------------------------

    def filter(self, command: np.ndarray | None, now_ns: int, error: BaseException | None = None,
               ) -> tuple[np.ndarray, bool]:
        """The command to publish at ``now_ns`` and whether it is a stop.

        Args:
            command: what the policy asked for ((6,) twist or (J,) joint targets), or None
                when no policy step ran (no complete observation yet).
            error: the exception the policy raised this tick, if any.
        """
        with self._lock:
            reason = self._stop_reason(command, now_ns, error)
            if reason is not None:
                stop = self._stop_command()
                self._record(now_ns, reason[0], reason[1], stop)
                self._remember(stop, now_ns)
                return stop, True
            safe = self._clamp(np.asarray(command, dtype=np.float64), now_ns)
            self._remember(safe, now_ns)
            return safe, False

    def emergency_stop(self, now_ns: int, kind: str, detail: str) -> np.ndarray | None:
        """Record an intervention of ``kind`` and return the stop command (None if no joint
        position is known yet to hold)."""
        with self._lock:
            try:
                stop = self._stop_command()
            except RuntimeError:
                self._record(now_ns, kind, detail + " (no position known to hold: nothing published)")
                return None
            self._record(now_ns, kind, detail, stop)
            self._remember(stop, now_ns)
            return stop

    def _stop_reason(self, command: np.ndarray | None, now_ns: int,
                     error: BaseException | None) -> tuple[str, str] | None:
        state = self._state
        if state.estop:
            return "stop_estop", "e-stop latched"
        if state.last_observation_ns is None:
            return "stop_no_observation", "no valid observation received yet"
        age_ms = (now_ns - state.last_observation_ns) / 1e6
        if age_ms > self.limits.watchdog_ms:
            return "stop_watchdog", f"last valid observation {age_ms:.0f} ms ago > {self.limits.watchdog_ms:g} ms"
        if error is not None:
            return "stop_policy_error", f"policy raised {type(error).__name__}: {error}"
        if command is None:
            return "stop_no_observation", "no complete observation"
        command = np.asarray(command, dtype=np.float64)
        expected = self._command_size()
        if expected is not None and command.shape != (expected,):
            return "stop_bad_command", f"policy returned shape {command.shape}, expected ({expected},)"
        if not np.isfinite(command).all():
            return "stop_bad_command", "policy returned NaN/inf"
        return None

    def _command_size(self) -> int | None:
        if self.command_kind == "twist":
            return 6
        return len(self.limits.joint_position_min) or None

    def _stop_command(self) -> np.ndarray:
        if self.command_kind == "twist":
            return np.zeros(6)
        held = self._state.last_command if self._state.last_command is not None \
            else self._state.hold_position
        if held is None:
            raise RuntimeError("joint hold-position stop requested before any joint position is known")
        if self.limits.joint_position_min:
            # position limits are hard for stops too: before the first command the hold is the
            # observed position, which may lie outside them
            return np.clip(held, self.limits.joint_position_min, self.limits.joint_position_max)
        return held.copy()

    def _remember(self, command: np.ndarray, now_ns: int) -> None:
        with self._lock:
            self._state.last_command = command.copy()
            self._state.last_command_ns = now_ns

    def _elapsed_s(self, now_ns: int) -> float | None:
        """Seconds since the last command (or, before any, since the held joint positions)."""
        last = self._state.last_command_ns
        last = self._state.hold_ns if last is None else last
        if last is None:
            return self.period_s
        elapsed = max((now_ns - last) / 1e9, 1e-6)
        return elapsed if self.period_s is None else min(elapsed, self.period_s)

    def _clamp(self, command: np.ndarray, now_ns: int) -> np.ndarray:
        clamped = (self._clamp_twist(command, now_ns) if self.command_kind == "twist"
                   else self._clamp_joints(command, now_ns))
        if not np.allclose(clamped, command, rtol=0, atol=1e-12):
            self._record(now_ns, "clamp", f"requested {np.round(command, 4).tolist()}", clamped)
        return clamped

    def _clamp_twist(self, command: np.ndarray, now_ns: int) -> np.ndarray:
        limits, out = self.limits, command.copy()
        out[:3] = _limit_norm(out[:3], limits.max_linear_speed)
        out[3:] = _limit_norm(out[3:], limits.max_angular_speed)
        dt, previous = self._elapsed_s(now_ns), self._state.last_command
        previous = np.zeros(6) if previous is None else previous    # first command: from rest
        if dt is not None:
            out[:3] = _limit_change(out[:3], previous[:3], limits.max_linear_accel * dt)
            out[3:] = _limit_change(out[3:], previous[3:], limits.max_angular_accel * dt)
        return out

    def _clamp_joints(self, command: np.ndarray, now_ns: int) -> np.ndarray:
        limits, out = self.limits, command.copy()
        if limits.joint_position_min:
            out = np.clip(out, limits.joint_position_min, limits.joint_position_max)
        dt = self._elapsed_s(now_ns)
        previous = self._state.last_command if self._state.last_command is not None \
            else self._state.hold_position
        if limits.joint_velocity_max and previous is not None and dt is not None:
            step = np.asarray(limits.joint_velocity_max) * dt
            out = np.clip(out, previous - step, previous + step)
        if limits.joint_position_min:
            # position limits are hard: a robot observed outside them is sent to the nearest
            # limit even if that step is faster than joint_velocity_max
            out = np.clip(out, limits.joint_position_min, limits.joint_position_max)
        return out

    # -- bookkeeping ------------------------------------------------------------------------

    def _record(self, now_ns: int, kind: str, detail: str, command: np.ndarray | None = None) -> None:
        event = Intervention(now_ns, kind, detail, None if command is None else command.tolist())
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self.interventions.append(event)
            if len(self.interventions) > 10_000:
                del self.interventions[:5_000]
            repeated = kind == self._last_kind
            self._last_kind = kind
        # a stop repeated every tick is logged once at warning level, then at debug level
        LOG.log(logging.DEBUG if repeated else logging.WARNING, "safety %s: %s", kind, detail)
        if self._log_file is not None:
            self._log_file.write(json.dumps(event.__dict__) + "\n")

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"counts": dict(self.counts), "estop": self._state.estop}

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _limit_norm(vector: np.ndarray, max_norm: float) -> np.ndarray:
    """``vector`` scaled down (direction kept) so its Euclidean norm is at most ``max_norm``."""
    norm = float(np.linalg.norm(vector))
    return vector if norm <= max_norm else vector * (max_norm / norm)


def _limit_change(target: np.ndarray, previous: np.ndarray, max_step: float) -> np.ndarray:
    """``target``, or the point at distance ``max_step`` from ``previous`` towards it if farther."""
    step = target - previous
    norm = float(np.linalg.norm(step))
    return target if norm <= max_step else previous + step * (max_step / norm)
