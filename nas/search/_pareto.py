"""The objectives a search can optimise, and Pareto dominance over metric rows (dicts) that mix
maximised and minimised metrics."""

from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["OBJECTIVES", "dominates", "non_dominated"]

#: objective name -> Optuna direction
OBJECTIVES = {"accuracy": "maximize", "latency_ms": "minimize", "size_bytes": "minimize", "peak_ram_bytes": "minimize",
              "energy_uj": "minimize"}


def _key(row: Mapping, objectives: Sequence[str]) -> list[float]:
    """Each objective as a value to minimise."""
    return [-row[o] if OBJECTIVES[o] == "maximize" else row[o] for o in objectives]


def dominates(a: Mapping, b: Mapping, objectives: Sequence[str]) -> bool:
    ka, kb = _key(a, objectives), _key(b, objectives)
    return all(x <= y for x, y in zip(ka, kb)) and any(x < y for x, y in zip(ka, kb))


def non_dominated(rows: Sequence[Mapping], objectives: Sequence[str]) -> list[Mapping]:
    """The rows no other row dominates, in their given order (duplicates all kept)."""
    return [r for r in rows if not any(dominates(o, r, objectives) for o in rows if o is not r)]
