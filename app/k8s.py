"""The stack on Kubernetes (deploy/k8s), rendered and checked offline: no cluster runs here.

`render` runs `kubectl kustomize` on an overlay; `schema_problems` validates every object
against the Kubernetes API's own schemas (kubernetes-validate, strict); `policy_problems` checks
what the workbook promises of every pod; `drift_problems` compares the manifests with the
compose files, the one source of truth for images, ports, probes, environment and configs.

    python -m app.k8s          # every overlay: rendered, validated, checked; exit 1 on a problem
"""

from __future__ import annotations

import base64
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.config import REPO_ROOT
from app.log import setup_logging

log = logging.getLogger("app.k8s")
K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("local", "registry")
KUBERNETES_VERSION = "1.32.0"  # kubectl's here; the schemas strict validation uses
# Kustomize reads the configs from compose/ and the secrets from .env: files outside its folder.
KUSTOMIZE = ["kustomize", "--load-restrictor=LoadRestrictionsNone"]
# compose/scale.yml's API, in front of which nginx (`lb`) becomes the api Service.
COMPOSE_FILES = ("docker-compose.yml", "compose/scale.yml")
PORTS_FILE = "docker-compose.override.yml"  # where compose says which port each service uses
# The compose service each workload runs, when its name differs.
COMPOSE_NAMES = {"train": "trainer"}
# compose/scale.yml's config files and their Kubernetes counterparts, beside them in compose/.
K8S_FILES = {"prometheus.scale.yml": "prometheus.k8s.yml"}
# Passwords and tokens: .env's, handed to pods from the Secret made of it, never as a value.
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY\b")


@dataclass(frozen=True)
class Pod:
    """A workload's pod template: what the policy and the drift checks read."""

    kind: str
    name: str
    spec: dict

    @property
    def long_running(self) -> bool:
        """A server (probes make sense), not a batch Job."""
        return self.kind in ("Deployment", "StatefulSet", "DaemonSet")

    def containers(self) -> list[dict]:
        return self.spec.get("initContainers", []) + self.spec["containers"]


def render(overlay: str, directory: Path = K8S_DIR / "overlays") -> list[dict]:
    """Every object an overlay makes, as `kubectl kustomize` renders it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is missing: install it (1.32 or newer; Kustomize is built in)")
    done = subprocess.run(
        [kubectl, *KUSTOMIZE, str(directory / overlay)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"kubectl kustomize {overlay} failed:\n{done.stderr}")
    return [item for item in yaml.safe_load_all(done.stdout) if item]


def pods(objects: list[dict]) -> Iterator[Pod]:
    """The pod template of every workload."""
    for item in objects:
        kind, spec = item["kind"], item.get("spec", {})
        if kind == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            yield Pod(kind, item["metadata"]["name"], spec["template"]["spec"])


def schema_problems(objects: list[dict], version: str = KUBERNETES_VERSION) -> list[str]:
    """Each object against the Kubernetes API's schema of `version`, strictly: a field the API
    does not know is a problem, as a misspelt one would be silently dropped by a cluster."""
    import kubernetes_validate  # ~20 MB of schemas: loaded when used

    problems = []
    for item in objects:
        try:
            kubernetes_validate.validate(item, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{item['kind']}/{item['metadata']['name']}: {error.message}")
    return problems


def policy_problems(objects: list[dict]) -> list[str]:
    """What every pod must be: not root, no privileges to gain, resources and (for servers)
    probes on each container, pinned images, no node folder, no secret as a plain value."""
    problems = []
    for pod in pods(objects):
        where = f"{pod.kind}/{pod.name}"
        context = pod.spec.get("securityContext", {})
        if context.get("runAsNonRoot") is not True or context.get("runAsUser", 0) == 0:
            problems.append(f"{where}: may run as root (runAsNonRoot, runAsUser)")
        if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: no RuntimeDefault seccomp profile")
        if any("hostPath" in volume for volume in pod.spec.get("volumes", [])):
            problems.append(f"{where}: mounts a folder of the node (hostPath)")
        for container in pod.containers():
            problems += [f"{where}/{container['name']}: {p}" for p in container_problems(container)]
            if pod.long_running and not all(
                probe in container for probe in ("readinessProbe", "livenessProbe")
            ):
                problems.append(f"{where}/{container['name']}: no readiness or liveness probe")
    return problems + plain_secret_problems(objects)


def container_problems(container: dict) -> list[str]:
    """One container's own rules."""
    problems = []
    context = container.get("securityContext", {})
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("may gain privileges (allowPrivilegeEscalation)")
    if context.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append("keeps Linux capabilities (capabilities.drop: [ALL])")
    if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
        problems.append("runs as root")
    resources = container.get("resources", {})
    for bound in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(bound, {}))
        if missing:
            problems.append(f"no {bound} for {', '.join(sorted(missing))}")
    image = container["image"]
    if not re.search(r":[\w][\w.-]*$", image.split("/")[-1]) or image.endswith(":latest"):
        problems.append(f"image {image} has no pinned tag")
    for variable in container.get("env", []):
        if SECRET_NAME.search(variable["name"]) and "value" in variable:
            problems.append(f"{variable['name']} is a plain value, not from a Secret")
    return problems


