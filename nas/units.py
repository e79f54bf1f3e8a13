"""Units shared by budgets, reports and exports.

Budgets and reports use KiB, as microcontroller flash and SRAM are quoted: 1 KB = 1024 bytes.
Everything else carries its unit in its name (`size_bytes`, `latency_ms`, `clock_mhz`).
"""

from __future__ import annotations

__all__ = ["KB"]

KB = 1024
