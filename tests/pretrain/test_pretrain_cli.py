"""`robokit pretrain` / `robokit finetune-bc` round trip, resume, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from robokit.cli import main as robokit
from robokit.core.checkpoint import load_checkpoint
from robokit.data.episode import Episode
from robokit.pretrain.data import PairSampler, check_frame, demos_from_episodes, load_demos
from tests.pretrain.conftest import dot_episodes

SMALL = ["--encoder.embed-dim", "8", "--encoder.keypoints", "8", "--encoder.cnn-filters", "8",
         "--encoder.cnn-strides", "2", "1", "--no-progress", "--logger", "none"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    corpus = demos_from_episodes(dot_episodes(range(4), 3, noise=0.3))
    few = demos_from_episodes(dot_episodes([5], 2, seed=1))
    corpus.buffer.save(root / "corpus.npz")
    few.buffer.save(root / "few.npz")
    big = demos_from_episodes(dot_episodes([5], 2, size=28, seed=1))
    big.buffer.save(root / "few28.npz")
    return root


def test_pretrain_then_finetune_round_trip(tmp_path, files, capsys):
    for objective in ("inverse_dynamics", "contrastive"):
        out = tmp_path / objective
        code = robokit(["pretrain", "--objective", objective, "--data", str(files / "corpus.npz"), "--out", str(out),
                        "--steps", "3", "--batch-size", "8", *SMALL])
        assert code == 0
        state = load_checkpoint(out / "final.pt")
        assert state["objective"] == objective and state["step"] == 3
    code = robokit(["finetune-bc", "--encoder", str(tmp_path / "inverse_dynamics" / "final.pt"),
                    "--data", str(files / "few.npz"), "--out", str(tmp_path / "ft"), "--head.steps", "5",
                    "--head.batch-size", "8", "--no-progress", "--logger", "none"])
    assert code == 0
    assert "policy:" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "ft" / "final.pt")["mode"] == "frozen"


def test_resume_continues_bit_identically(tmp_path, files):
    args = ["pretrain", "--objective", "inverse_dynamics", "--data", str(files / "corpus.npz"), "--steps", "6",
            "--batch-size", "8", "--checkpoint-every", "3", *SMALL]
    assert robokit([*args, "--out", str(tmp_path / "a")]) == 0
    assert robokit([*args, "--out", str(tmp_path / "b")]) == 0
    (tmp_path / "b" / "final.pt").unlink()
    (tmp_path / "b" / "checkpoints" / "step_000000006.pt").unlink()
    assert robokit([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = load_checkpoint(tmp_path / "a" / "final.pt"), load_checkpoint(tmp_path / "b" / "final.pt")
    for name in a["encoder"]:
        assert torch.equal(a["encoder"][name], b["encoder"][name]), name


def bad(capsys, args, match, out=None):
    code = robokit(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and match in err, err
    if out is not None:
        assert not out.exists()


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, files, capsys):
    out = tmp_path / "run"
    base = ["--steps", "2", "--batch-size", "4", *SMALL, "--out", str(out)]
    bad(capsys, ["pretrain", "--objective", "inverse_dynamics", "--data", str(tmp_path / "missing.npz"), *base],
        "no such file", out)
    # demos without actions: a replay file whose action field is gone
    no_actions = tmp_path / "no_actions.npz"
    with zipfile.ZipFile(files / "corpus.npz") as src, zipfile.ZipFile(no_actions, "w") as dst:
        for item in src.namelist():
            if item != "field.action.npy":
                dst.writestr(item, src.read(item))
    bad(capsys, ["pretrain", "--objective", "bc", "--data", str(no_actions), *base], "action", out)
    # frames of another size than the encoder's
    encoder_run = tmp_path / "enc"
    assert robokit(["pretrain", "--objective", "bc", "--data", str(files / "corpus.npz"), "--out", str(encoder_run),
                    "--steps", "1", "--batch-size", "4", *SMALL]) == 0
    capsys.readouterr()
    bad(capsys, ["finetune-bc", "--encoder", str(encoder_run / "final.pt"), "--data", str(files / "few28.npz"),
                 "--out", str(out), "--no-progress"], "28x28x3 but the encoder", out)
    bad(capsys, ["finetune-bc", "--encoder", str(files / "few.npz"), "--data", str(files / "few.npz"),
                 "--out", str(out), "--no-progress"], "few.npz", out)
    bad(capsys, ["finetune-bc", "--data", str(files / "few.npz"), "--out", str(out)], "--encoder", out)


def test_episode_level_bad_input_names_the_episode():
    good = dot_episodes([0], 2)
    small = dot_episodes([0], 1, size=28)[0]
    with pytest.raises(ValueError, match="episode 2 has 28x28x3 frames, episode 0 has 24x24x3"):
        demos_from_episodes([*good, small])
    obs = good[0].observations
    no_actions = Episode(obs, np.zeros((len(good[0]), 0), np.float32), np.zeros(len(good[0])),
                         good[0].terminated, good[0].truncated)
    with pytest.raises(ValueError, match="episode 1 has no actions"):
        demos_from_episodes([good[0], no_actions])
    floats = Episode(obs["image"].astype(np.float32), good[0].actions, good[0].rewards, good[0].terminated,
                     good[0].truncated)
    with pytest.raises(ValueError, match="frames must be uint8"):
        demos_from_episodes([floats])
    with pytest.raises(ValueError, match="expects 64x64x3"):
        check_frame(demos_from_episodes(good), (64, 64, 3), "the encoder")


def test_pair_sampler_views(tmp_path):
    demos = demos_from_episodes(dot_episodes([0, 3], 2))
    same = PairSampler(demos, k=0).sample(16)
    assert np.array_equal(same["obs"], same["future_obs"]) and same["obs"].dtype == np.uint8
    pairs = PairSampler(demos, k=2).sample(16)
    assert pairs["obs"].shape == (16, 24, 24, 3) and pairs["action"].shape == (16, 2)
    assert set(pairs["task"].tolist()) <= {0, 1} and demos.buffer.tasks == ["0", "3"]
    demos.buffer.save(tmp_path / "d.npz")
    assert load_demos(tmp_path / "d.npz").has_state


def test_make_demos_then_pretrain_and_finetune_on_the_mujoco_env(tmp_path, capsys):
    """`robokit pretrain make-demos` (the hidden-context env's expert) feeds `pretrain` and `finetune-bc`,
    whose policy is rolled out in the held-out context of the real MuJoCo env."""
    pytest.importorskip("mujoco")
    pytest.importorskip("robokit.pretrain.demos")  # the hidden-context envs and their demo writer (issue 13, idenv)
    corpus, few = tmp_path / "corpus.npz", tmp_path / "few.npz"
    assert robokit(["pretrain", "make-demos", "--contexts", "0,1", "--episodes-per-context", "1", "--noise", "0.1",
                    "--out", str(corpus)]) == 0
    assert robokit(["pretrain", "make-demos", "--contexts", "11", "--episodes-per-context", "1", "--seed", "1",
                    "--out", str(few)]) == 0
    assert load_demos(corpus).frame == (64, 64, 3) and load_demos(corpus).has_state
    assert robokit(["pretrain", "--objective", "inverse_dynamics", "--data", str(corpus), "--out", str(tmp_path / "id"),
                    "--steps", "2", "--batch-size", "4", *SMALL]) == 0
    assert robokit(["finetune-bc", "--encoder", str(tmp_path / "id" / "final.pt"), "--data", str(few),
                    "--out", str(tmp_path / "ft"), "--head.steps", "3", "--head.batch-size", "4", "--no-progress",
                    "--logger", "none", "--eval-env", "robokit/PointMassGoal-v0", "--eval-context", "11",
                    "--eval-episodes", "1"]) == 0
    assert "success" in capsys.readouterr().out
    assert (tmp_path / "ft" / "eval.json").is_file()
