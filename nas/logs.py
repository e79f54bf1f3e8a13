"""Where the libraries' chatter goes: what native code (TensorFlow, the TFLite converter, LiteRT,
TFLite Micro) writes to file descriptor 2 is captured and sent to Python's `logging`, under the
`nas` logger, instead of the terminal; a caller decides where that logging goes."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile

__all__ = ["captured_stderr", "stderr_to_log", "configure", "quiet_optuna", "RunLog", "notice", "LIBRARY_LOGGERS"]


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


#: Third-party loggers whose records a search's log keeps (and `-v` shows).
LIBRARY_LOGGERS = ("optuna", "ray", "tensorflow", "absl", "py.warnings", "keras_tuner")
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")


def configure(verbose: bool = False) -> None:
    """For an application (the `nas` command): library chatter never reaches the terminal, unless
    `verbose`, when it is shown as it happens. A search's records also go to its `search.log`."""
    import sys

    logging.captureWarnings(True)
    quiet = logging.getLogger("nas")
    quiet.setLevel(logging.DEBUG)
    quiet.propagate = False
    for name in ("nas", *LIBRARY_LOGGERS):
        logger = logging.getLogger(name)
        logger.propagate = False  # and no last-resort printing: a handler is always there
        logger.addHandler(logging.NullHandler())
        if verbose:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_FORMAT)
            logger.addHandler(handler)
            if logger.level > logging.INFO or logger.level == logging.NOTSET:
                logger.setLevel(logging.DEBUG if name == "nas" else logging.INFO)


def quiet_optuna() -> None:
    """Optuna prints "A new study created ..." through its own handler: send it through `logging`
    like every other library (call after Optuna is imported)."""
    import optuna

    optuna.logging.disable_default_handler()
    logging.getLogger("optuna").setLevel(logging.INFO)


class _Buffer(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RunLog:
    """A search's log file (`search.log` in its output folder): every `nas` record (native notices
    included) and the third-party libraries' logging while the run lasts. Records are held in
    memory until `attach` names the file, so a search refused on bad input writes nothing; on
    `close` the handlers go and the `nas` logger is as it was."""

    def __init__(self):
        self._handler: logging.Handler = _Buffer()
        self._nas = logging.getLogger("nas")
        self._saved = (self._nas.level, self._nas.propagate)
        self._nas.setLevel(logging.DEBUG)
        self._nas.propagate = False  # a caller's own logging set-up does not get our debug records
        for name in ("nas", *LIBRARY_LOGGERS):
            logging.getLogger(name).addHandler(self._handler)
        # Optuna prints "A new study created ..." to stderr through a handler of its own: while the run
        # lasts its records go to the log like every library's, so a library call is as quiet as the CLI
        self._optuna_handlers: list[logging.Handler] = []
        try:
            import optuna

            optuna.logging.get_logger("optuna")  # its handler is added on first use
        except ImportError:
            pass
        optuna_logger = logging.getLogger("optuna")
        for handler in list(optuna_logger.handlers):
            if type(handler) is logging.StreamHandler:
                self._optuna_handlers.append(handler)
                optuna_logger.removeHandler(handler)

    def attach(self, path) -> None:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(_FORMAT)
        for record in getattr(self._handler, "records", []):
            handler.handle(record)
        self._swap(handler)

    def _swap(self, handler: logging.Handler | None) -> None:
        for name in ("nas", *LIBRARY_LOGGERS):
            logger = logging.getLogger(name)
            logger.removeHandler(self._handler)
            if handler is not None:
                logger.addHandler(handler)
        self._handler.close()
        self._handler = handler

    def close(self) -> None:
        if self._handler is not None:
            self._swap(None)
        for handler in self._optuna_handlers:  # a caller's Optuna prints as it did before the run
            logging.getLogger("optuna").addHandler(handler)
        self._optuna_handlers = []
        self._nas.setLevel(self._saved[0])
        self._nas.propagate = self._saved[1]

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def notice(message: str) -> None:
    """One line the user should read (a dataset substitution, a mode that failed), on stderr
    whatever the verbosity, and in the log."""
    import sys

    print(f"nas: {message}", file=sys.stderr, flush=True)
    logging.getLogger("nas").info("notice: %s", message)
