"""What every command shares: JSON on a protected stdout, reading text, checking folders."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["EXIT_USAGE", "VERBOSE", "add_parser", "print_json", "protect_stdout", "read_text", "check_writable"]

VERBOSE = "show what TensorFlow, the converter, LiteRT, TFLite Micro, Optuna and Ray report (a search also keeps it in search.log)"


def add_parser(subparsers, name: str, **kwargs):
    """A subcommand's parser, taking -v/--verbose after the command as well as before it."""
    import argparse

    parser = subparsers.add_parser(name, **kwargs)
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE)
    return parser

EXIT_USAGE = 2
_JSON_OUT = None  # the real stdout while --json output is protected (see protect_stdout)


def read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def print_json(data: Any) -> None:
    out = _JSON_OUT or sys.stdout
    json.dump(data, out, indent=2, sort_keys=True, default=str)
    out.write("\n")
    out.flush()


def protect_stdout() -> None:
    """Keep --json output parseable: what libraries print to file descriptor 1 (Ray's worker
    notices, the TFLite converter's log lines) goes to stderr; the JSON keeps the real stdout."""
    global _JSON_OUT
    sys.stdout.flush()
    _JSON_OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


def check_writable(folder: Path) -> None:
    folder = folder if str(folder) else Path(".")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ConfigError(f"output folder {folder} cannot be written")
