"""Replay sampling throughput: robokit vs TorchRL vs Stable-Baselines3, in one run.

Each buffer holds the same 1M transitions (obs 17, action 6: Hopper/HalfCheetah
sizes, float32) and returns batches of 256 as CPU torch tensors (the form an
update step consumes): robokit ``ReplayBuffer.sample`` + ``to_torch``, TorchRL
``ReplayBuffer(LazyTensorStorage, RandomSampler)``, SB3 ``ReplayBuffer.sample``.
Also timed: robokit's numpy-only batch, and a mixed offline/online batch
(``MixedReplay``, 50% of 1M offline + 50% of 100k online) against the same split
done with two TorchRL buffers and ``torch.cat``.

The bound: a batch moves ``B * 43 floats`` (obs, next_obs, action, reward,
terminated, truncated); the machine's copy bandwidth, measured here with a
large ``numpy.copyto``, divided by those bytes is the most batches per second
memory could feed. Random row access makes the bound optimistic.

Usage: ``python benchmarks/replay_sample.py [--quick]``; the last line is the
benchmark JSON (see ../shared/ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch

torch.set_num_threads(1)

OBS_DIM, ACT_DIM, BATCH = 17, 6, 256
FLOATS_PER_ROW = 2 * OBS_DIM + ACT_DIM + 3


def make_data(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``size`` transitions in 1000-step episodes (ended by time limits)."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((size, OBS_DIM), dtype=np.float32)
    next_obs = np.roll(obs, -1, axis=0)
    truncated = (np.arange(size) % 1000) == 999
    return {"obs": obs, "next_obs": next_obs, "action": rng.uniform(-1, 1, (size, ACT_DIM)).astype(np.float32),
            "reward": rng.standard_normal(size, dtype=np.float32), "terminated": np.zeros(size, bool),
            "truncated": truncated}


def robokit_buffer(data: dict[str, np.ndarray], capacity: int, seed: int = 0):
    from robokit.data import Episode, ReplayBuffer

    buffer = ReplayBuffer(capacity, (OBS_DIM,), ACT_DIM, seed=seed)
    for start in range(0, len(data["reward"]), 1000):
        rows = slice(start, start + 1000)
        obs = np.concatenate([data["obs"][rows], data["next_obs"][rows][-1:]])
        buffer.add_episode(Episode(obs, data["action"][rows], data["reward"][rows], data["terminated"][rows],
                                   data["truncated"][rows]))
    return buffer


def torchrl_buffer(data: dict[str, np.ndarray], capacity: int, batch_size: int | None = BATCH):
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, RandomSampler
    from torchrl.data import ReplayBuffer as TorchRLReplay

    buffer = TorchRLReplay(storage=LazyTensorStorage(capacity), sampler=RandomSampler(), batch_size=batch_size)
    size = len(data["reward"])
    buffer.extend(TensorDict({k: torch.from_numpy(v.astype(np.float32) if v.dtype == bool else v)
                              for k, v in data.items()}, batch_size=[size]))
    return buffer


def sb3_buffer(data: dict[str, np.ndarray], capacity: int):
    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer as SB3Replay

    buffer = SB3Replay(capacity, gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
                       gym.spaces.Box(-1, 1, (ACT_DIM,), np.float32), device="cpu", n_envs=1,
                       handle_timeout_termination=True)
    size = len(data["reward"])
    # fill the preallocated arrays directly (add() one row at a time would take minutes; sampling is timed)
    buffer.observations[:size, 0] = data["obs"]
    buffer.next_observations[:size, 0] = data["next_obs"]
    buffer.actions[:size, 0] = data["action"]
    buffer.rewards[:size, 0] = data["reward"]
    buffer.dones[:size, 0] = data["terminated"] | data["truncated"]
    buffer.timeouts[:size, 0] = data["truncated"]
    buffer.pos, buffer.full = size % capacity, size == capacity
    return buffer


def measure(contenders: dict[str, Callable[[], object]], seconds: float,
            rounds: int = 5) -> tuple[dict[str, float], dict[str, float]]:
    """Calls per second of each contender, by wall clock and by this process's CPU time.

    After a warm-up, ``rounds`` rounds in which every contender runs for ``seconds / rounds``,
    interleaved so that load from other processes on a shared machine hits all of them alike;
    each contender's best window counts. CPU time leaves out the time the process waited for a
    core, so it is the steadier figure on a busy machine.
    """
    for fn in contenders.values():
        for _ in range(50):
            fn()
    wall = dict.fromkeys(contenders, 0.0)
    cpu = dict.fromkeys(contenders, 0.0)
    for _ in range(rounds):
        for name, fn in contenders.items():
            count, start, start_cpu = 0, time.perf_counter(), time.process_time()
            while (elapsed := time.perf_counter() - start) < seconds / rounds:
                for _ in range(20):
                    fn()
                count += 20
            used = max(time.process_time() - start_cpu, 1e-9)
            wall[name] = max(wall[name], count / elapsed)
            cpu[name] = max(cpu[name], count / used)
    return wall, cpu


def copy_bandwidth(megabytes: int = 128, repeats: int = 10) -> float:
    """Bytes copied per second by ``numpy.copyto`` between two buffers far larger than the caches.

    Both buffers are written before timing (so no page faults are timed) and the best of
    ``repeats`` copies counts: on a shared machine the best run is the closest to the hardware.
    """
    src = np.ones(megabytes * 2**20 // 4, np.float32)
    dst = np.zeros_like(src)
    dst[:] = 2.0
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return src.nbytes / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows (well under 2 minutes)")
    parser.add_argument("--size", type=int, default=1_000_000, help="stored transitions")
    args = parser.parse_args()
    seconds = 1.5 if args.quick else 6.0  # per contender
    from robokit.data import MixedReplay, ReplayBuffer, to_torch

    bandwidth_before = copy_bandwidth()  # measured before the buffers fill memory, and again after
    data = make_data(args.size)
    notes: list[str] = []

    robokit = robokit_buffer(data, args.size)
    contenders: dict[str, Callable[[], object]] = {
        "robokit": lambda: to_torch(robokit.sample(BATCH)),
        "robokit_numpy": lambda: robokit.sample(BATCH),
    }
    peer_names = []
    try:
        torchrl = torchrl_buffer(data, args.size)
        contenders["torchrl"] = torchrl.sample
        peer_names.append("torchrl")
    except ImportError as err:
        notes.append(f"torchrl not installed ({err})")
    try:
        sb3 = sb3_buffer(data, args.size)
        contenders["sb3"] = lambda: sb3.sample(BATCH)
        peer_names.append("sb3")
    except ImportError as err:
        notes.append(f"stable-baselines3 not installed ({err})")

    online_data = make_data(args.size // 10, seed=1)
    online = ReplayBuffer(args.size // 10, (OBS_DIM,), ACT_DIM, seed=1)
    rows = len(online_data["reward"])
    online.storage.write({**online_data, "episode": np.zeros(rows, np.int64), "step": np.zeros(rows, np.int32),
                          "next": np.full(rows, -1, np.int64)})
    mixer = MixedReplay(robokit, online, offline_fraction=0.5, seed=0)
    contenders["robokit_mixed"] = lambda: to_torch(mixer.sample(BATCH))
    if "torchrl" in peer_names:
        torchrl_online = torchrl_buffer(online_data, args.size // 10, None)
        contenders["torchrl_mixed"] = _torchrl_half(torchrl_buffer(data, args.size, None), torchrl_online)
    measured, per_cpu_second = measure(contenders, seconds)
    results = {k: v for k, v in measured.items() if k.startswith("robokit")}
    peers = {k: v for k, v in measured.items() if not k.startswith("robokit")}

    bandwidth = max(bandwidth_before, copy_bandwidth())
    bytes_per_batch = BATCH * FLOATS_PER_ROW * 4
    bound = bandwidth / bytes_per_batch
    best_peer_name = max((k for k in peers if not k.endswith("_mixed")), key=peers.get, default=None)
    ratio = results["robokit"] / peers[best_peer_name] if best_peer_name else None

    width = 16
    print(f"{'sampler':<{width}} {'batches/s':>12} {'us/batch':>10} {'per CPU-s':>12}  (batch {BATCH}, obs {OBS_DIM}, "
          f"act {ACT_DIM}, {args.size:,} stored, wall clock and per second of CPU time)")
    for name, value in measured.items():
        print(f"{name:<{width}} {value:>12,.0f} {1e6 / value:>10.2f} {per_cpu_second[name]:>12,.0f}")
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; a batch moves {bytes_per_batch / 1e3:.1f} kB -> bound "
          f"{bound:,.0f} batches/s; robokit is {bound / results['robokit']:.1f}x below it by wall clock, "
          f"{bound / per_cpu_second['robokit']:.1f}x by CPU time (numpy batches: "
          f"{bound / per_cpu_second['robokit_numpy']:.1f}x)")
    if "torchrl_mixed" in peers:
        print(f"mixed 50/50: robokit {results['robokit_mixed']:,.0f} vs two TorchRL buffers + torch.cat "
              f"{peers['torchrl_mixed']:,.0f} batches/s")
    notes.insert(0, f"batch {BATCH}, obs {OBS_DIM}, act {ACT_DIM}, {args.size:,} stored; torch tensors out; "
                    f"per CPU-second robokit {per_cpu_second['robokit']:,.0f}, numpy-only "
                    f"{per_cpu_second['robokit_numpy']:,.0f}, "
                    + ", ".join(f"{k} {per_cpu_second[k]:,.0f}" for k in peers if not k.endswith("_mixed"))
                    + f"; robokit numpy-only {results['robokit_numpy']:,.0f}/s; mixed 50/50 robokit "
                    f"{results['robokit_mixed']:,.0f}/s; bound from measured copy bandwidth "
                    f"{bandwidth / 1e9:.1f} GB/s; {'quick' if args.quick else 'full'} run")
    peer_figures = {k: round(v, 1) for k, v in peers.items() if not k.endswith("_mixed")}
    print(json.dumps({"benchmark": "replay_sample", "unit": "batches/s", "higher_is_better": True,
                      "robokit": round(results["robokit"], 1), "peers": peer_figures,
                      "ratio": round(ratio, 3) if ratio else None, "bound": round(bound, 1),
                      "notes": "; ".join(notes)}))


def _torchrl_half(offline, online):
    """A 50/50 mixed batch from two TorchRL buffers: 128 rows from each, concatenated."""
    half = BATCH // 2

    def sample():
        return torch.cat([offline.sample(half), online.sample(BATCH - half)])

    return sample


if __name__ == "__main__":
    main()
