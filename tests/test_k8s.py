"""deploy/k8s, offline: every overlay renders, passes the Kubernetes API's strict schemas and the
workbook's pod policy, and says what compose says; each check is shown to catch what it is for."""

from __future__ import annotations

import base64
import copy
import shutil

import pytest
import yaml

from app import k8s
from app.config import REPO_ROOT
from tests.helpers import load


@pytest.fixture(scope="module", params=k8s.OVERLAYS)
def rendered(request) -> list[dict]:
    return k8s.render(request.param)


@pytest.fixture(scope="module")
def local() -> list[dict]:
    return k8s.render("local")


PASSWORD = "a-password-from-env"


def find(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def test_every_overlay_renders_the_whole_stack(rendered):
    workloads = {pod.name for pod in k8s.pods(rendered)}
    assert workloads >= {
        "postgres", "mlflow", "api", "train", "retrainer", "alert-log", "prometheus",
        "alertmanager", "grafana",
    }  # fmt: skip
    assert {o["metadata"].get("namespace") for o in rendered if o["kind"] != "Namespace"} <= {
        "mlops-workbook",
        None,  # cluster-scoped: the local overlay's PersistentVolume
    }


def test_every_object_passes_the_kubernetes_schema_strictly(rendered):
    assert k8s.schema_problems(rendered) == []


def test_the_schema_check_refuses_a_misspelt_field(local):
    api = copy.deepcopy(find(local, "Deployment", "api"))
    container = api["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    (problem,) = k8s.schema_problems([api])
    assert "readinesProbe" in problem


def test_every_pod_keeps_the_policy(rendered):
    assert k8s.policy_problems(rendered) == []


def api_container(objects: list[dict]) -> dict:
    return find(objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda o: api_container(o)["securityContext"].update(runAsUser=0), "runs as root"),
        (
            lambda o: find(o, "Deployment", "api")["spec"]["template"]["spec"][
                "securityContext"
            ].pop("runAsNonRoot"),
            "may run as root",
        ),
        (lambda o: api_container(o)["resources"].pop("limits"), "no limits for cpu, memory"),
        (lambda o: api_container(o).pop("readinessProbe"), "no readiness or liveness probe"),
        (lambda o: api_container(o).update(image="mlops-workbook/api:latest"), "no pinned tag"),
        (lambda o: api_container(o).update(image="mlops-workbook/api"), "no pinned tag"),
        (
            lambda o: api_container(o)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"}),
            "DB_PASSWORD is a plain value",
        ),
        (
            lambda o: next(x for x in o if x["kind"] == "ConfigMap")["data"].update(x=PASSWORD),
            "holds a Secret's value in plain text",
        ),
        (
            lambda o: find(o, "Deployment", "api")["spec"]["template"]["spec"]["volumes"].append(
                {"name": "node", "hostPath": {"path": "/"}}
            ),
            "mounts a folder of the node",
        ),
    ],
    ids=[
        "root",
        "not-non-root",
        "limits",
        "probe",
        "latest",
        "untagged",
        "plain-secret",
        "leaked-secret",
        "host-path",
    ],  # fmt: skip
)
def test_the_policy_check_catches(local, change, says):
    objects = copy.deepcopy(local)
    secret = next(o for o in objects if o["kind"] == "Secret")
    secret["data"]["POSTGRES_PASSWORD"] = base64.b64encode(PASSWORD.encode()).decode()
    assert k8s.policy_problems(objects) == []
    change(objects)
    assert any(says in problem for problem in k8s.policy_problems(objects)), says


def test_the_manifests_say_what_compose_says(local):
    assert k8s.drift_problems(k8s.compose_services(), local) == []


