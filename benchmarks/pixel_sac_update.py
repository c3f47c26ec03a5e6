"""SAC gradient updates per second from pixels on CPU: robokit vs Stable-Baselines3 and TorchRL, one run.

Observations: 84x84 RGB frames, frame stack 3 (9 channels, uint8), batch 256 (32 with --quick),
action 6. One update = one critic step, one actor step, one temperature step and a Polyak target
update; 2 critics, Adam lr 3e-4, no image augmentation (SB3 has none; robokit's random shift is
off). Everyone gets uint8 frames in its own layout and converts them to float inside the update.

Architecture, the same for every ``*_drq`` contender (robokit's pixel encoder, DrQ's):
- conv body: Conv(9->32, 3x3, stride 2), then 3 x Conv(32->32, 3x3, stride 1), ReLU after each
  (84x84 -> 41 -> 39 -> 37 -> 35: 32 x 35 x 35 = 39200 features);
- per-network trunk: Linear(39200 -> 50) -> LayerNorm(50) -> tanh;
- heads: MLP(50 [+ action] -> 256 -> 256 -> out), ReLU.

How each library wires it (each as its users run it):
- robokit_drq: ``robokit.algos.SAC`` on an image observation spec: one conv body shared by
  actor and critic, trained by the critic loss only (the actor reads detached features; DrQ's
  rule), a trunk per network, the target critic with its own body copy. The actor step reuses
  the body output of the critic step (DrQ-v2's encode-once rule, ``encoder.reuse_features``).
- robokit_reencode (reported in notes, not a peer): the same with ``reuse_features=False``: the
  actor step runs the body again (DrQ's rule; robokit before the feature cache).
- sb3_drq: Stable-Baselines3 ``SAC("CnnPolicy")`` with ``features_extractor_class`` set to the
  body + trunk above (features_dim 50) and ``net_arch=[256, 256]``; SB3's default
  ``share_features_extractor=False``: the actor and the critic each own a conv body, and the
  actor loss runs the critic's body again. Timed through ``SAC.train(1, batch)`` with its replay
  sampling replaced by pre-made torch batches (so no numpy sampling is timed).
- torchrl_drq: TorchRL ``SACLoss`` (2 vmapped Q nets, each with its own conv body) over the
  same modules, one summed backward, three Adams and ``SoftUpdate``.
- sb3_nature (reported in notes, not a peer: a different, cheaper network): SB3's default
  ``CnnPolicy`` with ``NatureCNN`` (Conv 8x8/4 32, 4x4/2 64, 3x3/1 64, Linear 3136 -> 512, ReLU).

Target (issue 10): robokit at least as fast as the fastest same-architecture peer. Rates are
updates per CPU-second (process time, one thread: time on a core, so other jobs on a shared CPU
count less), the median of interleaved rounds.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import numpy as np
import torch
from sac_update import load_average, timing_parser  # benchmarks/ is the script dir
from torch import nn

FRAMES, HEIGHT, WIDTH, RGB, ACT = 3, 84, 84, 3, 6
CHANNELS = FRAMES * RGB
FILTERS, CONV_LAYERS, FEATURES, HIDDEN = 32, 4, 50, (256, 256)


def conv_body() -> nn.Sequential:
    """DrQ's conv body on (B, 9, 84, 84) float in [0, 1] -> (B, 39200)."""
    layers: list[nn.Module] = [nn.Conv2d(CHANNELS, FILTERS, 3, stride=2), nn.ReLU()]
    for _ in range(CONV_LAYERS - 1):
        layers += [nn.Conv2d(FILTERS, FILTERS, 3, stride=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Flatten())


def body_dim() -> int:
    with torch.no_grad():
        return int(conv_body()(torch.zeros(1, CHANNELS, HEIGHT, WIDTH)).shape[1])


def drq_encoder() -> nn.Sequential:
    """conv body + trunk: (B, 9, 84, 84) float -> (B, 50)."""
    return nn.Sequential(conv_body(), nn.Linear(body_dim(), FEATURES), nn.LayerNorm(FEATURES), nn.Tanh())


def mlp(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                         nn.Linear(HIDDEN[1], out))


def random_frames(batch: int, generator: torch.Generator, channels_last: bool) -> torch.Tensor:
    """uint8 frame stacks: (B, 3, 84, 84, 3) with ``channels_last`` (robokit's ImageSpec layout, that of
    gymnasium's FrameStackObservation) else (B, 9, 84, 84) (SB3's and TorchRL's channels-first layout)."""
    shape = (batch, FRAMES, HEIGHT, WIDTH, RGB) if channels_last else (batch, CHANNELS, HEIGHT, WIDTH)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)


