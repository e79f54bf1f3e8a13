"""Where a study is stored: the SQLite file in the output folder by default, any Optuna RDB URL,
or a journal file; passwords in URLs never reach a message."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

__all__ = ["storage_for", "redact", "scrub"]


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
                return optuna.storages.RDBStorage(storage, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except Exception as exc:  # driver errors, unreachable hosts, bad URLs
            raise ConfigError(f"cannot open storage {redact(storage)}: {scrub(str(exc), storage)[:200]}") from None
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        return JournalStorage(JournalFileBackend(str(Path(storage).expanduser())))
    except OSError as exc:
        raise ConfigError(f"cannot open journal storage {storage}: {exc.strerror or exc}") from None


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
