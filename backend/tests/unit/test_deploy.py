"""The shipped deploy paths, validated offline: compose, the API image and the Kubernetes manifests.

No Docker engine or cluster is needed: `docker compose config` runs without a daemon, the
compose-spec and Kubernetes schemas are bundled, and hadolint lints the Dockerfile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.render import SHARED_SOURCES
from stack.settings import REPO

BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
COMPOSE = REPO / "docker-compose.yml"
K8S_MANIFESTS = sorted(p for p in (REPO / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


def compose_config(*extra: str, env_file: str = ".env.example") -> subprocess.CompletedProcess[str]:
    clean_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return run(
        BIN / "docker-compose", "--env-file", env_file, *extra, "config", "-q", env=clean_env
    )


@pytest.mark.parametrize("profiles", [(), ("--profile", "loadtest", "--profile", "observability")])
def test_compose_config_is_clean(profiles: tuple[str, ...]) -> None:
    result = compose_config(*profiles)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose_config(env_file=str(empty))
    assert result.returncode != 0
    assert "MYSQL_ROOT_PASSWORD" in result.stderr or "MYSQL_APP_PASSWORD" in result.stderr


def test_compose_file_matches_the_compose_spec() -> None:
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def compose_mounts() -> set[Path]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    mounts = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                mounts.add((REPO / source).resolve())
    return mounts


@pytest.mark.parametrize("source", SHARED_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_compose_mounts_the_same_files_the_native_launcher_uses(source: Path) -> None:
    assert source.resolve() in compose_mounts()


def test_every_compose_service_that_runs_has_a_healthcheck_or_is_a_one_shot() -> None:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        built_in = service.get("build") is not None  # the API image has a HEALTHCHECK of its own
        tool = bool(service.get("profiles")) and name.startswith(("locust", "grafana"))
        assert one_shot or built_in or tool or "healthcheck" in service, name


def test_the_api_dockerfile_passes_hadolint() -> None:
    result = run(BIN / "hadolint", REPO / "backend" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("manifest", K8S_MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_are_valid(manifest: Path) -> None:
    result = run(BIN / "kubernetes-validate", "--strict", "-k", "1.30.0", manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kustomization_lists_every_manifest_and_the_shared_configs() -> None:
    kustomization = yaml.safe_load((REPO / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S_MANIFESTS)
    files = [
        f.split("=", 1)[1]
        for gen in kustomization["configMapGenerator"]
        for f in gen.get("files", [])
    ]
    assert {(REPO / "k8s" / f).resolve() for f in files} == {p.resolve() for p in SHARED_SOURCES}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_kustomization_builds_into_valid_resources(tmp_path: Path) -> None:
    secrets = REPO / "k8s" / "secrets.env"
    created = not secrets.exists()
    if created:
        shutil.copy(REPO / "k8s" / "secrets.env.example", secrets)
    try:
        built = run(
            "kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", REPO / "k8s"
        )
    finally:
        if created:
            secrets.unlink()
    assert built.returncode == 0, built.stderr
    output = tmp_path / "built.yaml"
    output.write_text(built.stdout)
    result = run(BIN / "kubernetes-validate", "--strict", "-k", "1.30.0", output)
    assert result.returncode == 0, result.stdout + result.stderr
