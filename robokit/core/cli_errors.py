"""The one command-line error convention of every ``robokit`` command.

Bad input (a missing or malformed file, a wrong key, an out-of-range option, a refused
checkpoint, an occupied ``--out``) ends the command with exit code 2 and one line on
stderr, ``<prog>: error: <message naming the file/key/line>``, and no traceback. The
errors the library raises for bad input are the types in :data:`BAD_INPUT`; their
messages already name the file, key or line. ``--debug`` anywhere on the command line
(or ``ROBOKIT_DEBUG=1``) lets the exception through with its full traceback.

Every subcommand entry point is written as::

    def main(argv):
        return run_command("robokit kitti", argv, _main)

where ``_main(args)`` parses ``args`` and does the work.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence

from robokit.core.config import ConfigError
from robokit.core.errors import CheckpointError

DEBUG_FLAG = "--debug"
EXIT_BAD_INPUT = 2

#: exception types that mean "bad input" (their messages name the file/key/line)
BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, KeyError, IndexError, OSError, ImportError,
                                              CheckpointError, ConfigError)

_debug_depth = 0


def debug_requested(args: Sequence[str]) -> bool:
    """True when ``--debug`` is among ``args``, ``ROBOKIT_DEBUG=1`` is set, or an outer command had it."""
    return DEBUG_FLAG in args or os.environ.get("ROBOKIT_DEBUG", "") == "1" or _debug_depth > 0


def error_line(err: BaseException) -> str:
    """The message of ``err`` on one line (KeyError's repr quotes are dropped)."""
    text = err.args[0] if isinstance(err, KeyError) and err.args else err
    text = str(text).strip() or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def report(prog: str, err: BaseException) -> int:
    """Print ``err`` as the one-line CLI error of ``prog``; return the bad-input exit code."""
    print(f"{prog}: error: {error_line(err)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_command(prog: str, argv: Sequence[str] | None, body: Callable[[list[str]], int | None]) -> int:
    """Run ``body(args)`` under the error convention; returns its exit code (2 on bad input).

    Args:
        prog: the command's name as the user typed it, e.g. ``"robokit train"``.
        argv: the command's arguments (``sys.argv[1:]`` when None); ``--debug`` is removed.
        body: parses ``args`` and does the work; returns an exit code (None means 0).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(args)
    args = [arg for arg in args if arg != DEBUG_FLAG]
    if debug:
        with _debugging():
            return int(body(args) or 0)
    try:
        return int(body(args) or 0)
    except BAD_INPUT as err:
        return report(prog, err)


@contextlib.contextmanager
def _debugging() -> Iterator[None]:
    """Mark nested commands (``robokit kitti`` -> ``eval-detection``) as running under ``--debug``."""
    global _debug_depth
    _debug_depth += 1
    try:
        yield
    finally:
        _debug_depth -= 1