def plain_secret_problems(objects: list[dict]) -> list[str]:
    """No value of a rendered Secret appears anywhere else in the output."""
    secrets = {
        base64.b64decode(value).decode()
        for item in objects
        if item["kind"] == "Secret"
        for value in item.get("data", {}).values()
    }
    secrets = {value for value in secrets if len(value) >= 8}  # not an empty or a port number
    problems = []
    for item in objects:
        text = "" if item["kind"] == "Secret" else yaml.safe_dump(item)  # written out once
        if any(value in text for value in secrets):
            where = f"{item['kind']}/{item['metadata']['name']}"
            problems.append(f"{where}: holds a Secret's value in plain text")
    return problems


def compose_services(root: Path = REPO_ROOT) -> dict[str, dict]:
    """docker-compose.yml with compose/scale.yml over it (a shallow merge per key, as compose
    does for these files' keys), and each service's container ports from the override file."""
    merged: dict[str, dict] = {}
    for name in COMPOSE_FILES:
        for service, keys in yaml.safe_load((root / name).read_text())["services"].items():
            base = merged.setdefault(service, {})
            for key, value in keys.items():
                if isinstance(value, dict) and isinstance(base.get(key), dict):
                    base[key] = {**base[key], **value}
                else:
                    base[key] = value
    for service, keys in yaml.safe_load((root / PORTS_FILE).read_text())["services"].items():
        merged[service]["container_ports"] = [int(p.rsplit(":", 1)[1]) for p in keys["ports"]]
    return merged


def drift_problems(compose: dict[str, dict], objects: list[dict]) -> list[str]:
    """Where a manifest says something else than compose: image, container port, probe, the
    environment, the command, resources, config mounts; and the API's replica count."""
    problems = []
    for pod in pods(objects):
        service = compose.get(COMPOSE_NAMES.get(pod.name, pod.name))
        if service is None:
            continue  # a Kubernetes-only workload (repo-sync)
        (container,) = pod.spec["containers"]
        where = f"{pod.kind}/{pod.name}"
        problems += [f"{where}: {p}" for p in container_drift(service, container)]
    hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
    if hpa["spec"]["minReplicas"] != compose["api"].get("scale", 1):
        problems.append("HorizontalPodAutoscaler/api: minReplicas is not compose's scale")
    return problems


