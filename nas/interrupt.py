"""Ctrl-C that is not lost.

Python raises KeyboardInterrupt wherever the main thread is when the signal is handled. When that
is inside a finaliser or a weakref callback (garbage collection runs them at arbitrary points, and
TensorFlow leaves many), the exception is printed as "Exception ignored in ..." and discarded, and
the program goes on: seen here as a search that finished all its trials after Ctrl-C. So the CLI's
handler also records the interrupt, and the long loops (the search driver, every training epoch's
batches) call `check()`, which stops at the next safe point an interrupt that was swallowed; the
"Exception ignored" report of such a recorded interrupt is not printed, since it is not lost.
"""

from __future__ import annotations

import signal
import sys
import threading

__all__ = ["install", "check"]

_interrupted = threading.Event()


def _handler(signum, frame) -> None:
    _interrupted.set()
    raise KeyboardInterrupt


def install() -> None:
    """Record SIGINT as well as raising KeyboardInterrupt; leaves an ignored SIGINT ignored."""
    _interrupted.clear()
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread; a caller elsewhere keeps Python's
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)
        sys.unraisablehook = _unraisable


def _unraisable(unraisable) -> None:
    if issubclass(unraisable.exc_type, KeyboardInterrupt) and _interrupted.is_set():
        return  # recorded: check() raises it again where it can propagate
    sys.__unraisablehook__(unraisable)


def check() -> None:
    """Raise KeyboardInterrupt if SIGINT arrived since `install()`, even if its first raise was swallowed."""
    if _interrupted.is_set():
        raise KeyboardInterrupt
