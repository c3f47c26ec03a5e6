"""Scale-out on Ray against one process, in one run: suite fan-out, evaluation episodes, rollouts.

Measured (wall-clock, ``time.perf_counter``), each single process vs Ray with 2 workers on
this machine, the Ray runtime started once beforehand (its start-up is reported apart):

(a) ``robokit robustness eval``'s work: the ModelNet-C suite (clean + 7 corruptions x 5
    severities = 36 tasks) on a procedural test split, with a small PointNet trained here;
(b) 20 evaluation episodes of a SAC checkpoint on MuJoCo HalfCheetah-v5 (1,000 steps each);
(c) the learner's update rate of ``robokit train --distributed ray`` with 1 and with 2
    rollout actors (SAC, Pendulum-v1), and the single-process trainer's for reference.

(a) and (b) call ``robokit.distributed.fanout.fan_out`` with the very setup and task functions
of the two commands, timed in two laps: the workers' set-up (on Ray: starting 2 processes that
import torch/MuJoCo and build their state; in one process: building it once) and the tasks.
``speedup`` compares the totals, as a user's command pays them; ``speedup_tasks`` the task laps
alone. The overhead per task is the time lost on 2 workers: ``(2 * tasks_ray - tasks_single) / tasks``. Memory: the
resident set size (RSS) of every process of the Ray runtime (GCS, raylet, workers), sampled
every 0.2 s during (a) and (b); peak total and peak per worker process. RSS counts shared
pages (torch's libraries) once per process, so the total overstates the real footprint.

The machine is shared with other users: the 1-minute load average before and after is
recorded; speed-ups below the 2-core ideal are partly contention.

Peer: robokit itself in one process (the same code path with ``--distributed none``); the
equality of the numbers is asserted in tests/distributed, not here.

Usage: ``python benchmarks/distributed.py [--quick] [--test-per-class N]``; the last line is the benchmark JSON.
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


def compare(name: str, items: list, single: tuple, on_ray: tuple, ray2) -> dict:
    """``fan_out`` of ``items`` in this process (``single`` = (setup, args)) and on 2 Ray workers
    (``on_ray``), timed in two laps: worker set-up and tasks. Their results must be equal."""
    from robokit.distributed.fanout import fan_out

    (setup1, args1, task, teardown), (setup2, args2) = single, on_ray
    laps1, laps2 = {}, {}
    results1 = fan_out(setup1, args1, task, items, None, teardown=teardown, timings=laps1)
    results2 = fan_out(setup2, args2, task, items, ray2, teardown=teardown, timings=laps2)
    if results1 != results2:
        raise SystemExit(f"{name}: Ray and single-process results differ")
    total1, total2 = sum(laps1.values()), sum(laps2.values())
    row = {"tasks": len(items), "single_s": round(total1, 2), "ray2_s": round(total2, 2),
           "speedup": round(total1 / total2, 3), "single_tasks_s": round(laps1["tasks_s"], 2),
           "ray2_tasks_s": round(laps2["tasks_s"], 2), "speedup_tasks": round(laps1["tasks_s"] / laps2["tasks_s"], 3),
           "ray2_worker_start_s": round(laps2["setup_s"], 2),
           "overhead_ms_per_task": round(1000 * (2 * laps2["tasks_s"] - laps1["tasks_s"]) / len(items), 1)}
    print(name, row, flush=True)
    return row


def suite_setup(work: Path, per_class: int) -> tuple:
    """A small PointNet trained on the procedural set; returns (suite inputs, test clouds)."""
    from robokit.intact.evaluate import suite_inputs
    from robokit.intact.train import TrainConfig, train

    cfg = TrainConfig(method="standard", backbone="pointnet", out=work / "pointnet", epochs=1, num_points=512,
                      width=0.5, train_per_class=4, test_per_class=per_class, dataset_points=1024,
                      progress=False)
    from robokit.intact.cli import _test_split
    from robokit.intact.evaluate import load_classifier

    model, state = load_classifier(train(cfg)["checkpoint"])
    points, labels, _ = _test_split(state, "procedural")  # as `robokit robustness eval` reads it
    return suite_inputs(model, points, labels, int(state["num_points"]), 0, "modelnet-c"), 13 * per_class


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
    parser.add_argument("--test-per-class", type=int, default=None,
                        help="suite test clouds per procedural class (13 classes); default 8 with --quick, else 190 "
                             "(2,470 clouds: the size of ModelNet40's 2,468-cloud test split, which ModelNet-C "
                             "corrupts)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    import ray

    from robokit.distributed.fanout import given
    from robokit.distributed.options import DistributedOptions
    from robokit.intact.evaluate import pair_accuracy
    from robokit.intact.protocol import suite_pairs
    from robokit.trainers.cli import _eval_episode, _eval_setup, _eval_state, _eval_teardown

    load_before = load()
    work = Path(tempfile.mkdtemp(prefix="robokit-distributed-bench-"))
    per_class = args.test_per_class or (8 if args.quick else 190)
    inputs, test_clouds = suite_setup(work, per_class)
    sac = eval_checkpoint(work)
    env_vars = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}
    ray_started, _ = timed(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                                            runtime_env={"env_vars": env_vars}))
    ray2 = DistributedOptions("ray", workers=2)
    pairs = [(p, name, severity, 0) for p, (name, severity) in enumerate(suite_pairs("modelnet-c"))]
    from robokit.algos import load_agent
    from robokit.envs.options import EnvOptions
    from robokit.trainers.evaluation import eval_seeds

    episodes = [(reset_seed, True, None) for reset_seed in eval_seeds(0, 20)]

    with RssSampler() as rss:
        suite = compare("suite", pairs, (given, (inputs,), pair_accuracy, None), (given, (inputs,)), ray2)
        episodes = compare("eval_episodes", episodes,
                           (_eval_state, (load_agent(sac), sac, "HalfCheetah-v5", EnvOptions(), False), _eval_episode,
                            _eval_teardown),
                           (_eval_setup, (sac, "HalfCheetah-v5", EnvOptions(), False)), ray2)
    rates = learner_rates(work, 1000 if args.quick else 3000)
    ray.shutdown()
    memory = {"peak_total_rss_mb": round(rss.peak_total / 2**20, 1), "peak_processes": rss.peak_count,
              "peak_worker_rss_mb": round(rss.peak_worker / 2**20, 1)}
    report = {"suite": suite, "eval_episodes": episodes, "learner": rates, "ray_memory": memory,
              "ray_start_s": round(ray_started, 2), "load_avg_1min": [load_before, load()],
              "suite_test_clouds": test_clouds, "cpus": os.cpu_count()}
    print(json.dumps(report, indent=2))
    notes = (f"suite (36 tasks, {test_clouds} clouds): {suite['single_s']} s -> {suite['ray2_s']} s, "
             f"tasks alone x{suite['speedup_tasks']} ({suite['overhead_ms_per_task']} ms/task overhead, worker "
             f"start {suite['ray2_worker_start_s']} s); 20 HalfCheetah episodes: {episodes['single_s']} s -> "
             f"{episodes['ray2_s']} s, x{episodes['speedup']}, tasks alone x{episodes['speedup_tasks']}; learner upd/s "
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
