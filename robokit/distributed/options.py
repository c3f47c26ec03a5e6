"""``--distributed ray [--address auto|HOST:PORT] [--workers N]`` and the Ray session behind it.

Every command that can fan out embeds :class:`DistributedOptions` in its config with
``Annotated[DistributedOptions, tyro.conf.OmitArgPrefixes]``, so the three flags read the
same everywhere. :func:`ray_session` starts (or joins) Ray only when asked to.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Literal

import tyro

from robokit.core.config import ConfigError
from robokit.optional import require

#: the pip extra that provides ray
EXTRA = "distributed"


@dataclass(frozen=True)
class DistributedOptions:
    """Where the independent tasks of a command run."""

    distributed: Literal["none", "ray"] = "none"
    """'none': one process (the default, needs no Ray); 'ray': fan out over Ray workers"""
    address: str | None = None
    """Ray cluster to join: 'auto' (a cluster started with `ray start` on this machine) or
    HOST:PORT; default: start a private local Ray with --workers CPUs"""
    workers: int = 2
    """worker processes (Ray actors) to fan out over"""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.address is not None and self.distributed != "ray":
            raise ConfigError("--address needs --distributed ray")
        if self.enabled:
            import_ray()  # at parse time, before a command writes anything: name the extra to install

    @property
    def enabled(self) -> bool:
        return self.distributed == "ray"


def check_fan_out(options: DistributedOptions | None, num_envs: int) -> None:
    """Refuse ``--distributed ray`` with ``--num-envs > 1``: each Ray task is one episode in one env."""
    if options is not None and options.enabled and num_envs > 1:
        raise ConfigError("--distributed ray runs one episode per task in one env; use it with --num-envs 1")


#: the annotation a config uses to embed the options as flat flags
DistributedField = Annotated[DistributedOptions, tyro.conf.OmitArgPrefixes]


def import_ray() -> ModuleType:
    """``import ray``, or an ImportError (a CLI turns it into exit 2) naming the extra to install."""
    return require("ray", EXTRA)


@contextlib.contextmanager
def ray_session(options: DistributedOptions) -> Iterator[ModuleType]:
    """Yield the ``ray`` module with a connected runtime; shut down only what this call started.

    A runtime that is already up (a test fixture, a notebook, a sweep trial) is reused as is.
    Without ``--address`` a private local Ray with ``workers`` CPUs is started (no dashboard).
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": bool(os.environ.get("ROBOKIT_RAY_LOGS"))}
        if options.address is None:
            kwargs["num_cpus"] = options.workers
        else:
            kwargs["address"] = options.address
        try:
            ray.init(**kwargs)
        except ConnectionError as err:
            raise ConfigError(f"--address {options.address}: cannot join a Ray cluster there ({err})") from err
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
