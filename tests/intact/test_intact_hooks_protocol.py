"""One hooks protocol drives both trainers: a fake hook records what each trainer calls, in order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from robokit.intact.hooks import CurriculumHooks, TrainingHooks
from robokit.intact.train import RobustTrainer, TrainConfig, load_dataset, train

TINY = TrainConfig(epochs=2, warmup_epochs=1, width=0.25, num_points=64, train_per_class=6, test_per_class=2,
                   dataset_points=256, batch_size=32, progress=False, task_clouds=8)


class RecordingHooks:
    """Records every call and marks the clouds it returns (x + 10 for xyz clouds, reflectance 0.5 for
    scans) so the test can see that the student was fed them."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.data = None

    def begin(self, model, data):
        self.data = data
        self.calls.append(("begin",))

    def corrupt_batch(self, clouds, targets, model, epoch, rng):
        assert len(clouds) == len(targets)
        self.calls.append(("corrupt_batch", epoch, len(clouds)))
        return [_mark(c) for c in clouds]

    def after_step(self, model, step, rng):
        self.calls.append(("after_step", step))
        return {"train/fake_step": float(step)}

    def end_epoch(self, model, epoch, rng):
        self.calls.append(("end_epoch", epoch))
        return {"curriculum/fake_epoch": float(epoch)}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        return None


def _mark(cloud):
    out = cloud.astype(np.float32, copy=True)
    if out.shape[1] > 3:
        out[:, 3] = 0.5
    else:
        out[:, 0] += 10.0
    return out


def _check_sequence(calls, epochs):
    assert calls[0] == ("begin",) and [c for c in calls if c[0] == "begin"] == [("begin",)]
    assert [c for c in calls if c[0] == "end_epoch"] == [("end_epoch", e) for e in range(epochs)]
    steps = [c[1] for c in calls if c[0] == "after_step"]
    assert steps == list(range(1, len(steps) + 1)) and steps
    # each step: corrupt_batch, then after_step; end_epoch closes each epoch
    kinds = [c[0] for c in calls[1:]]
    for i, kind in enumerate(kinds):
        if kind == "corrupt_batch":
            assert kinds[i + 1] == "after_step"


def test_recording_hooks_satisfy_the_protocol_and_so_do_intacts():
    from robokit.intact.train import ClassificationTask

    assert isinstance(RecordingHooks(), TrainingHooks)
    assert isinstance(CurriculumHooks(ClassificationTask(TINY)), TrainingHooks)


def test_the_classifier_trainer_calls_the_hooks(tmp_path, monkeypatch):
    data = load_dataset(TINY)
    hooks = RecordingHooks()
    seen = []
    original = RobustTrainer.student_step

    def spy(self, points, labels):
        seen.append(points[:, :, 0].min())
        return original(self, points, labels)

    monkeypatch.setattr(RobustTrainer, "student_step", spy)
    result = train(dataclasses.replace(TINY, method="standard", out=tmp_path / "run"), data, hooks=hooks)
    _check_sequence(hooks.calls, TINY.epochs)
    assert hooks.data is data
    assert min(seen) > 5.0  # the student was fed what the hook returned
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert "train/fake_step" in header and "curriculum/fake_epoch" in header
    assert result["trainer"].hooks is hooks


@pytest.mark.slow
def test_the_detector_trainer_calls_the_same_hooks(shared_data, tmp_path, monkeypatch):
    pytest.importorskip("spconv")
    import robokit.detection.train as detection_train
    from robokit.detection.train import TrainDetectorConfig, train_detector

    hooks = RecordingHooks()
    seen = []
    original = detection_train.SecondDetector.voxelize

    def spy(self, clouds, device="cpu"):
        seen.append(all(np.all(c[:, 3] == 0.5) for c in clouds))
        return original(self, clouds, device)

    monkeypatch.setattr(detection_train.SecondDetector, "voxelize", spy)
    config = TrainDetectorConfig(data=shared_data / "kitti" / "object", out=tmp_path / "det", preset="cpu-tiny",
                                 epochs=2, batch_size=3, augment=False, eval_at_end=False, checkpoint_every=2)
    train_detector(config, progress=False, hooks=hooks)
    _check_sequence(hooks.calls, 2)
    assert len(hooks.data) == 3  # the three real scans
    assert [c[2] for c in hooks.calls if c[0] == "corrupt_batch"] == [3, 3]
    assert seen and all(seen)  # the detector was fed what the hook returned


class _ScoreTask:
    """A stand-in student task (a boundary, not a model): scores 0.3 clean and 0.2 corrupted."""

    coordinate_scale = 1.0
    clouds = [np.zeros((4, 3), dtype=np.float32)]

    def attach(self, data):
        pass

    def baseline_corruption(self, clouds, strength, rng):
        return [c + 1.0 for c in clouds]

    def robust_score(self, model, corrupt, rng):
        seen = corrupt(self.clouds, [None])
        return 0.2 if np.any(seen[0] != self.clouds[0]) else 0.3


@pytest.mark.parametrize("gate, advanced", [("absolute", 0.0), ("relative", 1.0)])
def test_end_epoch_scores_clean_on_the_same_data_for_the_relative_gate(gate, advanced):
    """Relative gate: robust 0.2 / clean 0.3 = 0.67 >= 0.6 advances; absolute 0.2 < 0.6 does not."""
    from robokit.intact.hooks import IntactConfig

    hooks = CurriculumHooks(_ScoreTask(), IntactConfig(method="curriculum", warmup_epochs=0, threshold=0.6,
                                                        gate=gate))
    metrics = hooks.end_epoch(None, 0, np.random.default_rng(0))
    assert metrics["curriculum/val_robust_score"] == 0.2 and metrics["curriculum/advanced"] == advanced
    assert hooks.curriculum.level == int(advanced)
    if gate == "relative":
        assert metrics["curriculum/val_clean_score"] == 0.3
        assert metrics["curriculum/gate_value"] == pytest.approx(2 / 3)
    else:
        assert "curriculum/val_clean_score" not in metrics
