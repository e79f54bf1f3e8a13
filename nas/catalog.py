"""Where the catalogs (search spaces, devices, latency models, studies) live.

In a checkout they are the top-level folders next to `nas/`; in an installed wheel they are
packaged as `nas/catalogs/<name>/`. `NAS_CATALOG_DIR` overrides both (a folder holding the
same sub-folders), so users can add their own files without touching the package.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, UnknownNameError

__all__ = ["CATALOGS", "catalog_dirs", "catalog_candidates", "catalog_names", "catalog_file", "load_yaml"]

CATALOGS = ("search_spaces", "devices", "latency_models", "studies")
_SINGULAR = {"search_spaces": "search space", "devices": "device", "latency_models": "latency model", "studies": "study"}
_PACKAGE_DIR = Path(__file__).resolve().parent
_ROOT, _PACKAGED = str(_PACKAGE_DIR.parent), str(_PACKAGE_DIR / "catalogs")


def _roots(kind: str) -> list[str]:
    """The folders that may hold catalog `kind`, in search order (NAS_CATALOG_DIR, checkout, wheel)."""
    if kind not in CATALOGS:
        raise UnknownNameError("catalog", kind, CATALOGS)
    env = os.environ.get("NAS_CATALOG_DIR")
    return [os.path.join(root, kind) for root in ([env] if env else []) + [_ROOT, _PACKAGED]]


def catalog_dirs(kind: str) -> list[Path]:
    """The folders searched for catalog `kind`, first match wins."""
    return [Path(folder) for folder in _roots(kind) if os.path.isdir(folder)]


def catalog_candidates(kind: str, filename: str) -> list[str]:
    """Where a catalog file would be, in search order, without touching the file system (what a
    lookup made on every prediction stats, one path after another)."""
    return [os.path.join(folder, filename) for folder in _roots(kind)]


def catalog_names(kind: str, suffix: str = ".yaml") -> list[str]:
    names: set[str] = set()
    for folder in catalog_dirs(kind):
        names.update(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}"))
    return sorted(names)


def catalog_file(kind: str, name: str, suffix: str = ".yaml") -> Path:
    """The file of catalog entry `name`, or UnknownNameError listing the valid names."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise UnknownNameError(_SINGULAR[kind], name, catalog_names(kind, suffix))
    for folder in catalog_dirs(kind):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    raise UnknownNameError(_SINGULAR[kind], name, catalog_names(kind, suffix))


def load_yaml(path: Path) -> dict:
    """Read a YAML mapping with the safe loader; errors name the file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a YAML mapping, not {type(data).__name__}")
    return data
