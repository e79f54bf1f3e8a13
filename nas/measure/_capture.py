"""What C++ code writes to file descriptor 2, captured (TFLite Micro reports there)."""

from __future__ import annotations

import contextlib
import os
import tempfile

__all__ = ["captured_stderr"]


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