def random_batches(count: int, batch: int, seed: int, channels_last: bool) -> list[dict[str, torch.Tensor]]:
    """``count`` replay batches: obs/next_obs uint8 frames, action in [-1, 1], reward, terminated."""
    gen = torch.Generator().manual_seed(seed)
    return [{"obs": random_frames(batch, gen, channels_last), "next_obs": random_frames(batch, gen, channels_last),
             "action": torch.rand(batch, ACT, generator=gen) * 2 - 1, "reward": torch.randn(batch, generator=gen),
             "terminated": (torch.rand(batch, generator=gen) < 0.05).float()} for _ in range(count)]


# -- Stable-Baselines3 ---------------------------------------------------------------------------
def make_sb3(batches: list[dict[str, torch.Tensor]], nature: bool = False):
    """An update function on SB3's SAC ("CnnPolicy"), or (None, reason) when SB3 cannot be imported."""
    try:
        import gymnasium as gym
        from stable_baselines3 import SAC as SB3SAC
        from stable_baselines3.common.logger import Logger
        from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
        from stable_baselines3.common.type_aliases import ReplayBufferSamples
    except Exception as err:  # noqa: BLE001 - report any import problem
        return None, f"stable-baselines3 import failed: {err}"

    class DrQExtractor(BaseFeaturesExtractor):
        """The shared architecture as an SB3 features extractor (SB3 already divides by 255)."""

        def __init__(self, observation_space: gym.spaces.Box) -> None:
            super().__init__(observation_space, FEATURES)
            self.net = drq_encoder()

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.net(observations)

    class FrameEnv(gym.Env):
        """Spaces only: SB3 builds its networks from them; nothing is ever stepped."""

        observation_space = gym.spaces.Box(0, 255, (CHANNELS, HEIGHT, WIDTH), np.uint8)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT,), np.float32)

    policy_kwargs = {} if nature else {"features_extractor_class": DrQExtractor, "net_arch": list(HIDDEN)}
    model = SB3SAC("CnnPolicy", FrameEnv(), buffer_size=1, learning_starts=0, batch_size=len(batches[0]["obs"]),
                   policy_kwargs=policy_kwargs, device="cpu", seed=0)
    model.set_logger(Logger(folder=None, output_formats=[]))
    samples = itertools.cycle([ReplayBufferSamples(b["obs"], b["action"], b["next_obs"], b["terminated"][:, None],
                                                   b["reward"][:, None]) for b in batches])
    model.replay_buffer.sample = lambda batch_size, env=None: next(samples)

    def update(_batch) -> None:
        model.train(gradient_steps=1, batch_size=len(batches[0]["obs"]))

    return update, None


# -- TorchRL -------------------------------------------------------------------------------------
class PixelQ(nn.Module):
    """Q(pixels uint8 (B, 9, 84, 84), action (B, A)) -> (B, 1) through encoder, trunk and MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.head = drq_encoder(), mlp(FEATURES + ACT, 1)

    def forward(self, pixels: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.encoder(pixels.float() / 255.0), action], -1))


class PixelActor(nn.Module):
    """pixels uint8 (B, 9, 84, 84) -> (B, 2A) Gaussian parameters (before NormalParamExtractor)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.head = drq_encoder(), mlp(FEATURES, 2 * ACT)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(pixels.float() / 255.0))


