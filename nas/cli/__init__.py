"""The `nas` command line: parses arguments and calls the public Python API, nothing more.

User mistakes (`NasError`, and argparse's usage errors: a numeric flag out of range, a missing argument)
print one line `nas: error: ...` and exit 2, without a traceback.
Commands live with their concern: `_explore` (space, datasets, evaluate), `_latency` (devices,
calibrate, predict), `_arm` (measure, firmware), `_search` (search, pareto, export, baselines, compare).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import __version__
from ..errors import NasError
from . import _arm, _explore, _latency, _search
from ._common import EXIT_USAGE, VERBOSE, Parser, protect_stdout

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nas", description="Hardware-aware neural architecture search for TinyML.")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for commands in (_explore, _latency, _arm, _search):
        commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        target = {"space": "space"}.get(args.command or "")
        parser.parse_args([target, "--help"] if target else ["--help"])
        return EXIT_USAGE
    if getattr(args, "json", False):
        protect_stdout()
    from .. import interrupt, logs

    logs.configure(verbose=args.verbose)
    interrupt.install()
    try:
        return args.func(args)
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
