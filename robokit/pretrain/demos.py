"""Expert demonstrations of the hidden-context envs, as robokit episodes.

:func:`make_demos` rolls the scripted expert of ``robokit/PointMassGoal-v0`` or
``robokit/PushHidden-v0`` (:mod:`robokit.envs.hidden_context`) for chosen contexts and returns
:class:`~robokit.data.Episode` objects (T = steps of the episode):

- ``observations``: ``{"image": (T+1, H, W, 3) uint8, "state": (T+1, S) float32}``: the frames the
  policy sees, and the privileged state (goal included) for the state-based BC reference;
- ``actions`` ``(T, 2)`` float32 (the expert's, noise included), ``rewards`` ``(T,)`` (1.0 on the
  step of success), ``terminated`` (success) / ``truncated`` (time limit);
- ``infos``: ``success`` ``(T,)`` bool, ``context`` ``(T,)`` int64;
- ``task``: ``"<env id>:context-<k>"`` (:func:`context_task`), so a replay buffer keeps the context
  per transition (``buffer.task_sampler(...)`` draws from chosen contexts).

:func:`save_demos` writes them in robokit's replay format (one ``.npz``, atomic, no pickles) and
:func:`load_demos` reads them back (infos are rebuilt from rewards and tasks, which the replay
format stores). :func:`split_by_context` separates the pretraining corpus from held-out contexts.

Seeding: episode ``j`` of context ``k`` resets with a seed derived from ``(seed, k, j)`` (numpy's
SeedSequence), and its expert noise comes from a generator seeded by ``(seed, k, j, 1)``; so the
same call gives the same episodes, and adding contexts or episodes leaves the others unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robokit.data.episode import Episode
from robokit.data.errors import DataError

CONTEXT_MARK = ":context-"

#: hidden-context env ids make_demos accepts (the keys of robokit.envs.hidden_context.FAMILIES)
DEMO_ENVS = ("robokit/PointMassGoal-v0", "robokit/PushHidden-v0")


def context_task(env_id: str, context: int) -> str:
    """The task name of a demo of ``env_id`` in ``context``, e.g. ``robokit/PointMassGoal-v0:context-3``."""
    return f"{env_id}{CONTEXT_MARK}{int(context)}"


def parse_task(task: str | None, source: str = "episode") -> tuple[str, int]:
    """``(env id, context)`` from a demo task name.

    Raises:
        DataError: naming ``source`` when the task is not ``<env id>:context-<k>``.
    """
    env_id, mark, number = (task or "").rpartition(CONTEXT_MARK)
    if not mark or not env_id or not number.isdigit():
        raise DataError(f"{source}: task {task!r} is not a hidden-context demo ('<env id>{CONTEXT_MARK}<k>')")
    return env_id, int(number)


def episode_context(episode: Episode) -> int:
    """The context index of a demo episode (from its task name)."""
    return parse_task(episode.task)[1]


def episode_seeds(seed: int, context: int, index: int) -> tuple[int, int]:
    """(reset seed, expert-noise seed) of episode ``index`` of ``context`` under ``seed``."""
    reset, noise = np.random.SeedSequence([seed, context, index]).generate_state(2)
    return int(reset), int(noise)


def rollout_expert(env: Any, env_id: str, context: int, seed: int, noise: float = 0.0,
                   noise_seed: int | None = None) -> Episode:
    """One episode of the scripted expert in ``env`` (a gym.make'd hidden-context env) in ``context``."""
    from robokit.envs.hidden_context import expert_policy

    act = expert_policy(env, noise, noise_seed)
    obs, info = env.reset(seed=seed, options={"context": context})
    images, states, actions, rewards, successes = [obs], [info["state"]], [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        images.append(obs)
        states.append(info["state"])
        actions.append(action)
        rewards.append(reward)
        successes.append(info["success"])
    steps = len(actions)
    ends = np.zeros(steps, bool)
    return Episode({"image": np.stack(images), "state": np.stack(states)}, np.stack(actions),
                   np.asarray(rewards, np.float32), _last(ends, terminated), _last(ends, truncated),
                   {"success": np.asarray(successes, bool), "context": np.full(steps, context, np.int64)},
                   source=f"{env_id} context {context} seed {seed}", task=context_task(env_id, context))


def _last(flags: np.ndarray, value: bool) -> np.ndarray:
    out = flags.copy()
    out[-1] = bool(value)
    return out


def make_demos(env_id: str, contexts: Sequence[int], episodes_per_context: int, seed: int = 0,
               noise: float = 0.0, progress: bool = False, show_goal: bool = False) -> list[Episode]:
    """Expert episodes: ``episodes_per_context`` for each of ``contexts``, context-major order.

    Args:
        env_id: one of :data:`DEMO_ENVS`.
        contexts: context indices (each in ``[0, K)``; no repeats).
        episodes_per_context: episodes per context (>= 1).
        seed: base seed (see the module docstring).
        noise: standard deviation of Gaussian noise added to the expert's actions (>= 0).
        progress: show a progress bar.
        show_goal: render the goal marker (debug data only: the context becomes visible).

    Raises:
        ValueError: naming the bad argument (unknown env, unknown or repeated context, counts).
    """
    import gymnasium as gym
    from tqdm import tqdm

    import robokit.envs  # noqa: F401  (registers the ids)

    contexts = _check_request(env_id, contexts, episodes_per_context, noise)
    env = gym.make(env_id, show_goal=show_goal)
    try:
        for context in contexts:
            env.unwrapped.check_context(context)
        episodes = []
        with tqdm(total=len(contexts) * episodes_per_context, desc=f"demos {env_id}", unit="ep",
                  disable=not progress) as bar:
            for context in contexts:
                for index in range(episodes_per_context):
                    reset_seed, noise_seed = episode_seeds(seed, context, index)
                    episodes.append(rollout_expert(env, env_id, context, reset_seed, noise, noise_seed))
                    bar.update(1)
    finally:
        env.close()
    return episodes


def _check_request(env_id: str, contexts: Sequence[int], episodes_per_context: int, noise: float) -> list[int]:
    if env_id not in DEMO_ENVS:
        raise ValueError(f"--env '{env_id}' has no scripted expert; choose from {list(DEMO_ENVS)}")
    picked = [int(c) for c in contexts]
    if not picked:
        raise ValueError("--contexts is empty; name at least one context")
    repeated = sorted({c for c in picked if picked.count(c) > 1})
    if repeated:
        raise ValueError(f"--contexts repeats context(s) {repeated}")
    if not (isinstance(episodes_per_context, int) and episodes_per_context >= 1):
        raise ValueError(f"--episodes-per-context must be a positive integer, got {episodes_per_context!r}")
    if not noise >= 0:
        raise ValueError(f"--noise must be >= 0, got {noise}")
    return picked


def split_by_context(episodes: Iterable[Episode], held_out: Iterable[int]) -> tuple[list[Episode], list[Episode]]:
    """``(corpus, held-out)``: the episodes whose context is not / is in ``held_out``."""
    held = {int(c) for c in held_out}
    corpus, kept = [], []
    for episode in episodes:
        (kept if episode_context(episode) in held else corpus).append(episode)
    return corpus, kept


def success_rate(episodes: Sequence[Episode]) -> float:
    """Fraction of episodes that ended in success (terminated)."""
    if not episodes:
        raise ValueError("success_rate: no episodes")
    return float(np.mean([episode.is_terminated for episode in episodes]))


def save_demos(episodes: Sequence[Episode], path: str | Path, overwrite: bool = False) -> Path:
    """Write demo episodes to ``path`` (a ``.npz``, robokit's replay format) atomically; returns it.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: ``path`` is not a ``.npz`` file name, no episodes, an episode is not a demo, or
            episodes differ in frame size or state size (a DataError naming the episode).
    """
    from robokit.data.formats import save_episodes

    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"--out {path}: demos are written in robokit's replay format; give a .npz path")
    if not episodes:
        raise ValueError(f"--out {path}: no episodes to write")
    first = episodes[0].observations
    for i, episode in enumerate(episodes):
        _check_demo(episode, f"episode {i}")
        for key in ("image", "state"):
            shape, expected = episode.observations[key].shape[1:], first[key].shape[1:]
            if shape != expected:
                raise DataError(f"episode {i}: observations/{key} per step is {shape}, episode 0's is {expected}; "
                                f"demos of one file share one frame size and state size")
    return save_episodes(list(episodes), path, fmt="replay", overwrite=overwrite)


def load_demos(path: str | Path) -> list[Episode]:
    """Demo episodes from a file written by :func:`save_demos` (infos rebuilt: ``success`` from the
    rewards, ``context`` from the task name).

    Raises:
        DataError: naming the file when it is missing, corrupt, or holds something else than demos.
    """
    from robokit.data.formats import load_episodes

    path = Path(path)
    episodes = load_episodes(path, "replay")
    if not episodes:
        raise DataError(f"{path}: no episodes")
    out = []
    for i, episode in enumerate(episodes):
        _check_demo(episode, f"{path}: episode {i}")
        context = episode_context(episode)
        infos = {"success": episode.rewards > 0, "context": np.full(len(episode), context, np.int64)}
        out.append(Episode(episode.observations, episode.actions, episode.rewards, episode.terminated,
                           episode.truncated, infos, source=str(path), task=episode.task))
    return out


def _check_demo(episode: Episode, source: str) -> None:
    """DataError naming ``source`` unless ``episode`` has demo observations and a context task."""
    obs = episode.observations
    if not isinstance(obs, dict) or set(obs) != {"image", "state"}:
        keys = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise DataError(f"{source}: observations {keys}, expected a dict with 'image' and 'state'")
    image = obs["image"]
    if image.dtype != np.uint8 or image.ndim != 4 or image.shape[-1] != 3:
        raise DataError(f"{source}: observations/image is {image.shape} {image.dtype}, expected (T+1, H, W, 3) uint8")
    parse_task(episode.task, source)


# ---------------------------------------------------------------------------------------- CLI
@dataclasses.dataclass(frozen=True)
class MakeDemosConfig:
    """Roll the scripted expert of a hidden-context env and write its episodes (robokit replay .npz)."""

    out: Path
    """.npz file to write (robokit replay format)."""
    env: str = "robokit/PointMassGoal-v0"
    """hidden-context env id: robokit/PointMassGoal-v0 or robokit/PushHidden-v0."""
    contexts: str = "all"
    """contexts to demonstrate: 'all', a list '0,1,5' or a range '0-10' (inclusive)."""
    held_out: str = ""
    """contexts to leave out of --contexts (e.g. the fine-tuning context), same syntax."""
    episodes_per_context: int = 10
    """episodes per context."""
    seed: int = 0
    """base seed (episode j of context k resets with a seed derived from (seed, k, j))."""
    noise: float = 0.0
    """standard deviation of Gaussian noise added to the expert's actions."""
    overwrite: bool = False
    """replace --out if it exists (only after the new file is complete)."""


def parse_contexts(text: str, num_contexts: int, flag: str = "--contexts") -> list[int]:
    """Context indices from ``'all'``, ``'0,1,5'``, ``'0-10'`` (inclusive) or ``''`` (none).

    Raises:
        ValueError: naming ``flag`` and the bad item or an index outside ``[0, num_contexts)``.
    """
    text = text.strip()
    if text == "all":
        return list(range(num_contexts))
    picked: list[int] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, dash, last = item.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{flag}: cannot read {item!r}; use 'all', '0,1,5' or '0-10'")
        picked += list(range(int(first), int(last) + 1)) if dash else [int(first)]
    outside = [c for c in picked if c >= num_contexts]
    if outside:
        raise ValueError(f"{flag}: context {outside[0]} does not exist; contexts are 0..{num_contexts - 1}")
    return picked


def make_demos_main(argv: Sequence[str] | None) -> int:
    """Entry point of ``robokit pretrain make-demos`` (the one CLI error convention)."""
    from robokit.core.cli_errors import run_command

    return run_command("robokit pretrain make-demos", argv, _make_demos_cli)


def _make_demos_cli(argv: list[str]) -> int:
    from robokit.core.config import check_ranges, parse

    cfg = parse(MakeDemosConfig, argv, prog="robokit pretrain make-demos")
    check_ranges(cfg, positive=("episodes_per_context",), non_negative=("noise",))
    if cfg.out.suffix != ".npz":
        raise ValueError(f"--out {cfg.out}: demos are written in robokit's replay format; give a .npz path")
    if cfg.out.exists() and not cfg.overwrite:
        raise FileExistsError(f"--out {cfg.out} already exists; pass --overwrite to replace it")
    if cfg.env not in DEMO_ENVS:
        raise ValueError(f"--env '{cfg.env}' has no scripted expert; choose from {list(DEMO_ENVS)}")
    num_contexts = _num_contexts(cfg.env)
    held = set(parse_contexts(cfg.held_out, num_contexts, "--held-out"))
    contexts = [c for c in parse_contexts(cfg.contexts, num_contexts) if c not in held]
    episodes = make_demos(cfg.env, contexts, cfg.episodes_per_context, cfg.seed, cfg.noise, progress=True)
    out = save_demos(episodes, cfg.out, overwrite=cfg.overwrite)
    steps = sum(len(e) for e in episodes)
    print(f"wrote {out}: {len(episodes)} episodes, {steps} transitions, contexts {contexts}, "
          f"expert success {success_rate(episodes):.3f}")
    return 0


def _num_contexts(env_id: str) -> int:
    """K of a hidden-context family at its defaults (read from the class: no MuJoCo is loaded)."""
    from robokit.envs.hidden_context import FAMILIES

    return FAMILIES[env_id].default_contexts