@pytest.mark.parametrize(
    ("path", "old", "new", "says"),
    [
        ("docker-compose.override.yml", ':8000"]', ':8001"]', "Deployment/api: no container port"),
        (
            "docker-compose.yml",
            '"http://localhost:8000/health"',
            '"http://localhost:8000/healthz"',
            "Deployment/api: liveness probe",
        ),
        (
            "docker-compose.yml",
            '"http://localhost:9097/status"',
            '"http://localhost:9097/state"',
            "Deployment/retrainer: liveness probe",
        ),
        (
            "docker-compose.yml",
            "prom/prometheus:v2.42.0",
            "prom/prometheus:v2.43.0",
            "Deployment/prometheus: image",
        ),
        (
            "docker-compose.yml",
            "WORKBOOK_MLFLOW_TRACKING_URI: http://mlflow:5000",
            "WORKBOOK_MLFLOW_TRACKING_URI: http://mlflow:5001",
            "Deployment/api: WORKBOOK_MLFLOW_TRACKING_URI=",
        ),
        (
            "docker-compose.yml",
            'GF_ANALYTICS_CHECK_FOR_UPDATES: "false"',
            'GF_ANALYTICS_CHECK_FOR_UPDATES: "false"\n      GF_NEW: "1"',
            "Deployment/grafana: no GF_NEW",
        ),
        (
            "docker-compose.yml",
            '"--port", "9095"',
            '"--port", "9096"',
            "Deployment/alert-log: args",
        ),
        ("docker-compose.yml", "mem_limit: 256m", "mem_limit: 300m", "memory limit"),
        ("compose/scale.yml", "scale: 3", "scale: 4", "minReplicas"),
        (
            "compose/scale.yml",
            "--command=SELECT 1",
            "--command=SELECT 2",
            "StatefulSet/postgres: liveness probe",
        ),
    ],
    ids=[
        "api-port",
        "api-probe-path",
        "retrainer-probe-path",
        "image",
        "env-value",
        "env-new",
        "command",
        "memory",
        "replicas",
        "exec-probe",
    ],  # fmt: skip
)
def test_a_change_to_compose_alone_is_caught(tmp_path, local, path, old, new, says):
    for name in (*k8s.COMPOSE_FILES, k8s.PORTS_FILE):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    text = (tmp_path / path).read_text()
    assert old in text, old
    (tmp_path / path).write_text(text.replace(old, new, 1))
    problems = k8s.drift_problems(k8s.compose_services(tmp_path), local)
    assert any(says in problem for problem in problems), problems


def test_configs_are_compose_s_files_as_they_are(local):
    compose = REPO_ROOT / "compose"
    sources = {
        "prometheus": ["prometheus/prometheus.k8s.yml", "prometheus/rules.yml"],
        "alertmanager": ["alertmanager/alertmanager.yml"],
        "grafana-datasources": ["grafana/provisioning/datasources/prometheus.yml"],
        "grafana-dashboard-providers": ["grafana/provisioning/dashboards/provider.yml"],
        "grafana-dashboards": ["grafana/dashboards/model-service.json"],
        "postgres-initdb": ["postgres/initdb.d/10-feedback.sql"],
    }
    for name, files in sources.items():
        (config,) = [
            o
            for o in local
            if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(name + "-")
        ]  # named with a hash of its content: a changed file rolls the pods that mount it
        assert config["data"] == {
            file.split("/")[-1]: (compose / file).read_text() for file in files
        }, name


def test_the_k8s_prometheus_config_differs_only_in_finding_the_api_pods(local):
    prometheus = REPO_ROOT / "compose" / "prometheus"
    base, on_k8s = (load(prometheus / name) for name in ("prometheus.yml", "prometheus.k8s.yml"))
    (api,) = [job for job in on_k8s["scrape_configs"] if job["job_name"] == "api"]
    # Its relabelling keeps the pods the api Deployment makes, on the port it names.
    pod = find(local, "Deployment", "api")["spec"]["template"]
    keep = {
        tuple(rule["source_labels"]): rule["regex"]
        for rule in api["relabel_configs"]
        if rule.get("action") == "keep"
    }
    label = "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    assert keep[(label,)] == pod["metadata"]["labels"]["app.kubernetes.io/name"]
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert ports[keep[("__meta_kubernetes_pod_container_port_name",)]] == 8000
    for config in (base, on_k8s):
        config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "api"]
    assert base == on_k8s


def test_no_pod_is_reachable_unless_a_policy_names_its_callers(local):
    policies = {o["metadata"]["name"]: o["spec"] for o in local if o["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}

    def callers(name: str) -> set[str]:
        return {
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name", "labelled clients")
            for rule in policies[name]["ingress"]
            for peer in rule["from"]
        }

    assert callers("mlflow") == {"api", "trainer", "retrainer"}  # no authentication of its own
    assert callers("postgres") == {"mlflow", "api"}
    assert callers("prometheus") == {"grafana", "retrainer"}
    assert callers("api") == {"prometheus", "labelled clients"}
    assert "grafana" not in policies  # only `kubectl port-forward` reaches it
    services = {o["metadata"]["name"] for o in local if o["kind"] == "Service"}
    assert services - {"grafana"} <= set(policies)


def test_no_secret_is_written_in_the_manifests():
    """Secrets are generated from .env when rendering; no manifest holds one."""
    for path in sorted((REPO_ROOT / "deploy" / "k8s").rglob("*.yaml")):
        for item in yaml.safe_load_all(path.read_text()):
            assert not item or item.get("kind") != "Secret", path
    ignored = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
