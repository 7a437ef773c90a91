"""Schemathesis against /openapi.json on the test stack: generated requests never get a 5xx."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stack.settings import REPO, Stack

pytestmark = pytest.mark.integration


def test_generated_requests_never_get_a_server_error(
    stack: Stack, api_key: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "schemathesis"),
            "run",
            f"{stack.base_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--seed",
            "20261122",
            "--header",
            f"X-API-Key: {api_key}",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "passed" in result.stdout
