"""RL algorithms: one config dataclass + one agent class per algorithm, and ``load_agent``.

Registered names (``ALGOS``): sac, cql, calql, iql, rlpd, wsrl, robofume, bc, ppo, dt, rcsl, doc, unio4. Each entry is
``(ConfigClass, AgentClass)``; the trainer and the CLI look algorithms up here.
"""

from __future__ import annotations

import os
from typing import Any

from robokit.algos.base import Agent, PhaseConfig
from robokit.algos.bc import BC, BCConfig
from robokit.algos.cql import (
    CQL,
    WSRL,
    CalQL,
    CalQLConfig,
    CQLConfig,
    RoboFuME,
    RoboFuMEConfig,
    WSRLConfig,
)
from robokit.algos.doc import DoC, DoCConfig
from robokit.algos.dt import DT, DTConfig
from robokit.algos.iql import IQL, IQLConfig
from robokit.algos.ppo import PPO, PPOConfig
from robokit.algos.rcsl import RCSL, RCSLConfig
from robokit.algos.sac import RLPD, SAC, RLPDConfig, SACConfig
from robokit.algos.unio4 import UniO4, UniO4Config
from robokit.core.registry import Registry
from robokit.nets.obs_spec import ObsSpec, VectorSpec, spec_from_dict

#: name -> (config class, agent class)
ALGOS: Registry[tuple[type, type[Agent]]] = Registry("algorithm")
ALGOS.register("sac", (SACConfig, SAC))
ALGOS.register("cql", (CQLConfig, CQL))
ALGOS.register("calql", (CalQLConfig, CalQL))
ALGOS.register("iql", (IQLConfig, IQL))
ALGOS.register("rlpd", (RLPDConfig, RLPD))
ALGOS.register("wsrl", (WSRLConfig, WSRL))
ALGOS.register("robofume", (RoboFuMEConfig, RoboFuME))
ALGOS.register("bc", (BCConfig, BC))
ALGOS.register("ppo", (PPOConfig, PPO))
ALGOS.register("dt", (DTConfig, DT))
ALGOS.register("rcsl", (RCSLConfig, RCSL))
ALGOS.register("doc", (DoCConfig, DoC))
ALGOS.register("unio4", (UniO4Config, UniO4))


def make_agent(name: str, obs_dim: int | ObsSpec, action_dim: int, config: Any = None, seed: int = 0) -> Agent:
    """Build the agent registered as ``name`` (default config when ``config`` is None) for
    observations ``obs_dim``: an observation spec (:mod:`robokit.nets.obs_spec`) or an int, the
    size of vector observations."""
    config_cls, agent_cls = ALGOS.get(name)
    if isinstance(obs_dim, VectorSpec):  # vector-only agents (DT, DoC, Uni-O4) size their networks by an int
        obs_dim = obs_dim.dim
    return agent_cls(config if config is not None else config_cls(), obs_dim, action_dim, seed)


def agent_from_state(state: dict[str, Any]) -> Agent:
    """Rebuild an agent from :meth:`Agent.training_state` output."""
    from robokit.core.config import from_dict

    for key in ("algo", "config", "obs_dim", "action_dim", "modules"):
        if key not in state:
            raise KeyError(f"agent state is missing '{key}'")
    config_cls, _ = ALGOS.get(state["algo"])
    obs = spec_from_dict(state["obs_spec"]) if "obs_spec" in state else state["obs_dim"]  # older files: vectors
    agent = make_agent(state["algo"], obs, state["action_dim"], from_dict(config_cls, state["config"]))
    agent.load_training_state(state)
    return agent


def load_agent(checkpoint_path: str | os.PathLike) -> Agent:
    """Load any robokit RL checkpoint (a trainer checkpoint or ``save_agent`` file) for acting.

    Returns an agent in eval mode with ``act(obs, deterministic)``, ``observation_shape``
    and ``action_dim``.

    Raises:
        CheckpointError: the file is missing/damaged; KeyError naming the file if it holds no agent.
    """
    from robokit.core.checkpoint import load_checkpoint

    payload = load_checkpoint(checkpoint_path)
    if "agent" not in payload:
        raise KeyError(f"{checkpoint_path}: checkpoint has no 'agent' entry (keys {sorted(payload)})")
    try:
        agent = agent_from_state(payload["agent"])
    except KeyError as err:
        raise KeyError(f"{checkpoint_path}: {err}") from err
    return agent.eval()


def save_agent(agent: Agent, path: str | os.PathLike) -> os.PathLike:
    """Write ``agent`` (weights, optimizers, RNG) to ``path`` atomically."""
    from robokit.core.checkpoint import save_checkpoint

    return save_checkpoint(path, {"agent": agent.training_state()})


__all__ = [
    "ALGOS", "Agent", "PhaseConfig", "make_agent", "agent_from_state", "load_agent", "save_agent",
    "SAC", "SACConfig", "RLPD", "RLPDConfig", "CQL", "CQLConfig", "CalQL", "CalQLConfig",
    "WSRL", "WSRLConfig", "RoboFuME", "RoboFuMEConfig", "IQL", "IQLConfig", "BC", "BCConfig", "PPO", "PPOConfig",
    "DT", "DTConfig", "RCSL", "RCSLConfig", "DoC", "DoCConfig", "UniO4", "UniO4Config",
]
