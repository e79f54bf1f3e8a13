"""Figures: matplotlib on the file-only Agg backend (an optional extra), written atomically."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_write_bytes

__all__ = ["pyplot", "save_png"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_png(fig, path: Path) -> None:
    """Render `fig` and write it atomically (no half-written image), then free it."""
    import io

    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
