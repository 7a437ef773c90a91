"""nginx as the launcher runs it: its config from the shared template (nginx/nginx.conf.template,
which compose and Kubernetes fill too), its program, and the edge purger beside it with the
switch file both read (docs/caching.md)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

from stack.account import Account
from stack.programs import app_program, digest, supervisor_program
from stack.settings import NGINX_SETTINGS, REPO, Node, Stack

NGINX_TEMPLATE = REPO / "nginx" / "nginx.conf.template"
# The live page and anything else nginx serves from the repo by itself.
NGINX_WEB_DIR = REPO / "nginx" / "web"


def upstream_address(stack: Stack, api: Node) -> str:
    """How nginx reaches API: its unix socket where there is one (cheaper than loopback TCP)."""
    socket = stack.api_socket(api)
    return f"unix:{socket}" if socket else f"{stack.host}:{api.port}"


def nginx_values(stack: Stack) -> dict[str, str]:
    """Values for nginx/nginx.conf.template on the native stack."""
    if stack.env["EDGE_CACHE"] not in ("on", "off"):
        raise SystemExit(f"EDGE_CACHE must be on or off, not {stack.env['EDGE_CACHE']!r}")
    if not stack.env["EDGE_CACHE_TTL_S"].isdigit() or int(stack.env["EDGE_CACHE_TTL_S"]) < 1:
        raise SystemExit(
            f"EDGE_CACHE_TTL_S must be whole seconds >= 1: {stack.env['EDGE_CACHE_TTL_S']!r}"
        )
    # nginx sends a keyed write again only once the API had all its time to answer it.
    if float(stack.env["DB_WRITE_DEADLINE_S"]) >= float(stack.env["NGINX_ANSWER_TIMEOUT_S"]):
        raise SystemExit(
            "DB_WRITE_DEADLINE_S must be below NGINX_ANSWER_TIMEOUT_S (docs/reliability.md)"
        )
    servers = "\n".join(
        f"        server {upstream_address(stack, api)} max_fails=1 fail_timeout=2s;"
        for api in stack.apis
    )
    return {
        "NGINX_WORKER_PROCESSES": stack.env["NGINX_WORKER_PROCESSES"],
        "NGINX_PID_FILE": str(stack.state / "run" / "nginx.pid"),
        "NGINX_ERROR_LOG": str(stack.state / "logs" / "nginx-error.log"),
        "NGINX_ACCESS_LOG": str(stack.state / "logs" / "nginx-access.log"),
        "NGINX_TEMP_DIR": str(stack.state / "nginx"),
        "NGINX_MAX_BODY_SIZE": stack.env["NGINX_MAX_BODY_SIZE"],
        "NGINX_HEADER_BUFFERS": stack.env["NGINX_HEADER_BUFFERS"],
        "NGINX_HEADER_BUFFER": stack.env["NGINX_HEADER_BUFFER"],
        **{name: stack.env[name] for name in NGINX_SETTINGS},
        "NGINX_UPSTREAM_SERVERS": servers,
        "NGINX_PUSH_UPSTREAM_SERVERS": "\n".join(
            f"        server {stack.host}:{push.port} max_fails=1 fail_timeout=2s;"
            for push in stack.pushes
        ),
        "NGINX_WEB_DIR": str(NGINX_WEB_DIR),
        "NGINX_LISTEN": f"{stack.host}:{stack.nginx_port}",
        "NGINX_INTERNAL_LISTEN": f"127.0.0.1:{stack.nginx_internal_port}",
        "NGINX_INTERNAL_PORT": str(stack.nginx_internal_port),
        "NGINX_TLS_LISTEN": tls_listener(stack),
        "EDGE_FOLLOWING_FILE": str(edge_following_file(stack)),
    }


def config_file(stack: Stack) -> Path:
    """The rendered config nginx runs on."""
    return stack.state / "nginx.conf"


def loaded_file(stack: Stack) -> Path:
    """The fingerprint of the config nginx last loaded, written by the launcher."""
    return stack.state / "run" / "nginx.conf.loaded"


def config_changed(stack: Stack) -> bool:
    """Whether the rendered config differs from the one nginx last loaded (or that is unknown).

    A reload (HUP) is not free for clients: the old workers close their idle keepalive
    connections, and a request a client sends on one at that instant is answered with a
    closed connection (1 in 12,000 reads over 30 reloads, measured). So `make up` reloads nginx
    only when there is something new to load.
    """
    loaded = loaded_file(stack)
    return not loaded.exists() or loaded.read_text() != digest(config_file(stack).read_text())


def mark_loaded(stack: Stack) -> None:
    """Note that nginx has just loaded the rendered config (started, or reloaded)."""
    loaded_file(stack).write_text(digest(config_file(stack).read_text()))


def subject_name(host: str) -> str:
    """HOST as a certificate's subjectAltName entry."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"DNS:{host}"
    return f"IP:{host}"


