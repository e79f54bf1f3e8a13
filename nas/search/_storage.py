"""Where a study is stored: the SQLite file in the output folder by default, any Optuna RDB URL,
or a journal file; passwords in URLs never reach a message."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._pareto import OBJECTIVES
from ._record import count_trials
from ._samplers import make_sampler
from ._study import StudyConfig

__all__ = ["storage_for", "redact", "scrub", "open_study", "where_of"]


def storage_for(out_dir: Path, storage):
    """An opened Optuna storage: the SQLite file in `out_dir` by default, any RDB URL (both with
    heartbeats, so stale trials are found), or a journal file."""
    import warnings

    import optuna

    from ._stale import GRACE_S, HEARTBEAT_S

    if storage is None:
        storage = f"sqlite:///{(Path(out_dir) / 'study.db').resolve()}"
    if not isinstance(storage, str):  # already opened
        return storage
    if "://" in storage:
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                opened = optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
            if storage.startswith("sqlite:///"):
                _write_ahead(opened.engine)
            return opened
        except ImportError:  # the URL's database driver is not installed
            extra = " (pip install 'tinyml-nas[postgres]')" if storage.startswith("postgresql") else ""
            raise ConfigError(f"cannot open storage {redact(storage)}: its database driver is not installed{extra}") from None
        except Exception as exc:  # driver errors, unreachable hosts, bad URLs
            raise ConfigError(f"cannot open storage {redact(storage)}: {scrub(str(exc), storage)[:200]}") from None
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        return JournalStorage(JournalFileBackend(str(Path(storage).expanduser())))
    except OSError as exc:
        raise ConfigError(f"cannot open journal storage {storage}: {exc.strerror or exc}") from None


def _write_ahead(engine) -> None:
    """SQLite in write-ahead-log mode with normal syncing: a commit no longer waits for the disk twice,
    which halves a trial record's writes (1.9 ms to 0.9 ms per attribute, benchmarks/README), and a
    reader (the dashboard, `nas report` during a search) never blocks the search. A crash of the
    process loses nothing; a power cut may lose the last commits, which a resume redoes."""
    from sqlalchemy import event

    def pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # the connections opened to set up the schema: the next ones get the pragmas


def scrub(text: str, url: str) -> str:
    """`text` on one line with the URL's password, wherever it appears, replaced."""
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    text = " ".join(text.split())
    return text.replace(password, "***") if password else text


def redact(url: str) -> str:
    """A storage URL with its password replaced, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


#: an objective's name where people read it (the dashboard): the one the files give that value
METRIC_NAMES = {"accuracy": "proxy_val_accuracy"}


def open_study(config: StudyConfig, out_dir: Path, storage=None, identity: dict | None = None):
    """The Optuna study of `config` in `storage` (default: SQLite in `out_dir`), created or resumed.

    `identity` (`StudyConfig.identity`) is stored with a new study; resuming a stored study with a
    different one is a ConfigError naming what differs, except for budgets alone in a study that
    trained nothing yet. Without it the stored study is opened as is. A study that holds trials gets
    its Optuna sampler seeded past them (`make_sampler`): the seed alone would draw its first specs again."""
    import optuna

    directions = [OBJECTIVES[o] for o in config.objectives]
    try:
        study = optuna.create_study(study_name=config.name, storage=storage_for(out_dir, storage), directions=directions,
                                    sampler=make_sampler(config), load_if_exists=True)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot open study {config.name!r} in {where_of(storage, out_dir)}: "
                          f"{' '.join(str(exc).split())[:200]}") from None
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"the stored study {config.name!r} has other objectives; use another --out (or --storage)")
    held = len(study.get_trials(deepcopy=False))
    if identity is not None:
        stored = study.user_attrs.get("identity")
        changed = _changed(stored, identity)
        # a new study takes the identity; so does one that trained nothing (its asks were all rejected
        # before training) when only its budgets change: the rejections stay on record, judged anew
        if (stored is None and not held) or (changed and all(k.startswith("budgets.") for k in changed)
                                             and count_trials(study)[:2] == (0, 0)):
            study.set_user_attr("identity", identity)
            study.set_user_attr("config", json.dumps(config.to_dict(), default=str))
        elif stored != identity:
            raise ConfigError(f"the study {config.name!r} in {where_of(storage, out_dir)} was run with other settings: "
                              f"{_differences(stored, identity)}; resume with the same settings, or start a new study "
                              "with another --out (or --storage)")
    if held and not config.sampler.startswith("kerastuner-"):
        study.sampler = make_sampler(config, resumed_at=held)
    names = [METRIC_NAMES.get(o, o) for o in config.objectives]
    with warnings.catch_warnings():  # Optuna calls metric names experimental (since 3.2)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if study.metric_names != names:  # the dashboard names the objectives instead of "Objective 0", ...
            study.set_metric_names(names)
    return study


def where_of(storage, out_dir: Path) -> str:
    return redact(storage) if isinstance(storage, str) else str(out_dir)


def _flat(value, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def _changed(stored, wanted: dict) -> list[str]:
    """The flattened settings that differ between a stored identity and `wanted`, sorted (empty when
    `stored` is no identity at all: an earlier version's, or none)."""
    if not isinstance(stored, dict):
        return []
    old, new = _flat(stored), _flat(wanted)
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _differences(stored, wanted: dict) -> str:
    """'device: host-tflm, now cortex-m4; budgets.max_size_kb: 64, now 16' (or why they cannot be compared)."""
    if not isinstance(stored, dict):
        return "it was stored by an earlier version that recorded no comparable settings"
    old, new = _flat(stored), _flat(wanted)
    return "; ".join(f"{k}: {old.get(k, 'unset')}, now {new.get(k, 'unset')}" for k in _changed(stored, wanted))
