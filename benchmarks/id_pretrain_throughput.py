"""Inverse-dynamics pretraining throughput on CPU (pairs/s): robokit vs the same network in plain torch, one run.

Data: 64x64 RGB uint8 frames (random content: speed does not depend on it), episodes of 50
steps, 4,000 stored steps (2,000 with --quick). One sample = one (o_t, a_t, o_{t+1}) pair; a step
= sample a batch of 256 pairs (64 with --quick), random shift (pad 6), forward, MSE, backward,
AdamW step.

Network (both): robokit's pixel encoder as ``robokit pretrain`` builds it by default: 3x3 convs
3->32 (stride 2), 32->32 (stride 2), 2 x 32->32 (stride 1), ReLU (64 -> 31 -> 15 -> 13 -> 11); spatial softmax (1x1 conv to 256 keypoints, expected
x, y); Linear(512 -> 64) -> LayerNorm -> tanh; ID head MLP(128 -> 256 -> 256 -> 2), GELU,
dropout 0.1, tanh. Parameter counts are checked equal.

- robokit: ``robokit.pretrain`` (``ObjectiveTrainer`` + ``InverseDynamics``): frames stored
  uint8 in robokit's replay, pairs through ``StatePairView``, the random shift as one gather on
  the uint8 batch, both views through the encoder in ONE forward of 2B frames, float conversion
  inside the first conv layer.
- plain_torch (the peer the issue names): the same layers written as a plain ``nn.Module``;
  frames in a numpy uint8 array, the sampled batch converted to float32 in numpy per batch
  (``/ 255``), replicate padding of the float batch and a crop per image (a Python loop, as
  the official code's per-image ``random_crop`` under vmap), and one encoder call per view (as
  the official ``inverse_dynamics_learner`` applies phi to ``observation`` and ``next_observation``).

Timing: process CPU time on one thread (``torch.set_num_threads(1)``; the machine is shared), the
median of interleaved rounds. ``--threads N`` (N > 1) times wall-clock seconds on N threads instead
(CPU time would charge the threads' idle spinning): run it on an otherwise idle machine. Target (issue 13): robokit >= 1.5x the peer.

Usage: ``python benchmarks/id_pretrain_throughput.py [--quick]``; the last line is the benchmark JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SIZE, ACTION_DIM, PAD, EPISODE_STEPS = 64, 2, 6, 50


def make_episodes(steps: int, seed: int = 0):
    from robokit.data.episode import Episode

    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(steps // EPISODE_STEPS):
        frames = rng.integers(0, 256, (EPISODE_STEPS + 1, SIZE, SIZE, 3), dtype=np.uint8)
        actions = rng.uniform(-1, 1, (EPISODE_STEPS, ACTION_DIM)).astype(np.float32)
        episodes.append(Episode(frames, actions, np.zeros(EPISODE_STEPS), np.zeros(EPISODE_STEPS, bool),
                                np.arange(EPISODE_STEPS) == EPISODE_STEPS - 1))
    return episodes


# --------------------------------------------------------------------------- peer: plain torch
class PlainIDNet(nn.Module):
    """The same layers as robokit's encoder + ID head, written plainly; input float NCHW in [0, 1]."""

    def __init__(self, filters: int = 32, keypoints: int = 256, embed: int = 64) -> None:
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(3, filters, 3, stride=2), nn.ReLU(),
                                   nn.Conv2d(filters, filters, 3, stride=2), nn.ReLU(),
                                   nn.Conv2d(filters, filters, 3), nn.ReLU(), nn.Conv2d(filters, filters, 3), nn.ReLU())
        self.keypoints = nn.Conv2d(filters, keypoints, 1)
        side = ((SIZE - 3) // 2 + 1 - 3) // 2 + 1 - 4  # 64 -> 31 -> 15 -> 13 -> 11
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1))
        self.trunk = nn.Sequential(nn.Linear(2 * keypoints, embed), nn.LayerNorm(embed), nn.Tanh())
        self.head = nn.Sequential(nn.Linear(2 * embed, 256), nn.GELU(), nn.Dropout(0.1), nn.Linear(256, 256),
                                  nn.GELU(), nn.Dropout(0.1), nn.Linear(256, ACTION_DIM))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.keypoints(self.convs(x - 0.5)).flatten(2).softmax(-1)
        return self.trunk((maps @ self.grid).flatten(1))

    def forward(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(torch.cat([self.encode(obs), self.encode(next_obs)], dim=-1)))


