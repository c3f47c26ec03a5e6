"""RoboFuME's datasets on a reset-free task pair: prior multi-task demos, target demos, failures.

:func:`make_robofume_data` writes one directory (atomically: it appears complete or not at all)::

    OUT/
      manifest.json       env id and kwargs, instructions, counts, seed, noise, expert success rates
      prior/              Minari dataset: demos of the prior instructions (not the target pair),
                          ``prior_demos`` per instruction, each episode tagged with its instruction
      target_forward/     Minari dataset: ``target_demos`` demos of the forward instruction
      target_backward/    Minari dataset: ``target_demos`` demos of the backward instruction
      failures.npz        frames of episodes that do not (yet) succeed, for the reward model:
                          images (N, 64, 64, 3) uint8, instructions (N,) str, labels (N,) int8 (all 0,
                          the simulator's truth), proprio (N, P) float32, state (N, S) float32

Observations are the env's dict ``{"image", "proprio", "task"}`` (T+1 entries per episode),
``infos["success"]`` is stored per step, and ``Episode.task`` is the instruction string (Minari
keeps it as the episode's reset option ``task``). A demo ends on its first successful step, marked
``terminated`` with reward 1.0; the reward is the simulator's truth (the oracle). Every demo is
collected reset-free, as the online loop runs: the pair's demos alternate forward and backward from
where the last one ended, and the env resets itself only every ``reset_every`` steps. Only
successful attempts are kept; the attempts' success rates are recorded as the experts' rates.
The experts are the envs' privileged scripted controllers (:meth:`ResetFreeEnv.expert_action`) plus
Gaussian action noise. Layout and figures: docs/robofume_envs.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robokit.core.cli_errors import run_command
from robokit.core.config import ConfigError, check_ranges
from robokit.data.episode import Episode
from robokit.data.errors import DataError

FORMAT = "robokit-robofume-data-v1"
PARTS = ("prior", "target_forward", "target_backward")
#: attempts allowed per demo asked for (an expert failing more often than this is an error)
MAX_ATTEMPTS_PER_DEMO = 5
#: length of the noisy episodes failure frames are drawn from, and their action-noise std
FAILURE_STEPS, FAILURE_NOISE = 20, 1.0

Policy = Callable[[Any], np.ndarray]


def reset_free_env(env: Any) -> Any:
    """``env.unwrapped`` when it is a reset-free pair (it has ``expert_action``), else ValueError."""
    unwrapped = getattr(env, "unwrapped", env)
    if not hasattr(unwrapped, "expert_action") or not hasattr(unwrapped, "set_instruction"):
        spec = getattr(env, "spec", None)
        raise ValueError(f"env {spec.id if spec else type(unwrapped).__name__!r} is not a reset-free task pair "
                         f"with a scripted expert (robokit/PushBackForth-v0, robokit/DrawerOpenClose-v0, ...)")
    return unwrapped


def scripted_policy(env: Any, instruction: str | int, noise: float = 0.0,
                    rng: np.random.Generator | None = None) -> Policy:
    """``policy(obs) -> (A,) float32``: the env's privileged expert for ``instruction`` plus N(0, noise^2)
    action noise, clipped to [-1, 1]. The expert reads the simulator state, not ``obs``.

    Raises:
        ValueError: an env without an expert, an unknown instruction, or a negative ``noise``.
    """
    unwrapped = reset_free_env(env)
    name = unwrapped.instructions[_index(unwrapped, instruction)]
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = rng if rng is not None else np.random.default_rng()

    def policy(obs: Any) -> np.ndarray:
        action = unwrapped.expert_action(name)
        if noise > 0:
            action = action + rng.normal(0.0, noise, action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    return policy


def _index(unwrapped: Any, instruction: str | int) -> int:
    from robokit.envs.multitask import task_index

    return task_index(instruction, unwrapped.instructions, kind="instruction")


def rollout(env: Any, instruction: str, policy: Policy, stop_on_success: bool = True,
            max_steps: int | None = None) -> Episode:
    """One episode of ``policy`` under ``instruction`` from the env's current (reset-free) state.

    Ends on the first successful step (``terminated``; with ``stop_on_success``), the env's time
    limit or ``max_steps`` (``truncated``). Returns an :class:`Episode` tagged with ``instruction``,
    with ``infos["success"]`` (T,) bool and ``infos["state"]`` (T, S) float32, the privileged state.
    """
    unwrapped = reset_free_env(env)
    unwrapped.set_instruction(instruction)
    obs, _ = env.reset()
    observations, actions, rewards, successes, states = [obs], [], [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = policy(obs)
        obs, reward, _, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        successes.append(bool(info["success"]))
        states.append(info["state"])
        terminated = stop_on_success and successes[-1]
        truncated = bool(truncated or (max_steps is not None and len(actions) >= max_steps)) and not terminated
    stacked = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    ends = np.zeros(len(actions), bool)
    term, trunc = ends.copy(), ends.copy()
    term[-1], trunc[-1] = terminated, truncated
    return Episode(stacked, np.stack(actions), np.asarray(rewards, np.float32), term, trunc,
                   {"success": np.asarray(successes), "state": np.stack(states)}, task=instruction)


@dataclass
class DemoLog:
    """Attempts and successes per instruction (the experts' measured success rates)."""

    attempts: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)

    def record(self, instruction: str, success: bool) -> None:
        self.attempts[instruction] = self.attempts.get(instruction, 0) + 1
        self.successes[instruction] = self.successes.get(instruction, 0) + int(success)

    def rates(self) -> dict[str, dict[str, float]]:
        return {name: {"attempts": n, "successes": self.successes[name], "rate": self.successes[name] / n}
                for name, n in self.attempts.items()}


