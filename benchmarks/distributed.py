"""Scale-out on Ray against one process, in one run: suite fan-out, evaluation episodes, rollouts.

Measured (wall-clock, ``time.perf_counter``), each single process vs Ray with 2 workers on
this machine, the Ray runtime started once beforehand (its start-up is reported apart):

(a) ``robokit robustness eval``'s work: the ModelNet-C suite (clean + 7 corruptions x 5
    severities = 36 tasks) on a procedural test split, with a small PointNet trained here;
(b) 20 evaluation episodes of a SAC checkpoint on MuJoCo HalfCheetah-v5 (1,000 steps each);
(c) the learner's update rate of ``robokit train --distributed ray`` with 1 and with 2
    rollout actors (SAC, Pendulum-v1), and the single-process trainer's for reference.

Each Ray figure includes starting the worker processes of that command (they load the
checkpoint and build the env / test split), as a user's command pays it. The overhead per
task is the CPU time lost on 2 workers: ``(2 * t_ray - t_single) / tasks``. Memory: the
resident set size (RSS) of every process of the Ray runtime (GCS, raylet, workers), sampled
every 0.2 s during (a) and (b); peak total and peak per worker process. RSS counts shared
pages (torch's libraries) once per process, so the total overstates the real footprint.

The machine is shared with other users: the 1-minute load average before and after is
recorded; speed-ups below the 2-core ideal are partly contention.

Peer: robokit itself in one process (the same code path with ``--distributed none``); the
equality of the numbers is asserted in tests/distributed, not here.

Usage: ``python benchmarks/distributed.py [--quick]``; the last line is the benchmark JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
REPO = Path(__file__).resolve().parents[1]


def load() -> float:
    return round(os.getloadavg()[0], 2)


class RssSampler:
    """Peak RSS of the Ray runtime's processes (every descendant of this driver), sampled in a thread."""

    def __init__(self, period: float = 0.2) -> None:
        import psutil

        self.me, self.period = psutil.Process(), period
        self.peak_total, self.peak_worker, self.peak_count = 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total, count = 0, 0
            for proc in self.me.children(recursive=True):
                try:
                    rss, name = proc.memory_info().rss, " ".join(proc.cmdline()[:1])
                except psutil.Error:
                    continue
                total += rss
                count += 1
                if "ray::" in name:
                    self.peak_worker = max(self.peak_worker, rss)
            self.peak_total, self.peak_count = max(self.peak_total, total), max(self.peak_count, count)
            self._stop.wait(self.period)


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def compare(name: str, tasks: int, single, on_ray) -> dict:
    """Wall-clock of ``single()`` and ``on_ray()``; they must give the same result."""
    t_single, r_single = timed(single)
    t_ray, r_ray = timed(on_ray)
    if r_single != r_ray:
        raise SystemExit(f"{name}: Ray and single-process results differ")
    return {"tasks": tasks, "single_s": round(t_single, 2), "ray2_s": round(t_ray, 2),
            "speedup": round(t_single / t_ray, 3),
            "overhead_ms_per_task": round(1000 * (2 * t_ray - t_single) / tasks, 1)}


def suite_setup(work: Path, quick: bool) -> tuple:
    """A small PointNet trained on the procedural set; returns (checkpoint, test clouds)."""
    from robokit.intact.train import TrainConfig, train

    per_class = 8 if quick else 20
    cfg = TrainConfig(method="standard", backbone="pointnet", out=work / "pointnet", epochs=1, num_points=512,
                      width=0.5, train_per_class=4, test_per_class=per_class, dataset_points=1024,
                      progress=False)
    return train(cfg)["checkpoint"], 13 * per_class


def eval_checkpoint(work: Path) -> Path:
    """final.pt of a 300-step SAC run on HalfCheetah-v5 (hidden 64 x 64)."""
    from robokit.trainers.cli import train_main

    out = work / "sac"
    code = train_main(["--algo", "sac", "--env", "HalfCheetah-v5", "--online-steps", "300", "--out", str(out),
                       "--logger", "none", "--eval-episodes", "1", "--eval-every", "0", "--no-progress",
                       "--agent.hidden-dims", "64", "64", "--agent.warmup-steps", "200"])
    assert code == 0
    return out / "final.pt"


