"""Every flag of every command has a help line, and choices are choices (Literal), not free strings.

The config classes are found by running each command's real entry point with ``--help`` while
tyro's two entry points are intercepted, so a subcommand added later is walked too.
"""

from __future__ import annotations

import argparse
import importlib
import re
import warnings
from unittest import mock

import pytest
import tyro

import robokit.core.config as core_config
from robokit.cli import SUBCOMMANDS

#: commands that route their own subcommands before tyro sees them
ROUTED = {"kitti": ["train-detector", "eval-detection"], "robofume": ["pretrain", "finetune", "reward", "make-data"]}
#: commands whose bare ``--help`` lists their subcommands (each parses its own flags)
DISPATCHERS = {"robofume"}
DEFAULT_ONLY = re.compile(r"^\s*(\((default|required|fixed)[^)]*\)\s*)*$")


class _Captured(Exception):
    pass


def _entry(command: str):
    module, _, function = SUBCOMMANDS[command][0].partition(":")
    return getattr(importlib.import_module(module), function)


def _capture(command: str, argv: list[str]) -> dict[str, type]:
    """{"robokit <command> <sub>": config class} of what ``robokit command argv --help`` parses."""
    found: dict[str, type] = {}

    def from_dict(commands, *args, prog=None, **kwargs):
        found.update({f"{prog} {name}": cls for name, cls in commands.items()})
        raise _Captured

    def parse(cls, args=None, description=None, prog=None):
        found[prog or command] = cls
        raise _Captured

    with mock.patch.object(tyro.extras, "subcommand_cli_from_dict", from_dict), \
            mock.patch.object(core_config, "parse", parse), pytest.raises(_Captured):
        _entry(command)([*argv, "--help"])
    return found


def all_config_classes() -> dict[str, type]:
    from robokit.algos import ALGOS

    classes: dict[str, type] = {}
    for command in SUBCOMMANDS:
        if command == "train":
            for algo in ALGOS.names():
                classes.update(_capture(command, ["--algo", algo]))
            continue
        if command not in DISPATCHERS:
            classes.update(_capture(command, []))
        for sub in ROUTED.get(command, []):
            classes.update(_capture(command, [sub]))
    return classes


CLASSES = all_config_classes()


def flags_without_help(cls: type) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        parser = tyro.extras.get_parser(cls)
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if DEFAULT_ONLY.match(action.help or ""):
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def test_every_command_is_walked():
    names = " | ".join(sorted(CLASSES))
    for expected in ("robokit train --algo wsrl", "robokit eval", "robokit collect", "robokit dataset info",
                     "robokit robustness train", "robokit kitti track", "robokit kitti eval-detection",
                     "robokit kitti train-detector", "robokit ros run", "robokit robofume pretrain --algo robofume",
                     "robokit robofume finetune"):
        assert expected in CLASSES, f"{expected} not found among: {names}"


@pytest.mark.parametrize("command", sorted(CLASSES))
def test_every_flag_has_help(command: str):
    assert flags_without_help(CLASSES[command]) == [], f"`{command} --help` lists flags without a help line"


CHOICES = {
    "robokit train --algo sac": ["--mix-mode", "--logger", "--agent.warmup-actions", "--agent.actor-q-reduction"],
    "robokit train --algo rlpd": ["--mix-mode", "--agent.warmup-actions", "--agent.actor-q-reduction"],
    "robokit train --algo wsrl": ["--mix-mode", "--agent.warmup-actions", "--agent.actor-q-reduction"],
}


@pytest.mark.parametrize("command", sorted(CHOICES))
def test_choice_flags_list_their_choices(command: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        parser = tyro.extras.get_parser(CLASSES[command])
    by_flag = {flag: action for action in parser._actions for flag in action.option_strings}
    for flag in CHOICES[command]:
        assert by_flag[flag].choices, f"{command} {flag} takes a free string, not one of its choices"