def tls_files(stack: Stack) -> tuple[Path, Path]:
    """The HTTPS listener's certificate and key: NGINX_TLS_CERT / NGINX_TLS_KEY when given,
    else a self-signed pair for localhost and the stack's host, made once in the state dir."""
    cert, key = stack.env["NGINX_TLS_CERT"], stack.env["NGINX_TLS_KEY"]
    if cert or key:
        if not (cert and key and Path(cert).is_file() and Path(key).is_file()):
            raise SystemExit("NGINX_TLS_CERT and NGINX_TLS_KEY must both name readable files")
        return Path(cert), Path(key)
    folder = stack.state / "tls"
    made_cert, made_key = folder / "cert.pem", folder / "key.pem"
    if not (made_cert.is_file() and made_key.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        names = sorted({"DNS:localhost", "IP:127.0.0.1", subject_name(stack.host)})
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825",
                "-subj", "/CN=localhost", "-addext", "subjectAltName=" + ",".join(names),
                "-keyout", str(made_key), "-out", str(made_cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        made_key.chmod(0o600)
    return made_cert, made_key


def tls_listener(stack: Stack) -> str:
    """The HTTPS listener's directives (NGINX_TLS=on), or nothing: the same server, the same
    locations, on NGINX_TLS_PORT; the API sees X-Forwarded-Proto https (docs/deploy.md)."""
    setting = stack.env["NGINX_TLS"]
    if setting not in ("on", "off"):
        raise SystemExit(f"NGINX_TLS must be on or off, not {setting!r}")
    if setting == "off":
        return ""
    cert, key = tls_files(stack)
    return (
        f"listen {stack.host}:{stack.env['NGINX_TLS_PORT']} ssl;\n"
        f"        ssl_certificate {cert};\n"
        f"        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        ssl_session_cache shared:tls:10m;"
    )


def edge_following_file(stack: Stack) -> Path:
    """The purger's switch (app/edge/nginx.py), beside the copies: where nginx's workers can
    reach, whatever account they run as. nginx serves copies while <it>-<this second> exists."""
    return stack.state / "nginx" / "edge-following"


def edge_serving(stack: Stack) -> bool:
    """Whether the edge purger holds a lease on the switch (it follows the event stream)."""
    switch = edge_following_file(stack)
    return any(switch.parent.glob(switch.name + "-*"))


def purger_program(stack: Stack, account: Account | None) -> str:
    """The edge purger of the one nginx (docs/caching.md): the broker and nginx's cache only."""
    names = ("APP_ENV", "LOG_LEVEL", "EVENTS_STREAM", "CONSUMER_NAME")
    env = {
        **{name: stack.env[name] for name in names},
        **stack.broker_login("READER"),
        **{k: v for k, v in stack.env.items() if k.startswith("EDGE_PURGE")},
        "EDGE_CACHE_TTL_S": stack.env["EDGE_CACHE_TTL_S"],
        "EDGE_LEASE_S": stack.env["EDGE_LEASE_S"],
        "EDGE_ID": stack.env["EDGE_ID"],
        "NATS_SERVERS": stack.nats_servers,
        "PROCESS_NAME": "edge-purger",
        "EDGE_CACHE_DIR": str(stack.state / "nginx" / "edge"),
        "EDGE_FOLLOWING_FILE": str(edge_following_file(stack)),
        "METRICS_PORT": stack.env["EDGE_PURGER_METRICS_PORT"],
        "PID_FILE": str(stack.state / "run" / "edge-purger.pid"),
    }
    return app_program(
        stack,
        "edge-purger",
        "app.processes.edge_purger",
        account,
        env,
        priority="25",
        stopwaitsecs="10",
    )


def nginx_program(stack: Stack, account: Account | None) -> str:
    """nginx's master, as ACCOUNT (its workers too), on the rendered config."""
    state = stack.state
    return supervisor_program(
        stack,
        "nginx",
        f"/usr/sbin/nginx -e {state / 'logs' / 'nginx-error.log'} "
        f"-c {config_file(stack)} -g 'daemon off;'",
        account,
        priority="30",
        # QUIT is nginx's graceful stop: requests in flight get their answers (TERM drops
        # them, and a committed write would be answered with a reset).
        stopsignal="QUIT",
        stopwaitsecs="20",
        # A master that cannot bind retries for ~2.5 s, then exits: longer than this, so
        # a port held by a stranger ends in FATAL instead of endless restarts.
        startsecs="3",
    )
