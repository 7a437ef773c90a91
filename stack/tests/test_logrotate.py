"""Logs the servers write themselves are rotated by copy and truncate, keeping a bounded number."""

from __future__ import annotations

from pathlib import Path

from stack.logrotate import rotate_all


def test_nginx_logs_are_renamed_and_nginx_told_to_reopen_them(tmp_path: Path) -> None:
    log = tmp_path / "nginx-access.log"
    log.write_bytes(b"x" * 200)
    reopened: list[bool] = []
    with log.open("ab") as writer:  # nginx, holding it open until told to reopen
        assert rotate_all(tmp_path, 100, 3, lambda: reopened.append(True)) == [log]
        writer.write(b"until reopened\n")  # lands in the renamed file: no line lost
    assert reopened == [True]
    assert (tmp_path / "nginx-access.log.1").read_bytes() == b"x" * 200 + b"until reopened\n"
    assert not log.exists()  # nginx creates it anew when it reopens


def test_a_mariadb_log_over_the_bound_is_copied_and_emptied_in_place(tmp_path: Path) -> None:
    log = tmp_path / "mysql-replica-1.err"
    log.write_bytes(b"x" * 200)
    with log.open("ab") as writer:  # a server holding it open for appending, as nginx does
        assert rotate_all(tmp_path, max_bytes=100, backups=3) == [log]
        writer.write(b"next line\n")
    assert (tmp_path / "mysql-replica-1.err.1").read_bytes() == b"x" * 200
    assert log.read_bytes() == b"next line\n"  # at the new end, not at offset 200


def test_only_so_many_copies_are_kept(tmp_path: Path) -> None:
    log = tmp_path / "mysql-primary.err"
    for n in range(5):
        log.write_bytes(str(n).encode() * 200)
        rotate_all(tmp_path, max_bytes=100, backups=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mysql-primary.err",
        "mysql-primary.err.1",
        "mysql-primary.err.2",
    ]
    assert (tmp_path / "mysql-primary.err.1").read_bytes() == b"4" * 200


def test_small_logs_and_other_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "nginx-error.log").write_bytes(b"x" * 50)
    (tmp_path / "api-1.log").write_bytes(b"x" * 500)  # supervisord's to rotate
    assert rotate_all(tmp_path, max_bytes=100, backups=3) == []
