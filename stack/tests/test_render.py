"""Rendering of the shared templates for the native stack."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from stack import settings
from stack.account import Account
from stack.mysql import mysql_config
from stack.nginx import nginx_values
from stack.programs import supervisor_env
from stack.render import supervisor_config
from stack.settings import REPO, Stack, read_env_file, searchable_by_all
from stack.templates import render_template


def default_stack(**overrides: str) -> Stack:
    return Stack({**read_env_file(REPO / ".env.example"), **overrides})


def test_render_fills_every_placeholder() -> None:
    assert render_template("a ${X} b ${Y}", {"X": "1", "Y": "2"}) == "a 1 b 2"


def test_render_refuses_a_placeholder_without_value() -> None:
    with pytest.raises(KeyError, match="MISSING"):
        render_template("${MISSING}", {})


def test_render_leaves_nginx_variables_alone() -> None:
    assert render_template("$request_id ${X}", {"X": "1"}) == "$request_id 1"


def test_nginx_template_renders_one_upstream_server_per_api_replica() -> None:
    stack = default_stack(API_UNIX_SOCKETS="false")
    text = render_template(
        (REPO / "nginx" / "nginx.conf.template").read_text(), nginx_values(stack)
    )
    assert "${" not in text
    assert text.count("server 127.0.0.1:80") == 3
    assert "listen 127.0.0.1:8080;" in text
    # A POST or PATCH that reached a replica is sent to a second one only with an Idempotency-Key.
    resent = re.findall(r"location (?:\S+ )?(\S+) \{(?:[^{}]|\{[^{}]*\})*?non_idempotent", text)
    assert resent == ["/_resendable/"]
    assert '"~^[A-Z]+:." 1;' in text  # a write with a key, of any method but GET and HEAD


@pytest.mark.parametrize(
    ("write_s", "answer_s", "refused"), [("4", "4", True), ("2.5", "4", False)]
)
def test_nginx_resends_a_write_only_after_the_api_had_all_its_time(
    write_s: str, answer_s: str, refused: bool
) -> None:
    """Both ways to run refuse an answer timeout not above the API's write deadline: the native
    render, and the image's entrypoint."""
    overrides = {"DB_WRITE_DEADLINE_S": write_s, "NGINX_ANSWER_TIMEOUT_S": answer_s}
    if refused:
        with pytest.raises(SystemExit, match="DB_WRITE_DEADLINE_S"):
            nginx_values(default_stack(**overrides))
    else:
        nginx_values(default_stack(**overrides))
    entrypoint = REPO / "nginx" / "docker-entrypoint.sh"
    script = (
        'die() { echo "$*" >&2; exit 1; }\n'
        f"eval \"$(sed -n '/^check_answer_timeout() {{/,/^}}/p' {entrypoint})\"\n"
        "check_answer_timeout"
    )
    checked = subprocess.run(
        ["bash", "-c", script], env={**os.environ, **overrides}, capture_output=True, text=True
    )
    assert (checked.returncode != 0) == refused, checked.stderr
    assert ("DB_WRITE_DEADLINE_S" in checked.stderr) == refused


def test_the_edge_cache_is_on_by_default_serves_only_while_its_purger_follows() -> None:
    template = (REPO / "nginx" / "nginx.conf.template").read_text()
    stack = default_stack(EDGE_CACHE_TTL_S="600", STACK_DIR="/srv/stack")
    text = render_template(template, nginx_values(stack))
    assert '"on:1:GET::::" 0;' in text
    assert 'map "on:$edge_following:$request_method:' in text
    assert "if (-f /srv/stack/nginx/edge-following-$time_iso8601) {" in text
    assert "proxy_cache_valid 200 404 600s;" in text
    assert "keys_zone=edge:128m max_size=4g inactive=600s" in text


