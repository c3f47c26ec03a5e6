"""Distributed rollouts for off-policy training: actor processes feed the learner's replay.

``robokit train --algo sac ... --distributed ray --workers N`` replaces the online loop of
:class:`robokit.trainers.trainer.Trainer` (off-policy agents) with this one:

- ``N`` :class:`RolloutActor` processes each step ``rollout_envs`` copies of the env as one
  batch (one batched policy forward per step) with their own copy of the policy weights, and
  answer each request with the **whole episodes** that ended during ``rollout_chunk`` env
  steps; an unfinished episode stays in the actor until it ends.
- The learner adds those episodes to its replay (:meth:`ReplayBuffer.add_episode`), makes one
  ``agent.update`` per received transition after the warm-up (the single-process ratio), and
  publishes its policy weights every ``broadcast_every`` updates (``ray.put`` once; each actor
  loads the newest version at the start of its next request).
- Back-pressure: an actor gets its next request only while the learner owes at most
  ``max_update_lag`` updates; when the learner falls behind, actors wait instead of filling
  the replay with data of ever older policies.
- A dead actor (process killed, node lost) is replaced by a new one with a new seed; the
  episode it had not finished dies with it. Only whole episodes ever cross the network, so
  nothing half-written enters the replay.

What is reproducible and what is not: see ``docs/distributed.md``. In short, each actor's
env resets and exploration noise come from its own seed, but the order in which the learner
receives chunks and the weight version each chunk was collected with depend on timing, so
two distributed runs with one seed are not bit-identical (a one-process run is).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from robokit.data.episode import Episode

#: seed stride between actors, and between the incarnations (restarts) of one actor
ACTOR_SEED_STRIDE = 1_000
INCARNATION_SEED_STRIDE = 100_003


@dataclasses.dataclass(frozen=True)
class RolloutSpec:
    """What every rollout actor builds: the env, an agent of the learner's shape, and its batch."""

    env_id: str
    algo: str
    agent_config: Any
    obs_spec: Any  # an int (vector size) or a robokit.nets.obs_spec spec, as make_agent takes
    action_dim: int
    envs: int = 1
    seed: int = 0


def policy_weights(agent: Any) -> dict[str, np.ndarray]:
    """The acting part of ``agent`` as numpy arrays: ``agent.actor``'s state when it has one."""
    module = getattr(agent, "actor", agent)
    return {name: tensor.detach().cpu().numpy() for name, tensor in module.state_dict().items()}


def load_policy_weights(agent: Any, weights: dict[str, np.ndarray]) -> None:
    """Copy :func:`policy_weights` output into ``agent`` (same network shapes)."""
    import torch

    module = getattr(agent, "actor", agent)
    module.load_state_dict({name: torch.from_numpy(np.asarray(value)) for name, value in weights.items()})