def collect_demos(env: Any, wanted: dict[str, int], noise: float, rng: np.random.Generator, log: DemoLog,
                  on_demo: Callable[[], None] = lambda: None) -> dict[str, list[Episode]]:
    """Successful demos, ``wanted[instruction]`` of each, taken in turns from where the last ended.

    The turn passes to the next instruction after a success, and stays after a failure (the
    retry starts from the failed attempt's end). An instruction already achieved at its turn is
    first undone by an unrecorded run of another instruction's expert.

    Raises:
        RuntimeError: when the experts need more than ``MAX_ATTEMPTS_PER_DEMO`` attempts per demo.
    """
    unwrapped = reset_free_env(env)
    names = list(wanted)
    demos: dict[str, list[Episode]] = {name: [] for name in names}
    budget = MAX_ATTEMPTS_PER_DEMO * max(sum(wanted.values()), 1)
    turn = 0
    while any(len(demos[n]) < wanted[n] for n in names):
        if budget == 0:
            short = {n: f"{len(demos[n])}/{wanted[n]}" for n in names}
            raise RuntimeError(f"the scripted experts failed too often on {type(unwrapped).__name__}: "
                               f"demos {short} after {MAX_ATTEMPTS_PER_DEMO} attempts per demo")
        budget -= 1
        name = names[turn % len(names)]
        if unwrapped.success(name):
            undo(env, name)
        episode = rollout(env, name, scripted_policy(env, name, noise, rng))
        log.record(name, episode.is_terminated)
        if episode.is_terminated:
            if len(demos[name]) < wanted[name]:
                demos[name].append(episode)
                on_demo()
            turn += 1
    return demos


def undo(env: Any, instruction: str) -> None:
    """Run (unrecorded) another instruction's expert until ``instruction`` no longer holds."""
    unwrapped = reset_free_env(env)
    other = unwrapped.backward if instruction != unwrapped.backward else unwrapped.forward
    expert = scripted_policy(env, other)
    unwrapped.set_instruction(other)
    obs, _ = env.reset()
    for _ in range(200):
        if not unwrapped.success(instruction):
            return
        obs, *_ = env.step(expert(obs))


