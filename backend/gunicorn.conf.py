"""gunicorn settings of one API replica, all from the environment (see .env.example)."""

import contextlib
import os
import sys

from gunicorn.glogging import Logger


def fresh_metrics_dir() -> None:
    """Start each run with an empty prometheus_client dir: a dead run's counters must not count.

    Runs before anything imports the app (whose metrics open files in that dir at import).
    """
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        os.makedirs(metrics_dir, exist_ok=True)
        for name in os.listdir(metrics_dir):
            os.remove(os.path.join(metrics_dir, name))


fresh_metrics_dir()
# gunicorn reads this file before it puts the app's folder on sys.path. Never import the app
# package here: workers forked after a reload (SIGHUP) would inherit its old code.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonlog import JsonFormatter  # noqa: E402 (needs the two steps above)
from onewrite import install as one_write_per_answer  # noqa: E402

# Each answer's headers and body in one system call: a worker killed mid-answer never leaves
# nginx with headers and no body (onewrite.py).
one_write_per_answer()


class NoAccessLogger(Logger):
    """gunicorn's logger without its access log, which nginx writes (with the request id).

    gunicorn turns its access log on whenever logconfig_dict is set, and then formats a line
    for every request even though no handler prints it: a tenth of a bare request's CPU here.
    """

    def access(self, resp: object, req: object, environ: object, request_time: object) -> None:
        """Write nothing."""


# API_BIND empty: the unix socket alone (the native launcher's default, API_TCP_PORTS=false).
bind = [address] if (address := os.environ.get("API_BIND", "127.0.0.1:8001")) else []
# The native stack's nginx reaches the replica on a unix socket as well (see .env.example).
if unix_socket := os.environ.get("API_UNIX_SOCKET"):
    bind.append(f"unix:{unix_socket}")
# The socket's mode is 0666 minus this mask: 0660 by default, so that only the stack's own
# account and group (nginx runs as it) may connect, never any other local user.
umask = int(os.environ.get("API_SOCKET_UMASK", "0117"), 8)
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
# Threads per worker (gthread only).
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, workers finish the requests they hold for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 30
# The native launcher finds its processes by their pid files (stack/processes.py).
pidfile = os.environ.get("API_PID_FILE") or None
# Request bounds: nginx's are lower (large_client_header_buffers, 4 x 4k by default), so nginx
# refuses an oversized request line or header first, in problem+json. These are gunicorn's
# maximums, so its own HTML 414 / 431 cannot be reached through nginx.
limit_request_line = 8190
limit_request_fields = 32768
limit_request_field_size = 8190
proc_name = os.environ.get("API_NAME", "api")
# Processes are managed by supervisord (or the container runtime); several API replicas on one
# host would otherwise share gunicorn's default control socket path.
control_socket_disable = True
# nginx writes the access log (with the request id); the app logs JSON to stderr.
accesslog = None
logger_class = NoAccessLogger
errorlog = "-"
# gunicorn's own lines (boot, worker exits, timeouts) in the same JSON shape as the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter, "served_by": proc_name}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["error_console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "INFO", "propagate": False},
    },
}


def when_ready(server: object) -> None:
    """SOCKET_SNDBUF_BYTES (push processes): the kernel's send buffer of every connection, fixed
    (no autotuning up to megabytes), so a client that stops reading holds little and its
    backlog reaches the app, which drops it (docs/push.md). Accepted sockets inherit it."""
    size = int(os.environ.get("SOCKET_SNDBUF_BYTES", "0"))
    if size:
        import socket

        for listener in server.LISTENERS:  # type: ignore[attr-defined]
            listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


# WORKERS_READY_DIR (set by the native launcher): a file per worker that has loaded the app,
# named by its pid, and CONFIG_READ, touched whenever this file is read. `make up` adds new
# workers and retires the old ones only once the new ones are ready (stack/rolling.py).
ready_dir = os.environ.get("WORKERS_READY_DIR", "")


def on_starting(server: object) -> None:
    """A new master: no worker is ready yet."""
    if ready_dir:
        os.makedirs(ready_dir, exist_ok=True)
        for name in os.listdir(ready_dir):
            os.remove(os.path.join(ready_dir, name))
        on_reload(server)


def on_reload(server: object) -> None:
    """This file was read again (a start or a HUP)."""
    if ready_dir:
        with open(os.path.join(ready_dir, "CONFIG_READ"), "w"):
            pass


def post_worker_init(worker: object) -> None:
    """This worker has loaded the app and is about to take requests."""
    if ready_dir:
        with open(os.path.join(ready_dir, str(os.getpid())), "w"):
            pass


def child_exit(server: object, worker: object) -> None:
    """Tell prometheus_client that a worker is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
    if ready_dir:
        # (absent when it died before it was ready)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(ready_dir, str(worker.pid)))  # type: ignore[attr-defined]