class RolloutActor:
    """One rollout process: ``spec.envs`` envs stepped together, returning finished episodes.

    Env reset seeds and exploration noise come from ``seed``; the agent's sampling generator too.
    """

    def __init__(self, spec: RolloutSpec, seed: int) -> None:
        import torch

        from robokit.algos import make_agent
        from robokit.envs import make_env

        torch.set_num_threads(1)
        self.spec, self.rng = spec, np.random.default_rng(seed)
        self.agent = make_agent(spec.algo, spec.obs_spec, spec.action_dim, spec.agent_config, seed=seed)
        self.storable = getattr(spec.obs_spec, "storable", None)  # text parts embedded, as the learner stores
        self.envs = [make_env(spec.env_id) for _ in range(spec.envs)]
        self.version = -1
        self.open: list[dict[str, list] | None] = [None] * spec.envs  # unfinished episode per env

    def collect(self, steps: int, version: int, weights: dict | None, random_actions: bool) -> dict[str, Any]:
        """Step every env ``ceil(steps / envs)`` times; return the episodes that ended.

        Args:
            steps: env steps to take in all (spread over the envs).
            version, weights: the learner's :func:`policy_weights` and their version, loaded if
                newer than ours (None: keep ours).
            random_actions: uniform actions in [-1, 1] (the warm-up) instead of the policy's.

        Returns:
            ``episodes`` (list of :class:`Episode`), ``steps`` taken, ``version`` of the weights acted with.
        """
        if weights is not None and version > self.version:
            load_policy_weights(self.agent, weights)
            self.version = version
        finished: list[Episode] = []
        rounds = -(-steps // len(self.envs))
        for _ in range(rounds):
            finished += self._step_all(random_actions)
        return {"episodes": finished, "steps": rounds * len(self.envs), "version": self.version}

    def _step_all(self, random_actions: bool) -> list[Episode]:
        """One step of every env (one batched policy call); the episodes that ended with it."""
        obs = _stack_obs([self._current(i)["raw"] for i in range(len(self.envs))])
        if random_actions:
            actions = self.rng.uniform(-1.0, 1.0, (len(self.envs), self.spec.action_dim)).astype(np.float32)
        else:
            actions = self.agent.act(obs, deterministic=False)
        ended = []
        for i, env in enumerate(self.envs):
            next_obs, reward, terminated, truncated, info = env.step(actions[i])
            record = self.open[i]
            record["raw"] = next_obs
            record["obs"].append(next_obs if self.storable is None else self.storable(next_obs))
            record["action"].append(actions[i])
            record["reward"].append(float(reward))
            record["success"].append(bool(info.get("success", False)))
            if terminated or truncated:
                ended.append(_episode(record, bool(terminated), "success" in info))
                self.open[i] = None
        return ended

    def _current(self, i: int) -> dict[str, list]:
        """Env ``i``'s unfinished episode (``raw``: its newest observation as the env gave it, for
        acting; ``obs``: as the replay stores them), resetting the env (seed from this actor's stream) if none."""
        if self.open[i] is None:
            obs, _ = self.envs[i].reset(seed=int(self.rng.integers(2**31 - 1)))
            stored = obs if self.storable is None else self.storable(obs)
            self.open[i] = {"raw": obs, "obs": [stored], "action": [], "reward": [], "success": []}
        return self.open[i]

    def pid(self) -> int:
        import os

        return os.getpid()


def _episode(record: dict[str, list], terminated: bool, has_success: bool) -> Episode:
    """The finished episode of one env's record (the last step ends it)."""
    steps = len(record["action"])
    ends = np.zeros(steps, bool)
    term, trunc = ends.copy(), ends.copy()
    (term if terminated else trunc)[-1] = True
    infos = {"success": np.array(record["success"])} if has_success else {}
    return Episode(_stack_obs(record["obs"]), np.stack(record["action"]), np.array(record["reward"], np.float32),
                   term, trunc, infos, source="rollout actor")


def _stack_obs(observations: list) -> Any:
    """Observations of one kind stacked on a new first axis (per key for dict observations)."""
    if isinstance(observations[0], dict):
        return {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    return np.stack(observations)


class RolloutFleet:
    """``workers`` Ray actors running :class:`RolloutActor`, each with at most one request in flight.

    The learner asks idle actors for chunks (:meth:`request`), receives finished episodes
    (:meth:`receive`) and publishes weights (:meth:`publish`). A request whose actor died is
    dropped and the actor replaced (:attr:`restarts` counts them).
    """

    def __init__(self, ray: Any, spec: RolloutSpec, workers: int) -> None:
        self.ray, self.spec = ray, spec
        self.remote_cls = ray.remote(num_cpus=1, max_restarts=0)(RolloutActor)
        self.actors = [self._start(index, 0) for index in range(workers)]
        self.incarnation = [0] * workers
        self.inflight: dict[Any, int] = {}  # object ref -> actor index
        self.weights_ref: tuple[int, Any] | None = None
        self.restarts = 0

    def _start(self, index: int, incarnation: int) -> Any:
        seed = self.spec.seed + ACTOR_SEED_STRIDE * (index + 1) + INCARNATION_SEED_STRIDE * incarnation
        return self.remote_cls.remote(self.spec, seed)

    def idle(self) -> list[int]:
        busy = set(self.inflight.values())
        return [index for index in range(len(self.actors)) if index not in busy]

    def publish(self, version: int, weights: dict[str, np.ndarray]) -> None:
        """Store the weights once in the object store; every later request carries that reference."""
        self.weights_ref = (version, self.ray.put(weights))

    def request(self, index: int, steps: int, random_actions: bool) -> None:
        """Ask actor ``index`` for ``steps`` env steps (with the newest published weights)."""
        version, weights = self.weights_ref if self.weights_ref is not None else (-1, None)
        # a top-level ObjectRef argument is resolved on the actor's node (fetched once per node)
        ref = self.actors[index].collect.remote(steps, version, weights, random_actions)
        self.inflight[ref] = index

    def receive(self, timeout: float | None) -> list[dict[str, Any]]:
        """Results of the requests that finished within ``timeout`` s (None: wait for one)."""
        if not self.inflight:
            return []
        ready, _ = self.ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            index = self.inflight.pop(ref)
            try:
                results.append(self.ray.get(ref))
            except self.ray.exceptions.RayActorError:
                self._replace(index)
        return results

    def _replace(self, index: int) -> None:
        """A dead actor's request is dropped (its unfinished episodes with it); start a new one."""
        self.restarts += 1
        self.incarnation[index] += 1
        self.actors[index] = self._start(index, self.incarnation[index])

    def pending_steps(self, chunk: int) -> int:
        return chunk * len(self.inflight)

    def shutdown(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def run_distributed_online(trainer: Any) -> None:
    """The online phase of ``trainer`` (off-policy) with ``--workers`` Ray rollout actors.

    Reads the trainer's config (``scale``, ``rollout_envs``, ``rollout_chunk``,
    ``broadcast_every``, ``max_update_lag``) and advances its counters, replay, logger,
    evaluations and checkpoints as the single-process loop does.
    """
    from robokit.distributed.options import ray_session

    cfg = trainer.config
    spec = RolloutSpec(cfg.env, trainer.algo, cfg.agent, trainer.obs_spec, trainer.action_dim, cfg.rollout_envs,
                       cfg.seed)
    with ray_session(cfg.scale) as ray:
        fleet = RolloutFleet(ray, spec, cfg.scale.workers)
        try:
            _Learner(trainer, fleet).run()
        finally:
            fleet.shutdown()


class _Learner:
    """The learner side of :func:`run_distributed_online`: ingest, update, broadcast, back-pressure."""

    def __init__(self, trainer: Any, fleet: RolloutFleet) -> None:
        cfg = trainer.config
        self.trainer, self.fleet = trainer, fleet
        self.total, self.chunk = cfg.online_steps, cfg.rollout_chunk
        self.warmup = trainer.phase_cfg["warmup_steps"]
        self.random_warmup = trainer.phase_cfg["warmup_actions"] == "random"
        self.max_lag = cfg.max_update_lag if cfg.max_update_lag is not None else cfg.rollout_chunk * cfg.scale.workers
        self.updates, self.metrics = 0, {}
        self.version = 0

    @property
    def owed(self) -> int:
        """Updates the learner owes: one per env step after the warm-up, as in one process."""
        return max(0, self.trainer.counters.env_step - self.warmup) - self.updates

    def run(self) -> None:
        counters = self.trainer.counters
        self.fleet.publish(self.version, policy_weights(self.trainer.agent))
        started = time.perf_counter()
        while counters.env_step < self.total:
            self._request_chunks()
            if self.owed > 0 and self._update():
                results = self.fleet.receive(timeout=0)
            elif self.fleet.inflight:
                results = self.fleet.receive(timeout=None)
            else:  # cannot happen with a consistent config; never spin
                raise RuntimeError(f"distributed rollouts stalled at env step {counters.env_step}: nothing "
                                   f"in flight and no update possible ({self.owed} owed)")
            for result in results:
                self._ingest(result)
        while self.owed > 0 and self._update():  # the updates of the last chunk's transitions
            pass
        seconds = time.perf_counter() - started
        self.trainer.summary.update(rollout_actors=len(self.fleet.actors), actor_restarts=self.fleet.restarts,
                                    learner_updates=self.updates, weight_versions=self.version,
                                    updates_per_s=round(self.updates / max(seconds, 1e-9), 1))

    def _request_chunks(self) -> None:
        """Give idle actors a chunk each, unless enough steps are on the way or the learner lags."""
        counters = self.trainer.counters
        for index in self.fleet.idle():
            ahead = counters.env_step + self.fleet.pending_steps(self.chunk)
            if ahead >= self.total or self.owed > self.max_lag:
                return
            self.fleet.request(index, self.chunk, random_actions=self.random_warmup and ahead < self.warmup)

    def _update(self) -> bool:
        """One ``agent.update``; publishes the weights every ``broadcast_every`` updates."""
        from robokit.data.batch import to_torch

        batch = self.trainer._sample_online_batch()
        if batch is None:
            return False
        agent, cfg = self.trainer.agent, self.trainer.config
        agent.set_phase("online")
        self.metrics = agent.update(to_torch(batch))
        self.updates += 1
        if self.updates % cfg.broadcast_every == 0:
            self.version += 1
            self.fleet.publish(self.version, policy_weights(agent))
        if self.updates % cfg.log_every == 0:
            self.trainer.logger.log({**self.metrics, "train/phase": 2, "train/updates": self.updates,
                                     "train/weight_version": self.version, "train/actor_restarts": self.fleet.restarts,
                                     "train/env_steps": self.trainer.counters.env_step},
                                    self.trainer.counters.step)
        return True

    def _ingest(self, result: dict[str, Any]) -> None:
        """Add a chunk's whole episodes to the replay; log them, evaluate and checkpoint on schedule."""
        trainer = self.trainer
        counters = trainer.counters
        for episode in result["episodes"]:
            trainer.online_buffer.add_episode(trainer._scaled(episode))
            counters.env_step += len(episode)
            counters.episodes += 1
            row = {"train/episode_return": episode.total_return, "train/episode_length": len(episode),
                   "train/episodes": counters.episodes, "train/env_steps": counters.env_step,
                   "train/policy_version": result["version"]}
            if "success" in episode.infos:
                row["train/success"] = float(episode.infos["success"].any())
            trainer.logger.log(row, counters.step)
        trainer._maybe_evaluate()
        if counters.step >= counters.next_checkpoint:
            trainer._checkpoint()
