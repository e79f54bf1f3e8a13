"""Where the libraries' chatter goes: what native code (TensorFlow, the TFLite converter, LiteRT,
TFLite Micro) writes to file descriptor 2 is captured and sent to Python's `logging`, under the
`nas` logger, instead of the terminal; a caller decides where that logging goes."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile

__all__ = ["captured_stderr", "stderr_to_log"]


@contextlib.contextmanager
def captured_stderr():
    """Capture file descriptor 2 for the block; the text is appended to the yielded list on exit."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            box: list[str] = []
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            box.append(sink.read().decode(errors="replace"))


@contextlib.contextmanager
def stderr_to_log(logger: str):
    """What native code writes to file descriptor 2 during the block (the TFLite converter's and
    interpreters' notices), sent to `logging.getLogger(logger)` at DEBUG instead of the terminal."""
    box: list[str] = []
    try:
        with captured_stderr() as box:
            yield
    finally:
        text = box[-1].strip() if box else ""
        if text:
            logging.getLogger(logger).debug("%s", text)
