"""The naive peer: nginx over one gunicorn running loadtest/naive_peer.py, on ports of its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtest.bench.config import PEER_API_PORT, PEER_PORT
from loadtest.harness.waits import wait_for
from stack.settings import REPO, Stack


def peer_nginx_config(stack: Stack, folder: Path) -> str:
    """The peer's nginx: a plain reverse proxy (same worker count, upstream keepalive and log
    buffering as the stack's, so the comparison is of what is behind it)."""
    return f"""worker_processes {stack.env["NGINX_WORKER_PROCESSES"]};
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {folder}/access.log combined buffer=64k flush=1s;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream peer {{ server 127.0.0.1:{PEER_API_PORT}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{PEER_PORT};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_pass http://peer;
        }}
        location = /lb-health {{ access_log off; return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""


def refuse_taken(ports: tuple[int, ...]) -> None:
    """Stop with a clear message if anything answers on PORTS: a peer left by an interrupted
    run would otherwise be measured in place of this one (its own nginx and gunicorn fail to
    bind, and the wait for /ping is answered by the old one)."""
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(
                    f"port {port} is taken (a naive peer left running by an interrupted bench?): "
                    "stop that process, or set BENCH_PEER_PORT / BENCH_PEER_API_PORT"
                )


@contextmanager
def naive_peer(stack: Stack) -> Iterator[str]:
    """Run the naive peer (nginx + gunicorn) on its own ports until the block ends; its URL."""
    # Beside the state dir, not in it: `make up` (which the bench runs to toggle the edge cache)
    # takes any nginx whose command line names the state dir for an orphan of the stack.
    refuse_taken((PEER_PORT, PEER_API_PORT))
    folder = stack.state.with_name(f"{stack.state.name}-bench-peer")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "nginx.conf").write_text(peer_nginx_config(stack, folder))
    env = stack.env
    app_db = f"{env['MYSQL_APP_USER']}:{env['MYSQL_APP_PASSWORD']}@{stack.host}"
    workers = len(stack.apis) * int(env["GUNICORN_WORKERS"])
    peer_env = {
        **os.environ,
        "PEER_PRIMARY_URL": f"mysql+pymysql://{app_db}:{stack.primary.port}/{env['MYSQL_DATABASE']}",
        "PEER_REPLICA_URL": f"mysql+pymysql://{app_db}:{stack.replicas[0].port}/{env['MYSQL_DATABASE']}",
        "PEER_REDIS_URL": f"redis://:{env['REDIS_PASSWORD']}@{stack.host}:{stack.redis_port}/0",
    }
    app = subprocess.Popen(
        [
            str(stack.venv / "bin" / "gunicorn"),
            f"--workers={workers}",
            f"--bind=127.0.0.1:{PEER_API_PORT}",
            "loadtest.naive_peer:create_app()",
        ],
        cwd=REPO,
        env=peer_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = subprocess.Popen(
        ["nginx", "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{PEER_PORT}"
        wait_for(f"{url}/ping")
        exited = [name for name, p in (("nginx", proxy), ("gunicorn", app)) if p.poll() is not None]
        if exited:
            raise SystemExit(f"the naive peer did not start: its {' and '.join(exited)} exited")
        print(f"naive peer: nginx :{PEER_PORT} over gunicorn, {workers} sync workers", flush=True)
        yield url
    finally:
        for process in (proxy, app):
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