def collect_failures(env: Any, instructions: Sequence[str], count: int,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``count`` frames, split evenly over ``instructions``, at which the instruction is not achieved.

    Drawn from noisy-expert episodes (action noise std ``FAILURE_NOISE``, ``FAILURE_STEPS`` steps):
    near misses as well as frames far from success. Returns arrays ``images`` (N, H, W, 3) uint8,
    ``instructions`` (N,) str, ``labels`` (N,) int8 (the simulator's truth: 0), ``proprio`` (N, P)
    and ``state`` (N, S) float32 (the privileged state at the frame).
    """
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(instructions):
        need = count // len(instructions) + int(i < count % len(instructions))
        pool: list[dict[str, Any]] = []
        for _ in range(MAX_ATTEMPTS_PER_DEMO * max(need, 1)):
            if len(pool) >= 3 * need:
                break
            if reset_free_env(env).success(name):
                undo(env, name)
            policy = scripted_policy(env, name, FAILURE_NOISE, rng)
            episode = rollout(env, name, policy, stop_on_success=False, max_steps=FAILURE_STEPS)
            pool += [{"images": episode.observations["image"][t + 1], "instructions": name,
                      "proprio": episode.observations["proprio"][t + 1], "state": episode.infos["state"][t]}
                     for t in np.flatnonzero(~episode.infos["success"])]
        if len(pool) < need:
            raise RuntimeError(f"only {len(pool)} failure frames for {name!r} in "
                               f"{MAX_ATTEMPTS_PER_DEMO * need} episodes, {need} asked for")
        rows += [pool[j] for j in sorted(rng.choice(len(pool), size=need, replace=False))]
    space = reset_free_env(env).observation_space
    empty = {"images": np.zeros((0, *space["image"].shape), np.uint8), "instructions": np.zeros(0, str),
             "proprio": np.zeros((0, *space["proprio"].shape), np.float32),
             "state": np.zeros((0, len(reset_free_env(env).state())), np.float32)}
    arrays = {key: np.stack([row[key] for row in rows]) if rows else value for key, value in empty.items()}
    arrays["instructions"] = np.array([row["instructions"] for row in rows], dtype=str)
    arrays["labels"] = np.zeros(len(rows), np.int8)
    return arrays


def make_robofume_data(env_id: str, out_dir: str | Path, prior_tasks_demos: int = 5, target_demos: int = 10,
                       failures: int = 30, seed: int = 0, noise: float = 0.1,
                       env_kwargs: dict[str, Any] | None = None, overwrite: bool = False,
                       progress: bool = True) -> dict[str, Path]:
    """Write RoboFuME's datasets for a reset-free pair to ``out_dir`` (layout: module docstring).

    Args:
        env_id: a reset-free pair, e.g. ``robokit/PushBackForth-v0``.
        prior_tasks_demos: demos per prior instruction (the env's instructions after the pair).
        target_demos: demos each of the forward and the backward instruction (the paper: 10).
        failures: failure frames for the reward model, half per instruction of the pair (the paper: ~30).
        seed: seeds the env (its first, real reset) and the action noise.
        noise: std of the Gaussian action noise added to the experts' demos.
        env_kwargs: constructor arguments of the env (``reset_every``, ``privileged_proprio``, ...).
        overwrite: replace an existing ``out_dir`` (only once the new one is complete).
        progress: show a progress bar (stderr).

    Returns:
        ``{"root", "manifest", "prior", "target_forward", "target_backward", "failures"}`` paths
        (no ``"prior"`` when ``prior_tasks_demos`` is 0).

    Raises:
        ValueError / FileExistsError: bad counts, an env without an expert or prior instructions,
        an existing ``out_dir``; nothing is written then.
    """
    import gymnasium as gym
    from tqdm import tqdm

    import robokit.envs  # noqa: F401  (registers robokit/* ids)
    from robokit.data.formats.common import atomic_directory
    from robokit.data.formats.minari_format import save_minari

    out_dir = Path(out_dir)
    _check_counts(prior_tasks_demos=prior_tasks_demos, target_demos=target_demos, failures=failures)
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; pass overwrite=True (--overwrite) to replace it")
    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as err:
        raise ValueError(f"cannot make env '{env_id}': {err}") from err
    unwrapped = reset_free_env(env)
    prior_names = unwrapped.instructions[2:]
    if prior_tasks_demos and not prior_names:
        raise ValueError(f"env '{env_id}' has no prior instructions beyond the pair {unwrapped.instructions}; "
                         f"pass prior_tasks_demos=0")
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    log = DemoLog()
    total = target_demos * 2 + prior_tasks_demos * len(prior_names)
    with tqdm(total=total, desc=f"robofume data {env_id}", unit="demo", disable=not progress) as bar:
        target = collect_demos(env, {unwrapped.forward: target_demos, unwrapped.backward: target_demos},
                               noise, rng, log, on_demo=lambda: bar.update(1))
        prior = collect_demos(env, dict.fromkeys(prior_names, prior_tasks_demos), noise, rng, log,
                              on_demo=lambda: bar.update(1)) if prior_tasks_demos else {}
    failure_arrays = collect_failures(env, (unwrapped.forward, unwrapped.backward), failures, rng)
    manifest = {"format": FORMAT, "env_id": env_id, "env_kwargs": env_kwargs or {},
                "instructions": list(unwrapped.instructions), "forward": unwrapped.forward,
                "backward": unwrapped.backward, "prior_instructions": list(prior_names), "seed": seed,
                "noise": noise, "counts": {"prior_per_instruction": prior_tasks_demos, "target": target_demos,
                                           "failures": int(len(failure_arrays["labels"]))},
                "expert_success": log.rates(), "hard_resets": unwrapped.hard_resets,
                "reset_every": unwrapped.reset_every}
    env.close()
    parts = {"target_forward": target[unwrapped.forward], "target_backward": target[unwrapped.backward],
             "prior": [ep for name in prior_names for ep in prior.get(name, [])]}
    name = env_id.split("/")[-1].split("-v")[0]
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        for part, episodes in parts.items():
            if episodes:
                save_minari(episodes, tmp / part, env_id=None if env_kwargs else env_id,
                            dataset_id=f"robofume/{name}-{part.replace('_', '-')}-v0",
                            algorithm_name=f"robokit-robofume-scripted-noise{noise}")
        with open(tmp / "failures.npz", "wb") as handle:
            np.savez(handle, **failure_arrays)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    paths = {"root": out_dir, "manifest": out_dir / "manifest.json", "failures": out_dir / "failures.npz"}
    paths.update({part: out_dir / part for part, episodes in parts.items() if episodes})
    return paths


def _check_counts(**counts: int) -> None:
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
    if counts.get("target_demos", 1) < 1:
        raise ValueError(f"target_demos must be >= 1, got {counts['target_demos']}")


@dataclass
class RobofumeData:
    """A dataset directory read back: episodes per part, failure arrays and the manifest."""

    manifest: dict[str, Any]
    prior: list[Episode]
    target_forward: list[Episode]
    target_backward: list[Episode]
    failures: dict[str, np.ndarray]


def load_robofume_data(root: str | Path) -> RobofumeData:
    """Read a directory written by :func:`make_robofume_data`.

    Raises:
        DataError: naming the file when the manifest is missing or of another format, or a part
            the manifest counts is missing or unreadable.
    """
    from robokit.data.formats.minari_format import load_minari

    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: missing; not a RoboFuME dataset (robokit robofume make-data)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{manifest_path}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(f"{manifest_path}: key 'format' is {found!r}, expected {FORMAT!r}")
    parts = {part: load_minari(root / part) if (root / part).exists() else [] for part in PARTS}
    if manifest["counts"]["prior_per_instruction"] and not parts["prior"]:
        raise DataError(f"{root / 'prior'}: missing, but the manifest counts prior demos")
    return RobofumeData(manifest, parts["prior"], parts["target_forward"], parts["target_backward"],
                        load_failures(root / "failures.npz"))


def load_failures(path: str | Path) -> dict[str, np.ndarray]:
    """``failures.npz`` as a dict of arrays (see the module docstring); DataError naming the file/key."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such failures file")
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    for key in ("images", "instructions", "labels"):
        if key not in arrays:
            raise DataError(f"{path}: key '{key}' missing")
    if arrays["images"].dtype != np.uint8 or arrays["images"].ndim != 4:
        raise DataError(f"{path}: key 'images': expected (N, H, W, 3) uint8, got "
                        f"{arrays['images'].shape} {arrays['images'].dtype}")
    return arrays


def reward_examples(data: RobofumeData) -> tuple[tuple[np.ndarray, list[str]], tuple[np.ndarray, list[str]]]:
    """``(positives, negatives)`` for a success classifier, each ``(images (N, H, W, 3) uint8, instructions)``.

    Positives: the last frame of every target demo (the frame after its successful step) with the
    demo's instruction; negatives: the failure frames.
    """
    demos = data.target_forward + data.target_backward
    positives = (np.stack([ep.observations["image"][-1] for ep in demos]), [str(ep.task) for ep in demos])
    negatives = (data.failures["images"], [str(text) for text in data.failures["instructions"]])
    return positives, negatives


@dataclass(frozen=True)
class MakeDataConfig:
    """Write RoboFuME's datasets for a reset-free task pair: prior multi-task demos, target forward and
    backward demos and failure frames (layout: docs/robofume_envs.md)."""

    out: Path
    """dataset directory to create."""
    env: str = "robokit/PushBackForth-v0"
    """a reset-free pair: robokit/PushBackForth-v0, robokit/DrawerOpenClose-v0, ..."""
    prior_demos: int = 5
    """demos per prior instruction (the env's instructions after the forward/backward pair)."""
    target_demos: int = 10
    """demos each of the forward and backward instruction (the paper's simulation: 10)."""
    failures: int = 30
    """failure frames for the reward model (the paper: about 30)."""
    seed: int = 0
    """seeds the env's first reset and the action noise."""
    noise: float = 0.1
    """std of the Gaussian action noise on the scripted experts."""
    reset_every: int = 1000
    """env steps between the env's own real resets (K; the paper's simulation: 1,000)."""
    overwrite: bool = False
    """replace --out if it exists (only after the new dataset is complete)."""
    progress: bool = True
    """show a progress bar."""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("target_demos", "reset_every"), non_negative=("prior_demos", "failures",
                                                                                     "noise"))


def make_data_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit robofume make-data`` (exit 2 with one line on bad input)."""
    return run_command("robokit robofume make-data", argv, _make_data)


def _make_data(argv: list[str]) -> int:
    from robokit.core.config import parse

    cfg = parse(MakeDataConfig, argv, prog="robokit robofume make-data")
    if cfg.out.exists() and not cfg.overwrite:
        raise FileExistsError(f"--out {cfg.out} already exists; pass --overwrite to replace it")
    kwargs = {"reset_every": cfg.reset_every} if cfg.reset_every != 1000 else None
    try:
        paths = make_robofume_data(cfg.env, cfg.out, cfg.prior_demos, cfg.target_demos, cfg.failures, cfg.seed,
                                   cfg.noise, env_kwargs=kwargs, overwrite=cfg.overwrite, progress=cfg.progress)
    except RuntimeError as err:  # experts failing too often: a property of the options (noise), not a bug
        raise ConfigError(str(err)) from err
    manifest = json.loads(paths["manifest"].read_text())
    rates = ", ".join(f"{name!r} {row['rate']:.2f} ({row['attempts']})"
                      for name, row in manifest["expert_success"].items())
    print(f"wrote {paths['root']}: {', '.join(sorted(p for p in paths if p not in ('root', 'manifest')))}; "
          f"expert success (attempts): {rates}")
    return 0
