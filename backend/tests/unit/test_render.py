"""Rendering of the shared templates for the native stack."""

from __future__ import annotations

import re

import pytest

from stack.render import nginx_values, render_template, supervisor_env
from stack.settings import REPO, Stack, read_env_file


def default_stack() -> Stack:
    return Stack(read_env_file(REPO / ".env.example"))


def test_render_fills_every_placeholder() -> None:
    assert render_template("a ${X} b ${Y}", {"X": "1", "Y": "2"}) == "a 1 b 2"


def test_render_refuses_a_placeholder_without_value() -> None:
    with pytest.raises(KeyError, match="MISSING"):
        render_template("${MISSING}", {})


def test_render_leaves_nginx_variables_alone() -> None:
    assert render_template("$request_id ${X}", {"X": "1"}) == "$request_id 1"


def test_nginx_template_renders_one_upstream_server_per_api_replica() -> None:
    stack = default_stack()
    text = render_template(
        (REPO / "nginx" / "nginx.conf.template").read_text(), nginx_values(stack)
    )
    assert "${" not in text
    assert text.count("server 127.0.0.1:80") == 3
    assert "listen 127.0.0.1:8080;" in text
    # POST and PATCH are never re-sent to a second replica once they reached one.
    retry_rule = re.search(r"^\s*proxy_next_upstream (.*);$", text, re.MULTILINE)
    assert retry_rule is not None
    assert "non_idempotent" not in retry_rule.group(1)


def test_supervisor_environment_is_quoted_and_escapes_percent() -> None:
    assert supervisor_env({"B": 'say "hi"', "A": "100%"}) == 'A="100%%",B="say \\"hi\\""'
