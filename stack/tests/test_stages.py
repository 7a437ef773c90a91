"""`make stage N` (stack/stages.py): what each step of the chapter renders."""

from __future__ import annotations

import pytest

from stack import stages
from stack.nginx import nginx_values
from stack.render import supervisor_config
from stack.settings import REPO, Stack, read_env_file


def at_stage(n: int | None) -> Stack:
    env = read_env_file(REPO / ".env.example")
    return Stack({**env, **(stages.overrides(n) if n else {})})


def stage_server(stack: Stack) -> str | None:
    return stages.sections(supervisor_config(stack)).get(f"program:{stages.SERVER}")


@pytest.mark.parametrize(
    ("n", "replicas", "cache"), [(1, False, False), (2, True, False), (3, True, True)]
)
def test_stages_1_to_3_are_one_api_server_with_one_worker(
    n: int, replicas: bool, cache: bool
) -> None:
    stack = at_stage(n)
    section = stage_server(stack)
    assert section is not None
    assert 'GUNICORN_WORKERS="1"' in section
    assert f'API_BIND="127.0.0.1:{stack.env["STAGE_PORT"]}"' in section
    assert ('DB_REPLICAS=""' not in section) is replicas
    assert f'CACHE_ENABLED="{str(cache).lower()}"' in section
    assert f'RATE_LIMIT_ENABLED="{str(cache).lower()}"' in section
    assert stages.server_ports(stack) == [8087]


@pytest.mark.parametrize(("n", "edge"), [(1, "off"), (4, "off"), (5, "on")])
def test_the_edge_is_on_in_stage_5_only(n: int, edge: str) -> None:
    assert nginx_values(at_stage(n))["EDGE_CACHE"] == edge


@pytest.mark.parametrize("n", [4, 5, None])
def test_from_stage_4_on_and_without_a_stage_there_is_no_stage_server(n: int | None) -> None:
    stack = at_stage(n)
    assert stage_server(stack) is None
    assert stages.server_ports(stack) == []


def test_stage_5_renders_the_full_stack_as_make_up_does() -> None:
    assert stages.only_the_stage_changed(
        supervisor_config(at_stage(None)), supervisor_config(at_stage(5))
    )
    assert nginx_values(at_stage(5)) == nginx_values(at_stage(None))


def test_moving_between_stages_changes_the_stage_server_alone() -> None:
    one, three = supervisor_config(at_stage(1)), supervisor_config(at_stage(3))
    assert stages.only_the_stage_changed(one, three)
    other = Stack({**at_stage(3).env, "GUNICORN_WORKERS": "4"})
    assert not stages.only_the_stage_changed(one, supervisor_config(other))


@pytest.mark.parametrize("wanted", ["0", "6", "two"])
def test_an_unknown_stage_is_refused(wanted: str) -> None:
    with pytest.raises(SystemExit, match="STAGE"):
        stages.number(Stack({**at_stage(None).env, "STAGE": wanted}))
