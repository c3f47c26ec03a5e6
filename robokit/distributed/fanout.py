"""Ordered map of independent tasks, in this process or over Ray worker actors.

A fan-out is a ``setup`` that builds per-worker state once (load a checkpoint, make an env,
read a test split) and a ``task(state, item) -> result`` that must depend only on ``state``
and ``item`` (its seed comes from the item, never from a stream shared between items). Then
the results are the same whichever worker ran which item, and :func:`fan_out` returns them
in the order of ``items`` both in one process and on Ray: the single-process command and the
Ray command gather the very same list into their tables, JSON and plots.

On Ray, ``workers`` actors each run ``setup`` once; :class:`ray.util.ActorPool` hands the next
item to whichever actor is free (load balancing) and yields results in submission order. What
crosses the network per item: the pickled item and its pickled result (plus, once per actor,
``setup``'s arguments), never the per-worker state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from robokit.distributed.options import DistributedOptions, ray_session

State = TypeVar("State")
Item = TypeVar("Item")
Result = TypeVar("Result")


def fan_out(setup: Callable[..., State], setup_args: tuple, task: Callable[[State, Item], Result],
            items: Sequence[Item], options: DistributedOptions | None = None,
            progress: Callable[[Result], None] | None = None,
            teardown: Callable[[State], None] | None = None, timings: dict | None = None) -> list[Result]:
    """``[task(setup(*setup_args), item) for item in items]``, on Ray when ``options`` ask for it.

    Args:
        setup: builds the per-worker state; a module-level function (pickled by reference).
        setup_args: its arguments (sent once to each worker).
        task: ``task(state, item) -> result``; module-level, results picklable.
        items: the independent work items, in output order.
        options: ``--distributed/--address/--workers``; None or 'none' runs here.
        progress: called with each result as it arrives (in order).
        teardown: releases the state (closes an env) when done; a Ray worker runs it before it exits.
        timings: when given, filled with ``setup_s`` (until every worker's state is built) and
            ``tasks_s`` (the tasks after that), wall-clock seconds (benchmarks/distributed.py).
    """
    clock = _Clock(timings)
    if options is None or not options.enabled:
        state = setup(*setup_args)
        clock.lap("setup_s")
        try:
            return [_tick(task(state, item), progress) for item in items]
        finally:
            clock.lap("tasks_s")
            if teardown is not None:
                teardown(state)
    with ray_session(options) as ray:
        from ray.util import ActorPool

        worker_cls = ray.remote(num_cpus=1)(_Worker)
        count = max(1, min(options.workers, len(items)))
        actors = [worker_cls.remote(setup, setup_args, task, teardown) for _ in range(count)]
        try:
            if timings is not None:
                ray.get([actor.pid.remote() for actor in actors])  # every worker has built its state
            clock.lap("setup_s")
            pool = ActorPool(actors)
            results = [_tick(r, progress) for r in pool.map(lambda actor, item: actor.run.remote(item), list(items))]
            clock.lap("tasks_s")
            return results
        except ray.exceptions.RayTaskError as err:
            raise remote_cause(err) from None  # bad input on a worker reads as it does in one process
        finally:
            ray.wait([actor.close.remote() for actor in actors], num_returns=len(actors), timeout=30)
            for actor in actors:
                ray.kill(actor)


class _Clock:
    """Wall-clock laps into an optional dict."""

    def __init__(self, timings: dict | None) -> None:
        import time

        self.timings, self.now, self.last = timings, time.perf_counter, time.perf_counter()

    def lap(self, key: str) -> None:
        if self.timings is not None:
            now = self.now()
            self.timings[key] = now - self.last
            self.last = now


def given(state: State) -> State:
    """The ``setup`` of workers that are handed their state (sent once to each worker)."""
    return state


def remote_cause(err: BaseException) -> BaseException:
    """The exception a Ray task raised (``RayTaskError.cause``), or ``err`` itself."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, Exception) else err


def _tick(result: Result, progress: Callable[[Result], None] | None) -> Result:
    if progress is not None:
        progress(result)
    return result


class _Worker:
    """A Ray actor holding one ``setup`` state and running tasks on it."""

    def __init__(self, setup: Callable[..., Any], setup_args: tuple, task: Callable[[Any, Any], Any],
                 teardown: Callable[[Any], None] | None) -> None:
        import torch

        torch.set_num_threads(1)  # one CPU per actor (Ray reserves num_cpus=1)
        self.task, self.teardown = task, teardown
        self.state, self.setup_error = None, None
        try:
            self.state = setup(*setup_args)
        except Exception as err:  # raised again by run(), where the driver sees it as a task error
            self.setup_error = err

    def run(self, item: Any) -> Any:
        if self.setup_error is not None:
            raise self.setup_error
        return self.task(self.state, item)

    def close(self) -> None:
        if self.teardown is not None and self.setup_error is None:
            self.teardown(self.state)

    def pid(self) -> int:
        import os

        return os.getpid()
