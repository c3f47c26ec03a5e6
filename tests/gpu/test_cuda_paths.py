"""CUDA paths (`make gpu-check`): each runs the same computation on CPU and CUDA and compares.

Every test here is marked ``gpu`` and skips without CUDA, so CPU-only CI collects and skips them.
TF32 is switched off so the CUDA results are full fp32 and comparable with the CPU ones.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by `make gpu-check`)"),
]


@pytest.fixture(autouse=True)
def _full_fp32():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _sac_batch(n: int, obs: int, act: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "obs": torch.randn(n, obs, generator=gen),
        "action": torch.rand(n, act, generator=gen) * 2 - 1,
        "reward": torch.randn(n, generator=gen),
        "next_obs": torch.randn(n, obs, generator=gen),
        "terminated": (torch.rand(n, generator=gen) < 0.05).float(),
    }


def test_sac_ensemble_forward_on_cuda_matches_cpu():
    """The vectorised E=10 critic and the actor give the same outputs on CUDA as on CPU."""
    from robokit.algos import SAC, SACConfig

    torch.manual_seed(0)
    config = SACConfig(hidden_dims=(64, 64), ensemble_size=10, target_subset=2)
    cpu_agent = SAC(config, 17, 6)
    with torch.device("cuda"):
        cuda_agent = SAC(config, 17, 6)
    cuda_agent.load_state_dict(cpu_agent.state_dict())
    batch = _sac_batch(32, 17, 6)
    cpu_q = cpu_agent.critic(batch["obs"], batch["action"])
    cuda_q = cuda_agent.critic(batch["obs"].cuda(), batch["action"].cuda())
    assert cuda_q.is_cuda
    torch.testing.assert_close(cuda_q.cpu(), cpu_q, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo", ["sac", "cql"])
def test_updates_on_cuda_stay_finite(algo):
    """Built under ``torch.device("cuda")``, updated outside it: every random draw of the update
    (target subset, CQL's random actions) follows the agent's CUDA generator."""
    from robokit.algos import CQL, SAC, CQLConfig, SACConfig

    torch.manual_seed(0)
    batch = {k: v.cuda() for k, v in _sac_batch(256, 17, 6).items()}
    with torch.device("cuda"):
        if algo == "sac":
            agent = SAC(SACConfig(hidden_dims=(64, 64), ensemble_size=10, target_subset=2), 17, 6)
        else:
            agent = CQL(CQLConfig(hidden_dims=(64, 64)), 17, 6)
    for _ in range(3):
        metrics = agent.update(batch)
    assert all(torch.isfinite(torch.as_tensor(float(v))) for v in metrics.values())


def test_detector_forward_on_cuda_matches_cpu(shared_data):
    pytest.importorskip("spconv")
    from robokit.detection.dataset import KittiObjectDataset
    from robokit.detection.model import SecondDetector, preset_config

    torch.manual_seed(0)
    model = SecondDetector(preset_config("cpu-tiny")).eval()
    frame = KittiObjectDataset(shared_data / "kitti" / "object")[0]
    features, coords = model.voxelize([frame.points])
    with torch.no_grad():
        cpu_out = model(features, coords, 1)
        model = model.cuda()
        cuda_out = model(features.cuda(), coords.cuda(), 1)
    for key in ("cls", "box", "dir"):
        torch.testing.assert_close(cuda_out[key].cpu(), cpu_out[key], rtol=1e-3, atol=1e-4)


def _cosine(a, b) -> float:
    import numpy as np

    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_input_gradients_on_cuda(shared_data):
    """INTACT's saliency and PGD differentiate the loss w.r.t. the points with BN in eval mode. On
    CUDA, spconv's eval path runs outside autograd (it raised "not used in the graph");
    eval_with_input_grads keeps it differentiable. The classifier's point gradients point the
    way CPU's do (one CPU thread; 1 vs 2 threads give cosine 0.999 for this model, measured). The
    detector's are only checked to exist: at init its gradients are ~1e-10 and even CPU runs
    disagree with each other (cosine 0.5-0.98 between repeated 2-thread runs, measured)."""
    import copy

    import numpy as np

    pytest.importorskip("spconv")
    from robokit.detection.dataset import KittiObjectDataset
    from robokit.detection.intact import detector_point_grads
    from robokit.detection.model import SecondDetector, preset_config
    from robokit.intact.saliency import loss_point_grads
    from robokit.pointcloud.backbones import SparseClassifier

    torch.manual_seed(0)
    classifier = SparseClassifier(num_classes=4, channels=(8, 8, 16, 16), hidden=16)
    points = torch.rand(2, 256, 3, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    labels = torch.tensor([1, 3])
    with torch.no_grad():  # BN running statistics from the data (at init the eval output is constant)
        for _ in range(30):
            classifier(points)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu_grad = loss_point_grads(classifier, points, labels)
    finally:
        torch.set_num_threads(threads)
    cuda_grad = loss_point_grads(copy.deepcopy(classifier).cuda(), points.cuda(), labels.cuda())
    assert cuda_grad.is_cuda and torch.isfinite(cuda_grad).all() and cuda_grad.abs().max() > 1e-4
    assert _cosine(cuda_grad.cpu(), cpu_grad) > 0.95

    detector = SecondDetector(preset_config("cpu-tiny")).cuda()
    frame = KittiObjectDataset(shared_data / "kitti" / "object")[2]
    grads = detector_point_grads(detector, [frame.points], [(frame.gt_boxes, frame.gt_classes)])[0]
    assert grads.shape == (len(frame.points), 3) and np.isfinite(grads).all() and (grads != 0).any()
    assert detector.training  # the mode is restored
