"""The `robokit` command: top-level help, and --help on every subcommand and sub-subcommand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from robokit.cli import SUBCOMMANDS, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robokit", *args], capture_output=True, text=True,
                          timeout=300)


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_unknown_command_fails_with_usage(capsys: pytest.CaptureFixture) -> None:
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(command: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in (result.stdout + result.stderr).lower()


NESTED = {
    "dataset": ["info", "convert"],
    "robustness": ["train", "eval", "saliency"],
    "kitti": ["track", "eval-tracking", "train-detector", "eval-detection"],
    "ros": ["bag-to-dataset", "dataset-to-bag", "run"],
}


@pytest.mark.parametrize("command,sub", [(c, s) for c, subs in NESTED.items() for s in subs])
def test_nested_subcommands_have_help(command: str, sub: str) -> None:
    result = run_cli(command, sub, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
