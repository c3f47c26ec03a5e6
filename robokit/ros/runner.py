"""Live policy runner: subscribe to observations, run a policy at a fixed rate, publish safe commands.

Configured by a small YAML file (see ``docs/ros.md`` and ``ros_bridge/config/example.yaml``)::

    rate_hz: 20
    trigger: timer              # timer: step every 1/rate_hz s; observation: step on each new observation
    observations:
      - {key: points, topic: /points, type: pointcloud2, fields: [x, y, z], min_points: 16}
      - {key: joints, topic: /joint_states, type: joint_state, joints: [j1, j2], parts: [position]}
    command: {topic: /cmd_vel, type: twist, axes: [vx, wz]}
    estop_topic: /robokit/estop          # std_msgs/Bool; true latches the e-stop
    estop_reset_topic: null              # optional std_msgs/Bool topic that releases it
    # trigger: observation steps once per new observation and, while none arrives for longer
    # than safety.watchdog_ms, publishes stops at rate_hz
    safety: {max_linear_speed: 0.5, max_angular_speed: 1.5, watchdog_ms: 250}

The policy is any object with ``act(obs, deterministic=True)``; robokit checkpoints load
through ``robokit.algos.load_agent``. The observation handed to the policy is the single
observation's array when there is one ((N, C) float32 points or an (O,) float32 vector),
the concatenation when all are vectors, and a dict ``key -> array`` otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robokit.ros import convert
from robokit.ros.config import (
    TWIST_AXES,
    ObservationSpec,
    RunnerConfig,
    decode_observation,
    expected_size,
)
from robokit.ros.safety import SafetyLayer

LOG = logging.getLogger("robokit.ros.runner")

@dataclass
class _Latest:
    values: np.ndarray
    stamp_ns: int | None
    receive_ns: int
    used: bool = False


class PolicyRunner:
    """Runs ``policy`` on live observations from ``transport`` and publishes safe commands.

    Every command goes through :class:`SafetyLayer`. Counters: ``commands_sent``,
    ``policy_steps``, ``safety.counts`` (drops, clamps, stops).
    """

    def __init__(self, policy: Any, transport: Any, config: RunnerConfig,
                 log_path: str | Path | None = None) -> None:
        self.policy, self.transport, self.config = policy, transport, config
        self.safety = SafetyLayer(config.safety, config.command.kind, log_path,
                                  period_s=1.0 / config.rate_hz)
        self.commands_sent = 0
        self.policy_steps = 0
        self._latest: dict[str, _Latest] = {}
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._last_publish_ns = time.time_ns()
        self._step_lock = threading.Lock()
        self._stop = threading.Event()
        self._publish = transport.publisher(config.command.topic, config.command.msgtype)
        for spec in config.observations:
            transport.subscribe(spec.topic, spec.msgtype,
                                lambda msg, now, spec=spec: self.on_observation(spec, msg, now))
        if config.estop_topic:
            transport.subscribe(config.estop_topic, "std_msgs/msg/Bool", self._on_estop)
        if config.estop_reset_topic:
            transport.subscribe(config.estop_reset_topic, "std_msgs/msg/Bool", self._on_estop_reset)

    # -- incoming ---------------------------------------------------------------------------

    def on_observation(self, spec: ObservationSpec, msg: Any, receive_ns: int) -> None:
        """Decode, screen and store one observation message (called from transport threads)."""
        try:
            values = decode_observation(spec, msg)
            stamp_ns = convert.header_stamp_ns(msg)
        except (convert.MessageError, ValueError) as err:
            self.safety.record_dropped(receive_ns, spec.key, "malformed", str(err))
            return
        if not self.safety.screen_observation(spec.key, values, stamp_ns, receive_ns,
                                              expected_size(spec), spec.min_points):
            return
        with self._lock:
            self._latest[spec.key] = _Latest(values, stamp_ns, receive_ns)
            complete = len(self._latest) == len(self.config.observations)
        if complete:
            self.safety.observation_accepted(receive_ns, self._observed_command_joints())
            if self.config.trigger == "observation" and self._running.is_set():
                # step right here in the transport's thread: no hand-off to the loop thread
                # (a thread switch can cost up to Python's 5 ms GIL switch interval)
                self.step()

    def _observed_command_joints(self) -> np.ndarray | None:
        """Observed positions (J,) of the commanded joints, in command order, if observed.

        The safety layer holds these before the first command and rate-limits from them.
        """
        wanted = self.config.command.joints
        if self.config.command.kind != "joint_position":
            return None
        for spec in self.config.observations:
            if spec.type != "joint_state" or "position" not in spec.parts or spec.key not in self._latest:
                continue
            values = self._latest[spec.key].values
            count = len(values) // len(spec.parts)
            start = spec.parts.index("position") * count
            positions = values[start:start + count]
            names = spec.joints or wanted
            if all(name in names for name in wanted) and len(names) == count:
                return np.array([positions[names.index(n)] for n in wanted], dtype=np.float64)
        return None

    def _on_estop(self, msg: Any, receive_ns: int) -> None:
        if bool(convert.scalar_of(msg)):
            self.safety.trigger_estop(receive_ns, self.config.estop_topic or "")
            self.step(receive_ns)   # publish the stop now, not at the next tick

    def _on_estop_reset(self, msg: Any, receive_ns: int) -> None:
        if bool(convert.scalar_of(msg)):
            self.safety.reset_estop(receive_ns, self.config.estop_reset_topic or "")

    # -- control step -----------------------------------------------------------------------

    def _observation_for_policy(self) -> tuple[Any, int | None] | None:
        with self._lock:
            if len(self._latest) < len(self.config.observations):
                return None
            latest = [self._latest[s.key] for s in self.config.observations]
            for item in latest:
                item.used = True
        stamp = max((x.stamp_ns for x in latest if x.stamp_ns is not None), default=None)
        arrays = [x.values for x in latest]
        if len(arrays) == 1:
            return arrays[0], stamp
        if all(a.ndim == 1 for a in arrays):
            return np.concatenate(arrays), stamp
        return {s.key: a for s, a in zip(self.config.observations, arrays, strict=True)}, stamp

    def _action_to_command(self, action: Any) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64).ravel()
        if self.config.command.kind == "joint_position":
            return action
        axes = self.config.command.axes
        if action.shape != (len(axes),):
            raise ValueError(f"policy returned {action.size} values for command axes {list(axes)}")
        twist = np.zeros(6)
        twist[[TWIST_AXES.index(a) for a in axes]] = action
        return twist

    def step(self, now_ns: int | None = None, run_policy: bool = True) -> np.ndarray:
        """One control tick: policy (if a complete observation exists), safety, publish.

        A TwistStamped command carries the stamp of the observation it was computed from;
        a stop carries the current time.
        """
        with self._step_lock:   # the loop, e-stop and observation threads may all step
            return self._step_locked(now_ns, run_policy)

    def _step_locked(self, now_ns: int | None, run_policy: bool) -> np.ndarray:
        observation = self._observation_for_policy() if run_policy else None
        command, error, stamp = None, None, None
        if observation is not None and not self.safety.estopped:
            obs, stamp = observation
            try:
                command = self._action_to_command(self.policy.act(obs, deterministic=True))
                self.policy_steps += 1
            except Exception as err:  # noqa: BLE001 - any policy failure must become a stop
                error = err
        # the safety checks use the time after the policy ran (it may have been slow)
        now_ns = time.time_ns() if now_ns is None else now_ns
        try:
            safe, stopped = self.safety.filter(command, now_ns, error)
        except RuntimeError as err:   # joint hold before any joint position is known
            LOG.warning("no command published: %s", err)
            return np.zeros(0)
        self._publish_command(safe, None if stopped else stamp)
        return safe

    def _publish_command(self, command: np.ndarray, stamp_ns: int | None) -> None:
        spec = self.config.command
        if spec.type == "twist":
            msg: Any = convert.array_to_twist(command)
        elif spec.type == "twist_stamped":
            # the stamp of the observation the command was computed from (latency tracing)
            msg = convert.array_to_twist_stamped(command, stamp_ns=stamp_ns or time.time_ns(),
                                                 frame_id=spec.frame_id)
        else:
            msg = convert.arrays_to_joint_state(spec.joints, command, stamp_ns=time.time_ns(),
                                                frame_id=spec.frame_id)
        self._publish(msg)
        self.commands_sent += 1
        self._last_publish_ns = time.time_ns()

    def _guard_stuck_steps(self) -> None:
        """Publish a stop when a step (a hung policy) has held the step lock past the watchdog.

        Runs in its own thread: the loop and transport threads may both be blocked behind the
        stuck step, so only this thread can still stop the robot.
        """
        limit_ns = self.config.safety.watchdog_ms * 1e6
        while not self._stop.wait(self.config.safety.watchdog_ms / 2e3) and self._running.is_set():
            stuck = self._step_lock.locked() and time.time_ns() - self._last_publish_ns > limit_ns
            if stuck:
                stop = self.safety.emergency_stop(time.time_ns(), "stop_step_timeout",
                                                  f"no command for > {self.config.safety.watchdog_ms:g} ms "
                                                  "while a policy step is still running")
                if stop is not None:
                    self._publish_command(stop, None)

    # -- loop -------------------------------------------------------------------------------

    def run(self, duration_s: float | None = None) -> dict[str, Any]:
        """Step at ``rate_hz`` (or on each new observation) until ``duration_s``, :meth:`stop`
        or transport shutdown; returns :meth:`summary`."""
        period = 1.0 / self.config.rate_hz
        start = time.monotonic()
        next_tick = start
        self._last_publish_ns = time.time_ns()
        self._running.set()
        guard = threading.Thread(target=self._guard_stuck_steps, name="robokit-step-guard", daemon=True)
        guard.start()
        try:
            self._loop(period, start, next_tick, duration_s)
        finally:
            self._running.clear()
        return self.summary()

    def _loop(self, period: float, start: float, next_tick: float, duration_s: float | None) -> None:
        while not self._stop.is_set() and not self.transport.is_shutdown():
            if duration_s is not None and time.monotonic() - start >= duration_s:
                break
            if self.config.trigger == "observation":
                # observations step the policy themselves (on_observation); this loop only
                # publishes stops at the rate while none arrives within the watchdog time
                self._stop.wait(period)
                if self.safety.observation_age_ms(time.time_ns()) > self.config.safety.watchdog_ms:
                    self.step(run_policy=False)
            else:
                self.step()
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay < 0:
                    next_tick = time.monotonic()   # overran: do not burst to catch up
                else:
                    self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict[str, Any]:
        return {"commands_sent": self.commands_sent, "policy_steps": self.policy_steps,
                **self.safety.summary()}

    def close(self) -> None:
        self.safety.close()


def write_summary(summary: dict[str, Any], path: str | Path) -> None:
    from robokit.core.atomic import atomic_write_text

    atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
