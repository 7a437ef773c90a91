"""The shipped deploy paths, checked offline: compose, the images and the Kubernetes manifests.

No engine or cluster is needed here: `docker compose config` runs without a daemon, the
compose-spec and Kubernetes schemas are bundled, and hadolint lints the Dockerfiles. The compose
stack itself runs end to end in backend/tests/compose/, on a real engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from stack.render import SHARED_SOURCES
from stack.settings import REPO

BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
COMPOSE = REPO / "docker-compose.yml"
BACKEND = REPO / "backend"
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


@pytest.mark.parametrize(
    "profiles",
    [(), ("--profile", "loadtest", "--profile", "observability", "--profile", "dashboards")],
)
def test_compose_config_is_clean(profiles: tuple[str, ...]) -> None:
    result = compose_config(*profiles)
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_its_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose_config(env_file=str(empty))
    assert result.returncode != 0
    assert "MYSQL_ADMIN_PASSWORD" in result.stderr or "MYSQL_APP_PASSWORD" in result.stderr


def test_compose_file_matches_the_compose_spec() -> None:
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def build_contexts() -> set[Path]:
    """Every folder compose builds an image from."""
    return {
        (REPO / service["build"]).resolve()
        for service in compose_services().values()
        if "build" in service
    }


def copied_into_images() -> set[Path]:
    """Every repo file a built image COPYs in (a copied folder counts with all its files)."""
    copied: set[Path] = set()
    for context in build_contexts():
        for line in (context / "Dockerfile").read_text().splitlines():
            words = line.split()
            if not words or words[0] != "COPY" or any(w.startswith("--from") for w in words):
                continue
            for source in (w for w in words[1:-1] if not w.startswith("--")):
                path = (context / source).resolve()
                copied |= set(path.rglob("*")) if path.is_dir() else {path}
    return copied


IMAGE_SOURCES = (*SHARED_SOURCES, REPO / "backend" / "gunicorn.conf.py")


@pytest.mark.parametrize("source", IMAGE_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_compose_images_hold_the_same_files_the_native_launcher_uses(source: Path) -> None:
    assert source.resolve() in copied_into_images()


def test_every_built_image_starts_from_the_one_debian_base() -> None:
    for context in build_contexts():
        bases = [
            line.split()[1]
            for line in (context / "Dockerfile").read_text().splitlines()
            if line.startswith("FROM ")
        ]
        assert bases, context
        assert set(bases) == {"debian:bookworm-slim"}, context


def test_every_compose_service_that_runs_has_a_healthcheck_or_is_a_one_shot() -> None:
    for name, service in compose_services().items():
        one_shot = service.get("restart") == "no"
        built = (
            "build" in service
            and "HEALTHCHECK" in ((REPO / service["build"]) / "Dockerfile").read_text()
        )
        tool = bool(service.get("profiles")) and name.startswith(("locust", "grafana"))
        assert one_shot or built or tool or "healthcheck" in service, name


def test_every_published_port_is_a_documented_variable_bound_to_bind_host() -> None:
    """...or, for nginx's internal listener, to the host's loopback whatever BIND_HOST says."""
    documented = (REPO / ".env.example").read_text()
    host = r"(?:\$\{BIND_HOST:-127\.0\.0\.1\}|127\.0\.0\.1(?=:\$\{NGINX_INTERNAL_PORT))"
    for name, service in compose_services().items():
        for port in service.get("ports", []):
            match = re.fullmatch(host + r":\$\{([A-Z_]+):-\d+\}:\d+", port)
            assert match, f"{name}: {port}"
            assert re.search(rf"^{match.group(1)}=\d+$", documented, re.MULTILINE), match.group(1)


# Settings compose sets itself for the API's processes (hosts of the stack, names per container).
SET_BY_COMPOSE = {"api_name", "db_primary", "db_replicas", "redis_url", "heartbeat_health_file"}
# The native launcher's own (a container runtime knows its processes' pids).
SET_BY_COMPOSE |= {"heartbeat_pid_file", "pid_file"}
# A relay's or worker's own: its name is the container's, its metrics port and address set on its
# service; the API is no broker client, so each queue service gets its role's user and password.
SET_BY_COMPOSE |= {"process_name", "metrics_port", "metrics_host", "nats_user", "nats_password"}


def test_compose_hands_every_api_setting_to_the_api_containers() -> None:
    environment = compose_services()["api"]["environment"]
    missing = {name.upper() for name in Settings.model_fields if name not in SET_BY_COMPOSE} - set(
        environment
    )
    assert not missing


def test_the_locust_image_pins_what_the_dev_requirements_pin() -> None:
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.lower().split("==") for line in lines if "==" in line)

    locust, dev = (
        pins(REPO / "loadtest" / "requirements.txt"),
        pins(BACKEND / "requirements-dev.txt"),
    )
    dev |= pins(BACKEND / "requirements.txt")
    assert "locust" in locust
    assert {name: dev.get(name) for name in locust} == locust


@pytest.mark.parametrize(
    "dockerfile", sorted(REPO.glob("*/Dockerfile")), ids=lambda p: p.parent.name
)
def test_every_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = run(BIN / "hadolint", "--config", REPO / ".hadolint.yaml", dockerfile)
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


def nginx_image_env() -> set[str]:
    """The names nginx/Dockerfile sets with ENV."""
    text = (REPO / "nginx" / "Dockerfile").read_text()
    block = re.search(r"^ENV (.*?)(?:\n(?!\s))", text, re.MULTILINE | re.DOTALL)
    assert block is not None
    return set(re.findall(r"([A-Z_][A-Z0-9_]*)=", block.group(1)))


def test_every_nginx_template_placeholder_is_set_in_compose_and_kubernetes() -> None:
    """The image's entrypoint refuses to start with a placeholder unset: a new setting of the
    template must reach both deployments."""
    template = (REPO / "nginx" / "nginx.conf.template").read_text()
    needed = set(re.findall(r"\$\{([A-Z0-9_]+)\}", template)) - {"NGINX_UPSTREAM_SERVERS"}
    compose_file = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    compose_env = set(compose_file["services"]["nginx"]["environment"]) | nginx_image_env()
    k8s_docs = list(yaml.safe_load_all((REPO / "k8s" / "nginx.yaml").read_text()))
    k8s_env = {
        variable["name"]
        for doc in k8s_docs
        if doc and doc.get("kind") == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", [])
    } | nginx_image_env()
    assert needed - compose_env == set()
    assert needed - k8s_env == set()