def test_the_purger_deletes_copies_where_nginx_keeps_them() -> None:
    stack = default_stack(STACK_DIR="/srv/stack")
    section = programs(supervisor_config(stack, Account("zerotomillion", 990, 990)))["edge-purger"]
    assert "-m app.processes.edge_purger" in section
    for setting in (
        'EDGE_CACHE_DIR="/srv/stack/nginx/edge"',
        'EDGE_FOLLOWING_FILE="/srv/stack/nginx/edge-following"',
        'METRICS_PORT="9121"',
    ):
        assert setting in section
    assert "proxy_cache_path /srv/stack/nginx/edge " in render_template(
        (REPO / "nginx" / "nginx.conf.template").read_text(), nginx_values(stack)
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("EDGE_CACHE", "yes"), ("EDGE_CACHE_TTL_S", "1s"), ("EDGE_CACHE_TTL_S", "0")],
)
def test_a_bad_edge_cache_setting_stops_the_render(name: str, value: str) -> None:
    with pytest.raises(SystemExit, match=name):
        nginx_values(default_stack(**{name: value}))


def test_the_https_listener_is_there_only_when_asked_with_its_certificate(tmp_path: Path) -> None:
    template = (REPO / "nginx" / "nginx.conf.template").read_text()
    assert " ssl;" not in render_template(template, nginx_values(default_stack()))
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    stack = default_stack(NGINX_TLS="on", NGINX_TLS_CERT=str(cert), NGINX_TLS_KEY=str(key))
    text = render_template(template, nginx_values(stack))
    assert "listen 127.0.0.1:8443 ssl;" in text
    assert f"ssl_certificate {cert};" in text
    assert f"ssl_certificate_key {key};" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert stack.nginx_tls_ports == [8443]


def test_the_https_listener_makes_its_own_certificate_once(tmp_path: Path) -> None:
    stack = default_stack(NGINX_TLS="on", STACK_DIR=str(tmp_path))
    first = nginx_values(stack)["NGINX_TLS_LISTEN"]
    made = (tmp_path / "tls" / "cert.pem").read_bytes()
    assert f"ssl_certificate {tmp_path / 'tls' / 'cert.pem'};" in first
    assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    nginx_values(stack)
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == made


@pytest.mark.parametrize(
    "overrides",
    [{"NGINX_TLS": "yes"}, {"NGINX_TLS": "on", "NGINX_TLS_CERT": "/nonexistent.pem"}],
)
def test_a_bad_tls_setting_stops_the_render(overrides: dict[str, str]) -> None:
    with pytest.raises(SystemExit, match="NGINX_TLS"):
        nginx_values(default_stack(**overrides))


def test_supervisor_environment_is_quoted_and_escapes_percent() -> None:
    assert supervisor_env({"B": 'say "hi"', "A": "100%"}) == 'A="100%%",B="say \\"hi\\""'


def test_nginx_reaches_api_replicas_on_their_unix_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "searchable_by_all", lambda path: True)
    stack = default_stack(STACK_DIR="/srv/stack")
    servers = nginx_values(stack)["NGINX_UPSTREAM_SERVERS"].split("\n")
    assert [line.split()[1] for line in servers] == [
        f"unix:/srv/stack/run/api-{i}.sock" for i in (1, 2, 3)
    ]


@pytest.mark.parametrize(("tcp_ports", "bind"), [("false", ""), ("true", "127.0.0.1:8001")])
def test_a_replica_with_a_socket_listens_on_its_tcp_port_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, tcp_ports: str, bind: str
) -> None:
    monkeypatch.setattr(settings, "searchable_by_all", lambda path: True)
    stack = default_stack(STACK_DIR="/srv/stack", API_TCP_PORTS=tcp_ports)
    assert f'API_BIND="{bind}"' in supervisor_config(stack).split("[program:api-1]")[1]


