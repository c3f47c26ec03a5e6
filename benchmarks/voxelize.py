"""Voxelization throughput on real KITTI scans: robokit vs spconv PointToVoxel vs open3d, one run.

Input: the three full KITTI object scans in ``../shared/data`` (115k-127k points, x y z
reflectance). Grid: SECOND/OpenPCDet's KITTI car setting, voxel 0.05 x 0.05 x 0.1 m over
[0, 70.4] x [-40, 40] x [-3, 1] m (grid 1408 x 1600 x 40).

* robokit ``voxelize``: numba hash table; mean of all points per voxel, coords [z, y, x].
* spconv ``PointToVoxel`` (CPU, spconv 2.3.8): up to 5 points kept per voxel (SECOND's
  setting) and the mean of the kept points computed from its output, so both produce mean
  voxel features. Its coordinates are also [z, y, x]; the benchmark checks the occupied voxel
  sets agree exactly.
* open3d ``VoxelDownSample`` (legacy API, cubic voxels only: 0.05 m, whole scan, no range
  crop), including the numpy -> open3d conversion a numpy user pays.

All peers run on one thread (``OMP_NUM_THREADS=1``, torch 1 thread). Unit: scans per second.

Usage: ``python benchmarks/voxelize.py [--quick]``; the last line is the benchmark JSON.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

VOXEL_SIZE = [0.05, 0.05, 0.1]
POINT_RANGE = [0.0, -40.0, -3.0, 70.4, 40.0, 1.0]
DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kitti" / "object" / "training"
)


def load_scans() -> list[np.ndarray]:
    from robokit.pointcloud.io import read_kitti_velodyne

    files = sorted((DATA / "velodyne").glob("*.bin"))
    if not files:
        raise SystemExit(f"no KITTI scans under {DATA}")
    return [read_kitti_velodyne(f) for f in files]


def time_per_scan(run, scans, repeats: int, clock=time.process_time) -> float:
    """Median over repeats of the mean CPU seconds per scan.

    CPU time of this process (``time.process_time``), not wall time: the machine is shared by
    other jobs, and every method here runs on one thread, so CPU time is what it costs.
    """
    for scan in scans:  # warm-up (numba compile, allocator)
        run(scan)
    samples = []
    for _ in range(repeats):
        start = clock()
        for scan in scans:
            run(scan)
        samples.append((clock() - start) / len(scans))
    return float(np.median(samples))


def robokit_runner():
    from robokit.pointcloud.voxelizer import voxelize

    return lambda scan: voxelize(scan, VOXEL_SIZE, POINT_RANGE)


def spconv_runner(device: str = "cpu"):
    """spconv's PointToVoxel on ``device``; on CUDA the timing includes the host-to-device copy."""
    import torch

    torch.set_num_threads(1)
    from spconv.pytorch.utils import PointToVoxel

    generator = PointToVoxel(
        vsize_xyz=VOXEL_SIZE,
        coors_range_xyz=POINT_RANGE,
        num_point_features=4,
        max_num_voxels=150000,
        max_num_points_per_voxel=5,
        device=torch.device(device),
    )

    def run(scan):
        voxels, coords, counts = generator(torch.from_numpy(scan).to(device))
        features = voxels.sum(dim=1) / counts.clamp(min=1).unsqueeze(1).to(voxels.dtype)
        if device != "cpu":
            torch.cuda.synchronize()
        return features, coords.cpu(), counts.cpu()

    return run


def open3d_runner():
    import open3d as o3d

    def run(scan):
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(scan[:, :3].astype(np.float64)))
        return cloud.voxel_down_sample(VOXEL_SIZE[0])

    return run


def voxel_sets_agree(scans) -> bool:
    """robokit and spconv occupy the same voxels with the same point counts (below the cap)."""
    ours, theirs = robokit_runner(), spconv_runner()
    for scan in scans:
        _, coords, counts = ours(scan)
        _, ref_coords, ref_counts = theirs(scan)
        mine = {
            tuple(c): min(int(n), 5) for c, n in zip(coords.tolist(), counts.tolist(), strict=True)
        }
        ref = {
            tuple(c): int(n)
            for c, n in zip(ref_coords.numpy().tolist(), ref_counts.numpy().tolist(), strict=True)
        }
        if mine != ref:
            return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (well under 2 minutes)")
    parser.add_argument(
        "--device", default="cpu",
        help="device of spconv's PointToVoxel (cuda: also timed in wall-clock seconds, see notes)",
    )
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 30
    scans = load_scans()
    rows, notes = {}, []
    rows["robokit"] = time_per_scan(robokit_runner(), scans, repeats)
    for name, factory in (
        ("spconv_PointToVoxel", spconv_runner),
        ("open3d_voxel_down_sample", open3d_runner),
    ):
        try:
            rows[name] = time_per_scan(factory(), scans, repeats)
        except ImportError as err:
            notes.append(f"{name} not installed ({err})")
    if args.device != "cpu" and "spconv_PointToVoxel" in rows:
        # a GPU's work is not CPU time of this process: wall-clock seconds for this row
        rows[f"spconv_PointToVoxel_{args.device}"] = time_per_scan(
            spconv_runner(args.device), scans, repeats, clock=time.perf_counter
        )
        notes.append(f"spconv_PointToVoxel_{args.device} is wall-clock time incl. copies to and from the GPU")
    if "spconv_PointToVoxel" in rows:
        notes.append(f"voxel sets identical to spconv: {voxel_sets_agree(scans)}")
    points = int(np.mean([len(s) for s in scans]))
    voxels = len(robokit_runner()(scans[0])[1])
    print(f"{'method':<26} {'ms/scan':>9} {'scans/s':>9}")
    for name, seconds in rows.items():
        print(f"{name:<26} {seconds * 1e3:>9.2f} {1 / seconds:>9.1f}")
    peers = {name: round(1 / s, 2) for name, s in rows.items() if name != "robokit"}
    cpu_peers = [v for name, v in peers.items() if not name.endswith(f"_{args.device}")]
    robokit = round(1 / rows["robokit"], 2)
    notes.append(
        f"{len(scans)} KITTI scans, mean {points} points, {voxels} voxels in scan 000000; voxel "
        "0.05x0.05x0.1 m over [0,70.4]x[-40,40]x[-3,1]; spconv keeps <=5 points/voxel (SECOND), "
        "open3d uses 0.05 m cubes on the whole scan incl. numpy conversion; 1 thread each; "
        f"process CPU time, median of {repeats} repeats"
    )
    result = {
        "benchmark": "voxelize_kitti",
        "unit": "scans/s",
        "higher_is_better": True,
        "robokit": robokit,
        "peers": peers,
        "ratio": round(robokit / max(cpu_peers), 3) if cpu_peers else None,  # CPU against CPU
        "bound": None,
        "notes": "; ".join(notes),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
