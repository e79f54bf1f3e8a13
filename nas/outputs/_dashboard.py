"""`nas dashboard RUN`: optuna-dashboard (an optional extra) on a search's study storage.

It binds to 127.0.0.1 only: the dashboard has no authentication and offers routes that change the
study (tell, delete). Every trial's record is readable there as user attributes: size_bytes,
peak_ram_bytes, latency_ms, accuracy and val_accuracy, the reason a spec was rejected or failed,
and `violations` (each budget's overshoot, which the dashboard does not show as constraints).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .. import interrupt
from ..errors import ConfigError, DependencyError
from ..search import load_run_config, redact

__all__ = ["serve_dashboard", "DASHBOARD_INSTALL"]

DASHBOARD_INSTALL = "pip install 'tinyml-nas[dashboard]'  (optuna-dashboard 0.21)"


def serve_dashboard(run_dir: Path, *, port: int = 8080, storage: str | None = None,
                    ready: Callable[[str], None] | None = None) -> None:
    """Serve the dashboard of the search in `run_dir` on http://127.0.0.1:`port` (0: any free port)
    until interrupted; `ready(url)` is called once it listens."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    try:
        from optuna_dashboard import wsgi
    except ImportError:
        raise DependencyError(f"the dashboard needs optuna-dashboard, which is not installed: {DASHBOARD_INSTALL}") from None
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if storage is None:
        if not (run_dir / "study.db").is_file():
            raise ConfigError(f"{run_dir} holds no study.db; pass the search's --storage")
        storage = f"sqlite:///{(run_dir / 'study.db').resolve()}"
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not a port number (0-65535; 0 picks a free one)")

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:  # no line per request on the terminal
            pass

    try:
        server = make_server("127.0.0.1", port, wsgi(storage), handler_class=Quiet)
    except OSError as exc:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    url = f"http://127.0.0.1:{server.server_port}/dashboard/"
    if ready is not None:
        ready(f"study {config.name!r} ({redact(storage)}) at {url}")
    # not serve_forever(): a Ctrl-C whose KeyboardInterrupt a finaliser swallowed (SQLAlchemy and
    # the dashboard leave many) would leave the server running; interrupt.check() stops it
    server.timeout = 0.5
    try:
        while True:
            interrupt.check()
            server.handle_request()
    finally:
        server.server_close()
