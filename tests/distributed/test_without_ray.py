"""Without ray: the flag names the extra to install (exit 2, nothing written); one process needs no ray."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.distributed.conftest import ENV_ID, REPO_ROOT


@pytest.fixture
def no_ray(monkeypatch):
    """Hide ray as if it were not installed (``import ray`` raises ImportError)."""
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)


def test_distributed_flag_names_the_extra(no_ray, sac_checkpoint, tmp_path, capsys):
    from robokit.data.cli import collect_main
    from robokit.distributed.sweep import main as sweep_main
    from robokit.trainers.cli import eval_main, train_main

    config = tmp_path / "sweep.yaml"
    config.write_text(f"algo: sac\nout: {tmp_path / 'sweep'}\nbase: {{env: {ENV_ID}}}\n")
    commands = [
        (eval_main, ["--checkpoint", str(sac_checkpoint), "--distributed", "ray"]),
        (collect_main, ["--env", ENV_ID, "--out", str(tmp_path / "data-v0"), "--distributed", "ray"]),
        (train_main, ["--algo", "sac", "--env", ENV_ID, "--out", str(tmp_path / "run"), "--distributed", "ray"]),
        (sweep_main, [str(config)]),
    ]
    for main, argv in commands:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pip install -c constraints.txt -e '.[distributed]'" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]  # nothing written


def test_one_process_never_imports_ray(sac_checkpoint):
    code = ("import sys; from robokit.cli import main; "
            f"assert main(['eval', '--checkpoint', {str(sac_checkpoint)!r}, '--episodes', '1']) == 0; "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT, timeout=300,
                   env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "MUJOCO_GL": "egl"})


def test_bad_distributed_flags_are_one_line_errors(tmp_path, capsys):
    from robokit.trainers.cli import eval_main

    for argv, message in ((["--workers", "0"], "--workers must be >= 1, got 0"),
                          (["--address", "auto"], "--address needs --distributed ray")):
        assert eval_main(["--checkpoint", str(tmp_path / "x.pt"), *argv]) == 2
        assert capsys.readouterr().err.strip() == f"robokit eval: error: {message}"


def test_ray_with_vector_envs_is_a_one_line_error(tmp_path, capsys):
    """Each Ray task is one episode in one env, so --distributed ray refuses --num-envs > 1."""
    pytest.importorskip("ray")
    from robokit.data.cli import collect_main
    from robokit.trainers.cli import eval_main

    message = "--distributed ray runs one episode per task in one env; use it with --num-envs 1"
    for name, main, argv in (("eval", eval_main, ["--checkpoint", str(tmp_path / "x.pt")]),
                             ("collect", collect_main, ["--out", str(tmp_path / "data-v0")])):
        assert main([*argv, "--distributed", "ray", "--num-envs", "2"]) == 2
        assert capsys.readouterr().err.strip() == f"robokit {name}: error: {message}"
    assert list(tmp_path.iterdir()) == []  # nothing written