def container_drift(service: dict, container: dict) -> list[str]:
    """One container against its compose service."""
    problems = []
    image = default_of(service["image"])
    if container["image"] != image:
        problems.append(f"image {container['image']}, compose's is {image}")
    ports = {port["containerPort"] for port in container.get("ports", [])}
    for port in service.get("container_ports", []):
        if port not in ports:
            problems.append(f"no container port {port} (compose's)")
    check = healthcheck(service)
    if check is not None:
        probe = container.get("livenessProbe", {})
        if isinstance(check, tuple):
            port, path = check
            found = probe.get("httpGet", {})
            named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
            if found.get("path") != path or named.get(found.get("port"), found.get("port")) != port:
                problems.append(f"liveness probe {found}, compose's healthcheck is :{port}{path}")
        elif probe.get("exec", {}).get("command") != check:
            problems.append(f"liveness probe {probe}, compose's healthcheck runs {check}")
    env = {variable["name"]: variable for variable in container.get("env", [])}
    for name, value in (service.get("environment") or {}).items():  # a mapping in our files
        problems += env_drift(name, str(value), env.get(name))
    command = [counterpart(part) for part in service.get("command", [])]
    if command and container.get("args") != command:
        problems.append(f"args {container.get('args')}, compose's command is {command}")
    limits = container.get("resources", {}).get("limits", {})
    if "cpus" in service and cpus(limits.get("cpu", "0")) != float(service["cpus"]):
        problems.append(f"cpu limit {limits.get('cpu')}, compose's cpus is {service['cpus']}")
    if "mem_limit" in service and limits.get("memory") != memory(service["mem_limit"]):
        problems.append(f"memory limit {limits.get('memory')}, compose's is {service['mem_limit']}")
    mounted = [mount["mountPath"] for mount in container.get("volumeMounts", [])]
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./compose/") and not any(
            path == target or path.startswith(target + "/") for path in mounted
        ):
            problems.append(f"nothing mounted at {target} (compose mounts {source} there)")
    return problems


def env_drift(name: str, value: str, variable: dict | None) -> list[str]:
    """A compose environment variable against the container's: `${SECRET...}` must come from
    the Secret's key of that name; otherwise the same value, defaults filled in and compose's
    `${VAR}` written as Kubernetes' `$(VAR)`."""
    if variable is None:
        return [f"no {name} in its environment (compose sets it)"]
    secret = re.fullmatch(r"\$\{(\w+)(:[-?][^}]*)?\}", value)
    if secret and SECRET_NAME.search(secret.group(1)):
        reference = variable.get("valueFrom", {}).get("secretKeyRef", {})
        if reference.get("key") != secret.group(1):
            return [f"{name} is not the Secret's {secret.group(1)}"]
        return []
    expected = re.sub(r"\$\{(\w+)\}", r"$(\1)", default_of(value))
    if variable.get("value") != expected:
        return [f"{name}={variable.get('value')!r}, compose's is {expected!r}"]
    return []


def healthcheck(service: dict) -> tuple[int, str] | list[str] | None:
    """Compose's healthcheck: (port, path) of the URL it fetches, or the command it runs."""
    test = service.get("healthcheck", {}).get("test")
    if not test or service["healthcheck"].get("disable"):
        return None
    url = next((part for part in test if part.startswith("http://localhost")), None)
    if url:
        found = re.fullmatch(r"http://localhost:(\d+)(/.*)", url)
        assert found, url
        return int(found.group(1)), found.group(2)
    if test[0] == "CMD" and test[1] in ("wget", "curl"):
        return None
    return list(test[1:])


def counterpart(argument: str) -> str:
    """A command's argument with compose/scale.yml's config files named as on Kubernetes."""
    for compose_file, k8s_file in K8S_FILES.items():
        argument = argument.replace(compose_file, k8s_file)
    return argument


def default_of(value: str) -> str:
    """What compose makes of `${VAR:-default}` parts when VAR is unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def cpus(value: str) -> float:
    """A Kubernetes CPU quantity ("500m", "1") in cores."""
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def memory(value: str) -> str:
    """compose's mem_limit ("512m", "2g") as a Kubernetes quantity ("512Mi", "2Gi")."""
    return value[:-1] + {"m": "Mi", "g": "Gi"}[value[-1].lower()]


def main() -> int:
    setup_logging()
    compose = compose_services()
    failed = False
    for overlay in OVERLAYS:
        objects = render(overlay)
        problems = schema_problems(objects) + policy_problems(objects)
        if overlay == "local":  # the images compose builds; registry's are CI's
            problems += drift_problems(compose, objects)
        log.info("%s: %d objects, %d problems", overlay, len(objects), len(problems))
        for problem in problems:
            log.error("  %s", problem)
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
