"""What every command shares: one-line usage errors, checked numeric flags, JSON on a protected
stdout, reading text, checking folders."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError

__all__ = ["EXIT_USAGE", "VERBOSE", "Parser", "add_parser", "number", "positive_int", "nonnegative_int",
           "positive_float", "nonnegative_float", "seed", "print_json", "protect_stdout", "read_text", "check_writable"]

VERBOSE = "show what TensorFlow, the converter, LiteRT, TFLite Micro, Optuna and Ray report (a search also keeps it in search.log)"


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors (a bad flag, a missing argument, a refused value) printed as
    every other user mistake is: one line `nas: error: ...`, exit 2, pointing at the command's --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"nas: error: {message} (see `{self.prog} --help`)\n")


def number(kind: type, least: float | None = None, most: float | None = None,
           above: float | None = None) -> Callable[[str], Any]:
    """An argparse `type=` for a numeric flag: `kind` (int or float) at least `least`, at most `most`,
    strictly above `above`; a float must be finite. Anything else is refused before the command
    runs, in one line naming the flag, the value given and what is allowed."""
    words = "a whole number" if kind is int else "a finite number"
    show = lambda bound: f"{bound:g}" if isinstance(bound, float) else str(bound)  # noqa: E731 - 0.95, not 0.9500
    if least is not None and most is not None:
        allowed = f"{words} from {show(least)} to {show(most)}"
    elif above is not None:
        allowed = f"{words} above {show(above)}" + (f" and at most {show(most)}" if most is not None else "")
    else:
        allowed = f"{words}, {show(least)} or more" if least is not None else words

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected {allowed}") from None
        if (not math.isfinite(value) or (least is not None and value < least) or (most is not None and value > most)
                or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"{text} is not allowed; expected {allowed}")
        return value

    return parse


positive_int = number(int, least=1)
nonnegative_int = number(int, least=0)
positive_float = number(float, above=0)
nonnegative_float = number(float, least=0)
#: seeds reach numpy and Optuna's samplers, which take 0 to 2**32 - 1
seed = number(int, least=0, most=2**32 - 1)


def add_parser(subparsers, name: str, **kwargs):
    """A subcommand's parser, taking -v/--verbose after the command as well as before it."""
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
