"""mysql/setup-replication.sh refuses bad settings before it connects to anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stack.settings import REPO, read_env_file

SCRIPT = REPO / "mysql" / "setup-replication.sh"


def run_script(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **read_env_file(REPO / ".env.example"),
        "PATH": os.environ["PATH"],
        "MYSQL_PRIMARY_HOST": "127.0.0.1",
        "MYSQL_PRIMARY_PORT": "9",  # the discard port: nothing may be reached
        "MYSQL_WAIT_SECONDS": "1",
        **overrides,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize(
    "name", ["MYSQL_ADMIN_PASSWORD", "MYSQL_APP_PASSWORD", "MYSQL_REPL_PASSWORD"]
)
def test_production_refuses_each_development_password(name: str) -> None:
    real = {
        n: "a-real-password"
        for n in ("MYSQL_ADMIN_PASSWORD", "MYSQL_APP_PASSWORD", "MYSQL_REPL_PASSWORD")
    }
    result = run_script(
        APP_ENV="production", **{**real, name: f"dev-{name.split('_')[1].lower()}-password"}
    )
    assert result.returncode != 0
    assert f"{name} is a development password" in result.stderr


def test_development_accepts_the_example_passwords() -> None:
    result = run_script(APP_ENV="development")
    # It goes on to wait for the (absent) primary: past the settings check.
    assert "development password" not in result.stderr
    assert "no answer from 127.0.0.1:9" in result.stderr


def test_production_refuses_the_kubernetes_placeholder() -> None:
    result = run_script(
        APP_ENV="production",
        MYSQL_ADMIN_PASSWORD="replace-me",
        MYSQL_APP_PASSWORD="a-real-password",
        MYSQL_REPL_PASSWORD="a-real-password",
    )
    assert "MYSQL_ADMIN_PASSWORD is a development password" in result.stderr


def in_script(call: str, **env: str) -> str:
    """The output of CALL, a function of setup-replication.sh run with ENV."""
    result = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; {call}'],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize(
    ("position", "foreign"),
    [
        ("0-1-99", ""),  # before the promotion point: the new primary has it
        ("0-1-100", ""),
        ("0-2-108", ""),  # written by the new primary, which has it
        ("0-1-105", "0-1-105"),  # the former primary went on alone after the promotion point
        ("0-2-111", "0-2-111"),  # beyond anything the new primary wrote
        ("0-1-100,1-1-5", "1-1-5"),  # a domain the new primary never saw
    ],
)
def test_a_node_whose_history_the_primary_lacks_is_named(position: str, foreign: str) -> None:
    # The new primary (server_id 2) was promoted at 0-1-100 and has written up to 0-2-110.
    found = in_script(f'foreign_gtids "{position}" "0-1-100" 2 "0-2-110"')
    assert found.split() == foreign.split()


def test_the_failover_record_names_the_primary_and_the_rest_are_replicas(tmp_path: Path) -> None:
    record = tmp_path / "topology.env"
    record.write_text("# comment\nPRIMARY=db2:3306\nPROMOTED_AT=0-1-7\nEPOCH=1\n")
    members = {
        "MYSQL_PRIMARY_HOST": "db1",
        "MYSQL_PRIMARY_PORT": "3306",
        "MYSQL_REPLICAS": "db2:3306,db3:3306",
    }
    out = in_script(
        "load_topology; echo \"$PRIMARY|$PRIMARY_FOR_REPLICAS_HOST|${REPLICA_LIST//$'\\n'/,}\"",
        MYSQL_TOPOLOGY_FILE=str(record),
        **members,
    )
    assert out.strip() == "db2:3306|db2|db1:3306,db3:3306"
    without = in_script("load_topology; echo \"$PRIMARY|${REPLICA_LIST//$'\\n'/,}\"", **members)
    assert without.strip() == "db1:3306|db2:3306,db3:3306"


def test_a_record_naming_no_member_is_refused(tmp_path: Path) -> None:
    record = tmp_path / "topology.env"
    record.write_text("PRIMARY=elsewhere:3306\n")
    result = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; load_topology'],
        env={
            "PATH": os.environ["PATH"],
            "MYSQL_TOPOLOGY_FILE": str(record),
            "MYSQL_PRIMARY_HOST": "db1",
            "MYSQL_PRIMARY_PORT": "3306",
            "MYSQL_REPLICAS": "db2:3306",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "names elsewhere:3306 as primary, which is not among" in result.stderr


def test_failover_needs_a_mode_and_a_record_file() -> None:
    failover = REPO / "mysql" / "failover.sh"
    env = {**read_env_file(REPO / ".env.example"), "PATH": os.environ["PATH"]}
    env |= {"MYSQL_PRIMARY_HOST": "127.0.0.1", "MYSQL_PRIMARY_PORT": "9"}
    for args, message in (
        ([], "usage: failover.sh failover|switchover"),
        (["failover"], "MYSQL_TOPOLOGY_FILE is not set"),
    ):
        result = subprocess.run(
            ["bash", str(failover), *args], env=env, capture_output=True, text=True, timeout=30
        )
        assert result.returncode != 0
        assert message in result.stderr


@pytest.mark.parametrize(
    ("position", "missing"),
    [
        ("0-1-100", ""),  # all it wrote as the primary, it still has
        ("", "0-1-100"),  # re-initialised: its own writes would be skipped by replication
        ("0-1-40", "0-1-100"),
    ],
)
def test_a_node_that_lost_what_it_wrote_itself_is_named(position: str, missing: str) -> None:
    # Promoted at 0-1-100: the last GTID before the failover was written by server_id 1.
    found = in_script(f'own_gtids_missing "{position}" "0-1-100" 1')
    assert found.split() == missing.split()


@pytest.mark.parametrize(
    ("read_only", "semi_sync", "role"),
    [
        ("ON", "ON", "SLAVE"),
        ("ON", "OFF", "MASTER"),
        ("OFF", "ON", "MASTER"),
        ("OFF", "OFF", "MASTER"),
    ],
)
def test_only_a_read_only_node_with_semi_sync_recovers_as_a_replica(
    read_only: str, semi_sync: str, role: str
) -> None:
    """As a replica, a crash's in-doubt tail (a commit waiting for its ack: never answered) is cut
    from the binlog; as a primary it would be committed, and a former primary would diverge."""
    assert in_script(f"startup_rpl_role {read_only} {semi_sync}") == role


def test_start_node_passes_the_recovery_role_from_the_nodes_own_option_file(
    tmp_path: Path,
) -> None:
    """start-node.sh runs the server with --read-only and --init-rpl-role: a replica whose option
    file has the semi-sync replica side on recovers as one, the configured primary as a primary."""
    config = tmp_path / "my.cnf"
    config.write_text("[mariadbd]\nrpl_semi_sync_slave_enabled = ON\n")
    start = REPO / "mysql" / "start-node.sh"

    def started(role: str) -> str:
        return subprocess.run(
            ["bash", str(start), "127.0.0.1:3307", role, "echo", f"--defaults-file={config}"],
            env={"PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()[1:]

    assert started("replica") == ["--read-only=ON", "--init-rpl-role=SLAVE"]
    assert started("primary") == ["--read-only=OFF", "--init-rpl-role=MASTER"]
    config.write_text("[mariadbd]\nrpl_semi_sync_slave_enabled = OFF\n")
    assert started("replica") == ["--read-only=ON", "--init-rpl-role=MASTER"]


def test_the_former_primary_keeps_a_copy_of_its_last_binlog_once_per_failover(
    tmp_path: Path,
) -> None:
    """Recovering as a replica cuts an in-doubt tail from the binlog: the former primary the
    record names (PREVIOUS) keeps a copy first, for an operator, and only once per failover."""
    datadir = tmp_path / "node" / "data"
    datadir.mkdir(parents=True)
    (datadir / "mysql-bin.index").write_text("./mysql-bin.000001\n./mysql-bin.000002\n")
    (datadir / "mysql-bin.000002").write_bytes(b"the tail")
    record = tmp_path / "topology"
    record.write_text("PRIMARY=127.0.0.1:3308\nPREVIOUS=127.0.0.1:3307\nEPOCH=3\n")
    env = {"MYSQL_TOPOLOGY_FILE": str(record)}
    kept = tmp_path / "node" / "binlog-kept-epoch-3" / "mysql-bin.000002"

    assert in_script(f'keep_binlog_tail 127.0.0.1:3309 "{datadir}"', **env) == ""  # not it
    assert not kept.parent.exists()
    assert "kept a copy" in in_script(f'keep_binlog_tail 127.0.0.1:3307 "{datadir}"', **env)
    assert kept.read_bytes() == b"the tail"
    (datadir / "mysql-bin.000002").write_bytes(b"cut, then replicated")
    assert in_script(f'keep_binlog_tail 127.0.0.1:3307 "{datadir}"', **env) == ""  # once
    assert kept.read_bytes() == b"the tail"
