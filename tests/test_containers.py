"""The container files, checked without Docker: linters, the Compose schema, the house rules.

tests/containers/ builds and runs them; these catch mistakes in seconds.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest

from app import stack
from app.config import REPO_ROOT, Settings
from app.k8s import default_of
from tests.helpers import COMPOSE_FILE, load, services, tool

OVERRIDE_FILE = REPO_ROOT / "docker-compose.override.yml"
SCALE_FILE = REPO_ROOT / "compose" / "scale.yml"
DOCKERFILE = REPO_ROOT / "compose" / "Dockerfile"
DOCKERFILES = sorted(REPO_ROOT.glob("compose/**/Dockerfile"))
JOBS = {"trainer"}  # `docker compose run` jobs; every other service runs for good


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_hadolint_accepts(dockerfile):
    done = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_files_match_the_compose_specification():
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE_FILE), str(OVERRIDE_FILE), str(SCALE_FILE)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_v1_rejects_none_of_it():
    """What Debian's docker-compose 1.29 rejects, and learners' v2 accepts: never used."""
    for path in (COMPOSE_FILE, OVERRIDE_FILE, SCALE_FILE):
        text = load(path)
        assert "name" not in text and "include" not in text, path
        for name, service in text["services"].items():
            assert "develop" not in service, name
            assert "start_interval" not in service.get("healthcheck", {}), name
            for port in service.get("ports", []):
                assert isinstance(port, str), f"{name}: long-form ports break compose v1"
            for dependency in (service.get("depends_on") or {}).values():
                assert set(dependency) == {"condition"}, f"{name}: {dependency}"


def test_every_long_running_service_is_production_shaped():
    compose = services()
    for name, service in compose.items():
        image = default_of(service["image"])
        assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), name
        assert service.get("cpus") and service.get("mem_limit"), f"{name}: no resource limits"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, name
            assert "healthcheck" in compose[dependency], f"{dependency} has no healthcheck"
        if name in JOBS:
            assert service.get("profiles"), f"{name}: `up` would start the job"
            assert service["healthcheck"] == {"disable": True}, f"{name}: a job serves nothing"
            continue
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and "http://localhost:" in test[-1], f"{name}: {test}"
        assert service["restart"] == "unless-stopped", name


def test_state_lives_in_named_volumes_and_configs_are_read_only():
    declared = set(load(COMPOSE_FILE)["volumes"]) | set(load(SCALE_FILE)["volumes"])
    for path in (COMPOSE_FILE, SCALE_FILE):
        for name, service in services(path).items():
            for volume in service.get("volumes", []):
                source, target, *mode = volume.split(":")
                if source.startswith("."):
                    assert mode == ["ro"], f"{path.name} {name}: {volume} should be read-only"
                    # a missing one would be mounted as an empty folder, silently
                    assert (REPO_ROOT / source).exists(), f"{path.name} {name}: no {source}"
                else:
                    assert source in declared, f"{path.name} {name}: {source} is not a volume"


def test_scale_creates_the_database_its_replicas_share_and_the_api_image_can_reach_it():
    api = services(SCALE_FILE)["api"]["environment"]
    assert "WORKBOOK_FEEDBACK_STORE" not in api  # on, as everywhere
    url = api["WORKBOOK_FEEDBACK_DATABASE_URL"]
    found = re.fullmatch(r"postgresql\+(\w+)://mlflow:\$\{POSTGRES_PASSWORD\}@postgres:5432/(\w+)",
                         url)  # fmt: skip
    assert found, url
    driver, database = found.groups()
    init = REPO_ROOT / "compose" / "postgres" / "initdb.d"
    assert f"CREATE DATABASE {database};" in "".join(f.read_text() for f in init.glob("*.sql"))
    serve = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith(f"{driver}[binary]==") for r in serve["optional-dependencies"]["serve"])


def test_ports_are_published_on_localhost_only_with_the_native_ports():
    for path in (OVERRIDE_FILE, SCALE_FILE):
        for name, service in services(path).items():
            for port in service.get("ports", []):
                published = re.fullmatch(r"127\.0\.0\.1:\$\{(WORKBOOK_\w+_PORT):-(\d+)\}:\d+", port)
                assert published, f"{path.name} {name}: {port}: 127.0.0.1 and the native variable"
                field = published[1].removeprefix("WORKBOOK_").lower()
                assert int(published[2]) == Settings.model_fields[field].default, port


def test_compose_runs_the_native_stacks_services_with_their_configs():
    """One source of truth: the addresses the native stack rewrites are compose's services."""
    compose = services()
    native = {service.name for service in stack.services(Settings(_env_file=None))}
    assert native <= set(compose), native - set(compose)
    for address in stack.compose_addresses(Settings(_env_file=None)):
        if ":" in address and not address.startswith("localhost"):
            name, port = address.split(":")
            published = services(OVERRIDE_FILE)[name]["ports"][0]
            assert published.endswith(f":{port}"), f"{name} listens on {port} natively"
    mounts = {name: service.get("volumes", []) for name, service in compose.items()}
    assert "./compose/prometheus:/etc/prometheus:ro" in mounts["prometheus"]
    assert "./compose/alertmanager:/etc/alertmanager:ro" in mounts["alertmanager"]
    assert "./compose/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts["grafana"]


def test_scale_prometheus_config_differs_only_in_finding_the_api():
    prometheus = REPO_ROOT / "compose" / "prometheus"
    base, scale = (load(prometheus / name) for name in ("prometheus.yml", "prometheus.scale.yml"))
    api = [job for job in scale["scrape_configs"] if job["job_name"] == "api"]
    assert api[0]["dns_sd_configs"][0]["names"] == ["api"]
    for config in (base, scale):
        config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "api"]
    assert base == scale


def test_images_are_built_from_the_dockerfiles_targets():
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    for name, service in services().items():
        build = service.get("build")
        if build:
            assert build["dockerfile"] == "compose/Dockerfile" and build["target"] in targets, name
            assert default_of(service["image"]).split("/")[-1].startswith(build["target"] + ":")


def test_the_build_context_holds_only_what_the_dockerfile_copies():
    """.dockerignore lets in exactly the COPY sources: no data, .venv, .stack*, runs/ or .git."""
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = {
        source.rstrip("/")
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    }
    assert allowed == copied | {"compose/Dockerfile"}
    rules = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert [line for line in rules if line and not line.startswith("#")][0] == "*"