def learner_rates(work: Path, steps: int) -> dict:
    """Learner updates/s with 1 and 2 rollout actors, and the one-process trainer's, on Pendulum-v1."""
    from robokit.core.config import parse
    from robokit.trainers.trainer import config_class_for, train

    rates = {}
    common = ["--env", "Pendulum-v1", "--online-steps", str(steps), "--logger", "none",
              "--eval-episodes", "1", "--eval-every", "0", "--no-progress", "--agent.hidden-dims", "64", "64",
              "--agent.warmup-steps", "200", "--checkpoint-every", str(10 * steps)]
    for label, extra in (("single_process", []), ("ray_1_actor", ["--distributed", "ray", "--workers", "1"]),
                         ("ray_2_actors", ["--distributed", "ray", "--workers", "2"])):
        config = parse(config_class_for("sac"), [*common, "--out", str(work / f"rate-{label}"), *extra])
        seconds, summary = timed(lambda: train("sac", config))  # noqa: B023
        # the distributed loop times itself (online phase); one process: the whole run (2 short evals included)
        rate = summary.get("updates_per_s") or round((steps - 200) / summary["seconds"], 1)
        rates[label] = {"updates_per_s": rate, "run_s": round(seconds, 1)}
        print(label, rates[label], flush=True)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller suite and learner runs (about 3 min here)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    import ray

    from robokit.distributed.options import DistributedOptions
    from robokit.intact.cli import suite_worker
    from robokit.intact.evaluate import evaluate_suite
    from robokit.trainers.cli import evaluate_checkpoint

    load_before = load()
    work = Path(tempfile.mkdtemp(prefix="robokit-distributed-bench-"))
    checkpoint, test_clouds = suite_setup(work, args.quick)
    sac = eval_checkpoint(work)
    env_vars = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    ray_started, _ = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                                            runtime_env={"env_vars": env_vars}))
    ray2 = DistributedOptions("ray", workers=2)
    with RssSampler() as rss:
        suite = compare("suite", 36,
                        lambda: evaluate_suite(suite_worker, (checkpoint, "procedural", 0, "modelnet-c"), "modelnet-c", 0),
                        lambda: evaluate_suite(suite_worker, (checkpoint, "procedural", 0, "modelnet-c"), "modelnet-c", 0, ray2))
        print("suite", suite, flush=True)
        episodes = compare("episodes", 20,
                           lambda: evaluate_checkpoint(sac, 20, "HalfCheetah-v5"),
                           lambda: evaluate_checkpoint(sac, 20, "HalfCheetah-v5", options=ray2))
        print("eval episodes", episodes, flush=True)
    rates = learner_rates(work, 1000 if args.quick else 3000)
    ray.shutdown()
    memory = {"peak_total_rss_mb": round(rss.peak_total / 2**20, 1), "peak_processes": rss.peak_count,
              "peak_worker_rss_mb": round(rss.peak_worker / 2**20, 1)}
    report = {"suite": suite, "eval_episodes": episodes, "learner": rates, "ray_memory": memory,
              "ray_start_s": round(ray_started, 2), "load_avg_1min": [load_before, load()],
              "suite_test_clouds": test_clouds, "cpus": os.cpu_count()}
    print(json.dumps(report, indent=2))
    notes = (f"suite (36 tasks, {test_clouds} clouds): {suite['single_s']} s -> {suite['ray2_s']} s "
             f"({suite['overhead_ms_per_task']} ms/task overhead); 20 HalfCheetah episodes: "
             f"{episodes['single_s']} s -> {episodes['ray2_s']} s, x{episodes['speedup']}; learner upd/s "
             f"1 process {rates['single_process']['updates_per_s']}, 1 actor {rates['ray_1_actor']['updates_per_s']}, "
             f"2 actors {rates['ray_2_actors']['updates_per_s']}; Ray RSS peak {memory['peak_total_rss_mb']} MB "
             f"over {memory['peak_processes']} processes (worker {memory['peak_worker_rss_mb']} MB); "
             f"ray.init {ray_started:.1f} s; load avg {load_before} -> {load()} on {os.cpu_count()} CPUs")
    print(json.dumps({"benchmark": "distributed", "unit": "x speed-up (suite, 2 Ray workers)",
                      "higher_is_better": True, "robokit": suite["speedup"], "peers": {"single_process": 1.0},
                      "ratio": suite["speedup"], "bound": 2.0, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
