"""The full ModelNet-C suite (7 corruptions x 5 levels) over 2,468 clouds of 1,024 points.

2,468 is the size of the ModelNet40 test split that ModelNet-C corrupts; the clouds here are
robokit's procedural shapes (ModelNet40 cannot be downloaded), unit-sphere normalised like
ModelNet40. robokit runs every cloud through the public ``corrupt(name, points, level, rng)``
(input validation included).

Peer: a straightforward per-cloud numpy implementation of the published ModelNet-C generator,
written in this file (random shuffles by argsort, a full distance sort per dropped cluster, a
Python loop over added clusters), the way the benchmark's own generation script works. No
packaged library implements ModelNet-C, so this is the only peer.

Timing is process CPU time (the machine is shared; both run on one thread). Unit: corrupted
clouds per second (one cloud at one level of one corruption). ``--quick`` uses the first 617
clouds (a quarter); the full run uses all 2,468.

Usage: ``python benchmarks/corruptions.py [--quick]``; the last line is the benchmark JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

LEVELS = range(5)
NUM_CLOUDS = 2468


# --------------------------------------------------------------------------- peer: straightforward numpy
def _normalize(pc):
    pc = pc - pc.mean(axis=0)
    return pc / np.max(np.sqrt((pc**2).sum(axis=1)))


def _shuffle(pc, rng):
    return pc[np.argsort(rng.random(len(pc)))]


def _cluster_sizes(num_clusters, total, rng):
    labels = rng.integers(num_clusters, size=total)
    return [int((labels == i).sum()) for i in range(num_clusters)]


def peer_scale(pc, level, rng):
    s = [1.6, 1.7, 1.8, 1.9, 2.0][level]
    return _normalize(pc * rng.uniform(1.0 / s, s, size=3))


def peer_jitter(pc, level, rng):
    return pc + 0.01 * (level + 1) * rng.standard_normal(pc.shape)


def peer_rotate(pc, level, rng):
    a = rng.uniform(-math.pi / 30 * (level + 1), math.pi / 30 * (level + 1), size=3)
    rx = np.array(
        [[1, 0, 0], [0, math.cos(a[0]), -math.sin(a[0])], [0, math.sin(a[0]), math.cos(a[0])]]
    )
    ry = np.array(
        [[math.cos(a[1]), 0, math.sin(a[1])], [0, 1, 0], [-math.sin(a[1]), 0, math.cos(a[1])]]
    )
    rz = np.array(
        [[math.cos(a[2]), -math.sin(a[2]), 0], [math.sin(a[2]), math.cos(a[2]), 0], [0, 0, 1]]
    )
    return pc @ (rz @ ry @ rx)


def peer_dropout_global(pc, level, rng):
    rate = [0.25, 0.375, 0.5, 0.625, 0.75][level]
    return _shuffle(pc, rng)[: int(len(pc) * (1 - rate))]


def peer_dropout_local(pc, level, rng):
    remaining = len(pc)
    for size in _cluster_sizes(int(rng.integers(1, 8)), 100 * (level + 1), rng):
        pc = _shuffle(pc, rng)
        order = np.argsort(((pc - pc[:1]) ** 2).sum(axis=1))[::-1]
        remaining -= size
        pc = pc[order][:remaining]
    return pc


def peer_add_global(pc, level, rng):
    count = 10 * (level + 1)
    radius = rng.uniform(0, 1, (count, 1)) ** (1 / 3)
    theta = np.arccos(rng.uniform(-1, 1, (count, 1)))
    phi = rng.uniform(0, 2 * math.pi, (count, 1))
    added = np.hstack(
        [
            radius * np.sin(theta) * np.cos(phi),
            radius * np.sin(theta) * np.sin(phi),
            radius * np.cos(theta),
        ]
    )
    return np.vstack([pc, added])


def peer_add_local(pc, level, rng):
    total = 100 * (level + 1)
    num_clusters = int(rng.integers(1, 8))
    pc = _shuffle(pc, rng)
    added = np.zeros((total, 3))
    start = 0
    for i, size in enumerate(_cluster_sizes(num_clusters, total, rng)):
        sigma = rng.uniform(0.075, 0.125)
        added[start : start + size] = pc[i] + sigma * rng.standard_normal((size, 3))
        start += size
    squared = np.repeat((added**2).sum(axis=1, keepdims=True), 3, axis=1)
    added[squared > 1] = added[squared > 1] / squared[squared > 1]
    return np.vstack([pc, added])


PEER = {
    "scale": peer_scale,
    "jitter": peer_jitter,
    "rotate": peer_rotate,
    "dropout_global": peer_dropout_global,
    "dropout_local": peer_dropout_local,
    "add_global": peer_add_global,
    "add_local": peer_add_local,
}


# --------------------------------------------------------------------------- timing
def run_suite(apply, names, clouds, seed=0):
    """CPU seconds per corruption for every cloud at every level; returns (dict, point total)."""
    rng = np.random.default_rng(seed)
    seconds, points = {}, 0
    for name in names:
        start = time.process_time()
        for level in LEVELS:
            for cloud in clouds:
                points += len(apply(name, cloud, level, rng))
        seconds[name] = time.process_time() - start
    return seconds, points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the clouds")
    args = parser.parse_args(argv)
    from robokit.pointcloud.corruptions import SUITES, corrupt
    from robokit.pointcloud.procedural import PROCEDURAL_CLASSES, make_procedural_dataset

    per_class = math.ceil(NUM_CLOUDS / len(PROCEDURAL_CLASSES))
    clouds = make_procedural_dataset(per_class, num_points=1024, seed=1)[0][:NUM_CLOUDS]
    if args.quick:
        clouds = clouds[: NUM_CLOUDS // 4]
    names = SUITES["modelnet-c"]
    ours, our_points = run_suite(corrupt, names, clouds)
    theirs, their_points = run_suite(lambda n, c, lv, r: PEER[n](c, lv, r), names, clouds)
    total_clouds = len(clouds) * len(names) * len(LEVELS)
    print(
        f"{len(clouds)} clouds x {len(names)} corruptions x {len(LEVELS)} levels = {total_clouds} corrupted clouds"
    )
    print(f"{'corruption':<16} {'robokit s':>10} {'numpy peer s':>13}")
    for name in names:
        print(f"{name:<16} {ours[name]:>10.2f} {theirs[name]:>13.2f}")
    our_total, their_total = sum(ours.values()), sum(theirs.values())
    print(f"{'total':<16} {our_total:>10.2f} {their_total:>13.2f}")
    robokit_rate, peer_rate = total_clouds / our_total, total_clouds / their_total
    result = {
        "benchmark": "modelnet_c_suite",
        "unit": "corrupted clouds/s",
        "higher_is_better": True,
        "robokit": round(robokit_rate, 1),
        "peers": {"numpy_per_cloud_reference": round(peer_rate, 1)},
        "ratio": round(robokit_rate / peer_rate, 3),
        "bound": None,
        "notes": (
            f"{len(clouds)} procedural clouds x 1024 points x 7 ModelNet-C corruptions x 5 levels "
            f"= {total_clouds} outputs; robokit {our_total:.1f} s, peer {their_total:.1f} s CPU "
            f"(suite over the {len(clouds)} clouds); output points robokit {our_points}, peer "
            f"{their_points}; peer = straightforward numpy version of the published generator "
            "written in this script (no packaged ModelNet-C library exists)"
            + ("; --quick: first quarter of the 2468 clouds" if args.quick else "")
        ),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