class PlainTrainer:
    """Plain-torch ID pretraining: numpy uint8 frames, per-batch float conversion, per-image crop."""

    def __init__(self, episodes, batch: int, seed: int = 0) -> None:
        self.frames = np.concatenate([e.observations for e in episodes])  # (E * (T+1), H, W, C) uint8
        self.actions = np.concatenate([e.actions for e in episodes])
        starts = np.arange(len(episodes)) * (EPISODE_STEPS + 1)
        self.index = (starts[:, None] + np.arange(EPISODE_STEPS)[None]).reshape(-1)  # o_t rows
        self.batch, self.rng = batch, np.random.default_rng(seed)
        self.net = PlainIDNet()
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3 * batch / 256, weight_decay=1e-4)

    def crop(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)  # per-batch float conversion
        padded = F.pad(x, (PAD, PAD, PAD, PAD), mode="replicate")
        offsets = self.rng.integers(0, 2 * PAD + 1, (len(x), 2))
        return torch.stack([padded[i, :, r:r + SIZE, c:c + SIZE] for i, (r, c) in enumerate(offsets)])

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The data side of a step: draw pairs, convert to float, crop each view."""
        pick = self.rng.choice(len(self.index), self.batch)
        rows = self.index[pick]
        return self.crop(self.frames[rows]), self.crop(self.frames[rows + 1]), torch.from_numpy(self.actions[pick])

    def step(self) -> None:
        self.net.train()
        obs, next_obs, actions = self.sample()
        loss = F.mse_loss(self.net(obs, next_obs), actions)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()


# --------------------------------------------------------------------------- robokit
def robokit_trainer(episodes, batch: int, steps: int):
    from robokit.pretrain.data import PairSampler, demos_from_episodes
    from robokit.pretrain.objectives import (
        EncoderOptions,
        ObjectiveOptions,
        PixelEncoder,
        build_objective,
    )
    from robokit.pretrain.training import ObjectiveTrainer

    demos = demos_from_episodes(episodes)
    objective = build_objective("inverse_dynamics", PixelEncoder(demos.frame, EncoderOptions()), ACTION_DIM,
                                ObjectiveOptions())
    return ObjectiveTrainer(objective, PairSampler(demos, k=1), batch, steps, 1e-3, PAD, seed=0)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def timed(step, steps: int, clock=time.process_time) -> float:
    """Seconds of ``clock`` for ``steps`` calls of ``step``."""
    start = clock()
    for _ in range(steps):
        step()
    return clock() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 64, 2,000 stored steps, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="gradient steps per round and contender")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; above 1, wall-clock timing")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    batch = 64 if args.quick else 256
    rounds = args.rounds or (3 if args.quick else 5)
    steps = args.steps or (4 if args.quick else 4)
    episodes = make_episodes(2000 if args.quick else 4000)
    torch.manual_seed(0)
    ours = robokit_trainer(episodes, batch, steps * (rounds + 1))
    peer = PlainTrainer(episodes, batch)
    assert count(ours.objective) == count(peer.net), (count(ours.objective), count(peer.net))
    ours.train_step()  # warm-up (allocations, first-call overheads)
    peer.step()
    times: dict[str, list[float]] = {"robokit": [], "plain_torch": []}
    for _ in range(rounds):
        times["robokit"].append(timed(ours.train_step, steps, clock))
        times["plain_torch"].append(timed(peer.step, steps, clock))
    rates = {name: batch * steps / statistics.median(values) for name, values in times.items()}
    ratio = rates["robokit"] / rates["plain_torch"]
    # the data side alone (sampling, float conversion, augmentation), so the ratio can be read
    # against what uint8 storage and batched augmentation can give at most: the peer's step with
    # its data side removed entirely
    data = {"robokit": statistics.median(timed(ours.next_batch, steps, clock) for _ in range(rounds)),
            "plain_torch": statistics.median(timed(peer.sample, steps, clock) for _ in range(rounds))}
    peer_step = statistics.median(times["plain_torch"])
    data_only_ratio = peer_step / (peer_step - data["plain_torch"] + data["robokit"])
    print(f"robokit     {rates['robokit']:8.1f} pairs/s   (rounds: {', '.join(f'{v:.2f}' for v in times['robokit'])} s)")
    print(f"plain_torch {rates['plain_torch']:8.1f} pairs/s   "
          f"(rounds: {', '.join(f'{v:.2f}' for v in times['plain_torch'])} s)")
    print(f"ratio {ratio:.2f}x (target >= 1.5x)")
    print(f"data side per step: robokit {1e3 * data['robokit'] / steps:.1f} ms, plain_torch "
          f"{1e3 * data['plain_torch'] / steps:.1f} ms ({100 * data['plain_torch'] / peer_step:.1f}% of its step): "
          f"the data side alone can give {data_only_ratio:.2f}x; the rest is the network's")
    print(json.dumps({"benchmark": "id_pretrain_throughput", "unit": "pairs/s", "higher_is_better": True,
                      "robokit": round(rates["robokit"], 1), "peers": {"plain_torch": round(rates["plain_torch"], 1)},
                      "ratio": round(ratio, 3), "bound": None,
                      "notes": f"ID pretraining, 64x64 uint8 frames, batch {batch}, {steps} steps x {rounds} rounds, "
                               f"median {'process' if args.threads == 1 else 'wall'} time, {args.threads} thread(s), "
                               f"{count(peer.net)} parameters each; "
                               f"the data side alone (sampling, conversion, shift) accounts for "
                               f"{data_only_ratio:.2f}x"}))


if __name__ == "__main__":
    main()