def make_torchrl():
    """An update function on TorchRL's SACLoss with the pixel modules above, or (None, reason)."""
    try:
        from tensordict import TensorDict
        from tensordict.nn import NormalParamExtractor, TensorDictModule
        from torchrl.modules import ProbabilisticActor, TanhNormal, ValueOperator
        from torchrl.objectives import SACLoss, SoftUpdate
    except Exception as err:  # noqa: BLE001 - report any import problem
        return None, f"torchrl import failed: {err}"
    actor = ProbabilisticActor(TensorDictModule(nn.Sequential(PixelActor(), NormalParamExtractor()), ["pixels"],
                                                ["loc", "scale"]),
                               in_keys=["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True)
    qnet = ValueOperator(PixelQ(), in_keys=["pixels", "action"])
    loss = SACLoss(actor_network=actor, qvalue_network=qnet, num_qvalue_nets=2, target_entropy=-float(ACT))
    loss.make_value_estimator(gamma=0.99)
    updater = SoftUpdate(loss, eps=0.995)
    optimizers = [torch.optim.Adam(loss.actor_network_params.flatten_keys().values(), lr=3e-4),
                  torch.optim.Adam(loss.qvalue_network_params.flatten_keys().values(), lr=3e-4),
                  torch.optim.Adam([loss.log_alpha], lr=3e-4)]

    def update(b) -> None:
        flag = b["terminated"][:, None].bool()
        td = TensorDict({"pixels": b["obs"], "action": b["action"],
                         "next": {"pixels": b["next_obs"], "reward": b["reward"][:, None], "done": flag,
                                  "terminated": flag}}, batch_size=[len(b["obs"])])
        out = loss(td)
        for opt in optimizers:
            opt.zero_grad()
        (out["loss_actor"] + out["loss_qvalue"] + out["loss_alpha"]).backward()
        for opt in optimizers:
            opt.step()
        updater.step()

    return update, None


# -- robokit -------------------------------------------------------------------------------------
def make_robokit(batch: int, reuse_features: bool = True):
    """An update function on robokit's pixel SAC: ``SAC`` on ``ImageSpec(84, 84, 3, frame_stack=3)``
    with the default image encoder (DrQ body shared, critic-trained; 50-feature trunks) and
    augmentation off; or (None, reason). ``reuse_features=False``: the actor step re-encodes the
    batch (DrQ's rule, robokit before the feature cache), reported in ``notes`` only."""
    try:
        from robokit.algos import SAC, SACConfig
        from robokit.nets.encoders import EncoderConfig
        from robokit.nets.obs_spec import ImageSpec
    except ImportError as err:
        return None, f"robokit has no image observation specs here: {err}"
    config = SACConfig(hidden_dims=HIDDEN, batch_size=batch,
                       encoder=EncoderConfig(image="cnn", feature_dim=FEATURES, augment="none",
                                             cnn_filters=FILTERS, cnn_layers=CONV_LAYERS,
                                             reuse_features=reuse_features))
    agent = SAC(config, ImageSpec(HEIGHT, WIDTH, RGB, frame_stack=FRAMES), ACT)
    return agent.update, None


# -- timing --------------------------------------------------------------------------------------
def time_round(update, batches: list, updates: int, clock=time.process_time) -> float:
    """Updates per second of ``clock`` over ``updates`` updates after one warm-up update."""
    update(batches[0])
    start = clock()
    for i in range(updates):
        update(batches[(i + 1) % len(batches)])
    return updates / (clock() - start)


def interleaved(contenders: dict, batches: dict, updates: int, rounds: int) -> dict[str, float]:
    """Median updates/s per contender over ``rounds`` interleaved rounds; prints the table."""
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, update in contenders.items():
            speeds[name].append(time_round(update, batches[name], updates))
    median = {name: float(np.median(v)) for name, v in speeds.items()}
    print(f"{'contender':<14} {'updates/s':>10}   (median of {rounds} rounds x {updates} updates, 1 thread)")
    for name, value in median.items():
        print(f"{name:<14} {value:>10.3f}   rounds: {', '.join(f'{v:.3f}' for v in speeds[name])}")
    return median


def main(argv: list[str] | None = None) -> int:
    args = timing_parser(__doc__, "batch 32, 2 rounds of 2 updates").parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch, updates, rounds = (32, 2, 2) if args.quick else (256, 2, 3)
    rounds = args.rounds or rounds
    channels_first = random_batches(2, batch, 0, channels_last=False)
    contenders, batches, why = {}, {}, {}
    for name, (make, data) in {"robokit_drq": (lambda: make_robokit(batch), random_batches(2, batch, 0, channels_last=True)),
                               "robokit_reencode": (lambda: make_robokit(batch, reuse_features=False),
                                                    random_batches(2, batch, 0, channels_last=True)),
                               "sb3_drq": (lambda: make_sb3(channels_first), channels_first),
                               "torchrl_drq": (make_torchrl, channels_first),
                               "sb3_nature": (lambda: make_sb3(channels_first, nature=True), channels_first)}.items():
        update, why[name] = make()
        if update is not None:
            contenders[name], batches[name] = update, data
    load_before = load_average()
    median = interleaved(contenders, batches, updates, rounds)
    load = f"{load_before} before, {load_average()} after"
    print(f"load average (1/5/15 min): {load}")
    return report(median, why, batch, load, args.threads)


def report(median: dict[str, float], why: dict[str, str | None], batch: int, load: str, threads: int) -> int:
    peers = {k: round(v, 3) for k, v in median.items() if k in ("sb3_drq", "torchrl_drq")}
    robokit = median.get("robokit_drq")
    notes = (f"84x84x3 frame stack 3 (9 ch uint8), batch {batch}, action {ACT}; DrQ conv body (32 filters 3x3, "
             f"{CONV_LAYERS} layers, first stride 2) -> trunk Linear {body_dim()}->{FEATURES} + LayerNorm + tanh -> "
             f"MLP {HIDDEN}; 2 critics; no augmentation; {threads} thread(s), updates per CPU-second; load {load}")
    if "robokit_reencode" in median:
        notes += f"; robokit re-encoding the batch in the actor step (reuse_features False, DrQ's rule): " \
                 f"{median['robokit_reencode']:.3f} upd/s"
    if "sb3_nature" in median:
        notes += f"; sb3 default CnnPolicy (NatureCNN, 512 features; different network, not a peer): " \
                 f"{median['sb3_nature']:.3f} upd/s"
    for name, reason in why.items():
        if reason:
            notes += f"; {name} left out: {reason}"
    ratio = round(robokit / max(peers.values()), 3) if robokit and peers else None
    print(json.dumps({"benchmark": "pixel_sac_update", "unit": "updates/s", "higher_is_better": True,
                      "robokit": None if robokit is None else round(robokit, 3), "peers": peers, "ratio": ratio,
                      "bound": None, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