def test_a_replica_without_a_socket_always_listens_on_its_tcp_port(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    stack = default_stack(STACK_DIR=str(private / "stack"), API_TCP_PORTS="false")
    assert 'API_BIND="127.0.0.1:8001"' in supervisor_config(stack).split("[program:api-1]")[1]


def test_nginx_uses_tcp_where_its_workers_could_not_reach_a_socket(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    stack = default_stack(STACK_DIR=str(private / "stack"))
    assert stack.api_socket(stack.apis[0]) is None
    assert "server 127.0.0.1:8001 " in nginx_values(stack)["NGINX_UPSTREAM_SERVERS"]


def test_nginx_uses_tcp_where_a_socket_path_would_be_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "searchable_by_all", lambda path: True)
    stack = default_stack(STACK_DIR="/" + "d" * 100)
    assert stack.api_socket(stack.apis[0]) is None


def test_searchable_by_all_checks_every_existing_folder(tmp_path: Path) -> None:
    assert searchable_by_all(Path("/no-such-folder/api-1.sock"))
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert not searchable_by_all(private / "run" / "api-1.sock")


def programs(config: str) -> dict[str, str]:
    """[program:x] name -> its section."""
    sections = config.split("[program:")[1:]
    return {section.split("]", 1)[0]: section for section in sections}


def test_every_program_runs_as_the_account_and_supervisord_keeps_its_socket_apart() -> None:
    stack = default_stack(STACK_DIR="/srv/stack")
    config = supervisor_config(stack, Account("zerotomillion", 990, 990))
    sections = programs(config)
    assert set(sections) >= {"mysql-primary", "redis", "heartbeat", "api-1", "nginx", "logrotate"}
    assert all("\nuser=zerotomillion\n" in section for section in sections.values())
    assert "file=/srv/stack/supervisor/supervisor.sock" in config
    assert "/srv/stack/run/supervisor" not in config
    assert 'API_SOCKET_UMASK="0117"' in sections["api-1"]


def test_without_an_account_programs_run_as_the_launchers_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    sections = programs(supervisor_config(default_stack(STACK_DIR="/srv/stack")))
    assert not any("\nuser=" in section for section in sections.values())
    # nginx's workers then run as nobody: the sockets stay open to them.
    assert 'API_SOCKET_UMASK="0"' in sections["api-1"]


def test_mariadb_is_told_the_user_it_runs_as() -> None:
    stack = default_stack(STACK_DIR="/srv/stack")
    assert "\nuser = zerotomillion\n" in mysql_config(stack, stack.primary, 1, "zerotomillion")


def test_each_broker_node_gets_its_own_ports_and_every_route_with_its_account() -> None:
    stack = default_stack(STACK_DIR="/srv/stack", NATS_ROUTE_PASSWORD="r0ute")
    sections = programs(supervisor_config(stack, Account("zerotomillion", 990, 990)))
    assert [name for name in sections if name.startswith("nats-")] == ["nats-1", "nats-2", "nats-3"]
    node = sections["nats-2"]
    assert "--pid /srv/stack/run/nats-2.pid" in node  # the command line names the state dir
    for setting in (
        'NATS_SERVER_NAME="nats-2"',
        'NATS_CLIENT_PORT="4223"',
        'NATS_CLUSTER_PORT="6223"',
        'NATS_MONITOR_ADDRESS="0"',  # no HTTP monitor: it answers any local account
        'NATS_SYSTEM_USER="system"',
        'NATS_STORE_DIR="/srv/stack/nats/nats-2"',
        'NATS_ROUTE_USER="route"',
        'NATS_ROUTE_PASSWORD="r0ute"',
        'NATS_ROUTES="[nats-route://route:r0ute@127.0.0.1:6222, '
        'nats-route://route:r0ute@127.0.0.1:6223, nats-route://route:r0ute@127.0.0.1:6224]"',
    ):
        assert setting in node


def test_relays_and_workers_each_get_a_name_a_metrics_port_and_a_pid_file() -> None:
    stack = default_stack(STACK_DIR="/srv/stack", RELAYS="2", WORKERS="3")
    sections = programs(supervisor_config(stack, Account("zerotomillion", 990, 990)))
    assert "-m app.processes.relay" in sections["relay-2"]
    assert 'METRICS_PORT="9102"' in sections["relay-2"]
    assert "-m app.processes.worker" in sections["worker-3"]
    assert 'METRICS_PORT="9113"' in sections["worker-3"]
    assert 'PID_FILE="/srv/stack/run/worker-3.pid"' in sections["worker-3"]
    assert (
        'NATS_SERVERS="nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"'
        in (sections["worker-1"])
    )


def test_push_processes_run_an_asyncio_worker_with_the_broker_and_no_database_secret() -> None:
    stack = default_stack(STACK_DIR="/srv/stack", PUSH_REPLICAS="3")
    sections = programs(supervisor_config(stack, Account("zerotomillion", 990, 990)))
    push = sections["push-3"]
    assert "'app.processes.push:create_app()'" in push
    assert 'GUNICORN_WORKER_CLASS="uvicorn_worker.UvicornWorker"' in push
    assert 'GUNICORN_WORKERS="1"' in push
    assert 'API_BIND="127.0.0.1:8103"' in push
    assert 'PUSH_NAME="push-3"' in push
    assert 'API_PID_FILE="/srv/stack/run/push-3.pid"' in push
    assert "NATS_SERVERS=" in push
    for secret in ("MYSQL_APP_PASSWORD", "REDIS_PASSWORD", "APP_SECRET_KEY", "MYSQL_ROOT"):
        assert secret not in push


def test_nginx_routes_streams_to_every_push_process_and_serves_the_live_page() -> None:
    stack = default_stack(STACK_DIR="/srv/stack", PUSH_REPLICAS="2")
    config = render_template(
        (REPO / "nginx" / "nginx.conf.template").read_text(), nginx_values(stack)
    )
    upstream = config[config.index("upstream push {") :]
    upstream = upstream[: upstream.index("}")]
    assert "server 127.0.0.1:8101" in upstream
    assert "server 127.0.0.1:8102" in upstream
    assert f"alias {REPO}/nginx/web/live.html;" in config
    assert "limit_conn streams 20;" in config
    assert (REPO / "nginx" / "web" / "live.html").is_file()


def test_the_live_page_s_policy_allows_exactly_its_own_inline_script_and_style() -> None:
    """nginx's Content-Security-Policy for /live names the SHA-256 of the page's one <script>
    and one <style>: a change to either without the policy's is a blank page in browsers."""
    html = (REPO / "nginx" / "web" / "live.html").read_text()
    policy = re.search(
        r'add_header Content-Security-Policy "([^"]+)"',
        (REPO / "nginx" / "nginx.conf.template").read_text(),
    )
    assert policy is not None
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        assert len(blocks) == 1, tag
        digest = base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in policy.group(1), tag
    assert "frame-ancestors 'none'" in policy.group(1)


def test_each_broker_client_gets_its_roles_user_and_the_api_none() -> None:
    """nats/nats-server.conf allows each role its own subjects: a process gets its role's pair as
    NATS_USER / NATS_PASSWORD, and the API (no broker client) none of the roles' passwords."""
    stack = default_stack(
        NATS_RELAY_PASSWORD="s-relay",
        NATS_WORKER_PASSWORD="s-worker",
        NATS_READER_PASSWORD="s-read",
    )
    sections = programs(supervisor_config(stack, Account("zerotomillion", 990, 990)))
    for program, user, password in (
        ("relay-1", "relay", "s-relay"),
        ("worker-1", "worker", "s-worker"),
        ("push-1", "reader", "s-read"),
        ("edge-purger", "reader", "s-read"),
    ):
        assert f'NATS_USER="{user}"' in sections[program], program
        assert f'NATS_PASSWORD="{password}"' in sections[program], program
    for password in ("s-relay", "s-worker", "s-read"):
        assert password not in sections["api-1"]


def test_the_image_fills_the_mariadb_template_as_the_launcher_does() -> None:
    """One instance template for both ways to run: the image's entrypoint (bash) and the native
    launcher fill it alike, odd characters included, and both refuse a name left without a
    value."""
    entrypoint = REPO / "mysql" / "docker-entrypoint.sh"
    template = (REPO / "mysql" / "conf" / "instance.cnf.template").read_text()
    values = {
        name: f"{name.lower()} & \\1 'q' $HOME"
        for name in sorted(set(re.findall(r"\$\{([A-Z0-9_]+)\}", template)))
    }
    values["INSTANCE_LINES"] = "read_only = ON\nserver_id = 12"

    def bash_fill(pairs: dict[str, str]) -> subprocess.CompletedProcess[str]:
        script = (
            f'die() {{ echo "$*" >&2; exit 1; }}\n'
            f"eval \"$(sed -n '/^fill_template() {{/,/^}}/p' {entrypoint})\"\n"
            f'fill_template "$@"'
        )
        args = [f"{name}={value}" for name, value in pairs.items()]
        return subprocess.run(
            ["bash", "-c", script, "fill", str(REPO / "mysql/conf/instance.cnf.template"), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    filled = bash_fill(values)
    assert filled.returncode == 0, filled.stderr
    assert filled.stdout == render_template(template, values)
    del values["PORT"]
    refused = bash_fill(values)
    assert refused.returncode != 0
    assert "no value for ${PORT}" in refused.stderr
    with pytest.raises(KeyError, match="PORT"):
        render_template(template, values)
