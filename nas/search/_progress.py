"""The search's progress bar (tqdm on stderr; a notebook widget in Jupyter, through tqdm.auto)."""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int, initial: int, enabled: bool):
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc="trials", unit="trial", file=sys.stderr,
                             dynamic_ncols=True, mininterval=0.5)

    def update(self, n: int, postfix: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
