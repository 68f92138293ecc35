"""Hidden cases of lab 07 (containers), which `app.grading` runs in the learner's kernel.

A case runs after the lab's setup, parameters and exercise cells, so the learner's functions
exist. It builds its own compose services, Dockerfile or `.dockerignore` lines (none of the
lab's check cases), or reads the repository's real files, which it never changes; calls one
function through `_lab07_call` or `_lab07_refused`; and raises AssertionError in plain words
when the answer is wrong. A stub's NotImplementedError passes through untouched, any other crash
becomes a plain message. The grader sends each case's source, calls it and deletes its name, so
nothing it defines lands in the learner's namespace; it needs nothing from another case, and
imports what it uses itself: only the helpers below are sent along.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.grading import Cases

if TYPE_CHECKING:
    from collections.abc import Callable

    # In the learner's kernel: the learner's functions (solutions/07_containers.ipynb).
    compose_problems: Callable[[dict], list[str]] = ...
    start_waves: Callable[[dict], list[list[str]]] = ...
    stages_needed: Callable[[str, str], list[str]] = ...
    in_build_context: Callable[[str, list[str]], bool] = ...
    unready_containers: Callable[[list[dict]], list[str]] = ...

cases = Cases()


@cases.helper
def _lab07_load(relative):
    """One of the repository's YAML files, as yaml.safe_load reads it."""
    import yaml

    from app.config import REPO_ROOT

    return yaml.safe_load((REPO_ROOT / relative).read_text())


@cases.helper
def _lab07_fine(**keys):
    """A service that breaks no rule of exercise 1, with `keys` added or replaced."""
    return {
        "image": "busybox:1.36.1",
        "healthcheck": {"test": ["CMD", "true"]},
        "restart": "always",
    } | keys


@cases.helper
def _lab07_call(what, function, *args):
    """The learner's answer; a crash other than the stub's becomes a plain message."""
    try:
        return function(*args)
    except NotImplementedError:
        raise
    except Exception as error:
        raise AssertionError(
            f"{function.__name__} crashed on {what} ({type(error).__name__}: {error})"
        ) from error


@cases.helper
def _lab07_refused(what, function, *args):
    """The message of the ValueError the learner's answer must raise."""
    try:
        result = _lab07_call(what, function, *args)
    except AssertionError as error:
        if isinstance(error.__cause__, ValueError):
            return str(error.__cause__)
        raise
    raise AssertionError(f"{function.__name__} returned {result!r} on {what}: raise ValueError")


@cases.helper
def _lab07_problems_by_service(found):
    """{service: [problems]} of a list of problems that each start with "<service>:"."""
    assert isinstance(found, list) and all(isinstance(p, str) for p in found), (
        f"compose_problems must return a list of str, not {found!r}"
    )
    grouped = {}
    for problem in found:
        grouped.setdefault(problem.split(":", 1)[0], []).append(problem)
    return grouped


# compose_problems(services) -> ["<service>: ...", ...]
@cases.exercise(1)
def _flags_ports_on_every_interface():
    """Ten ports, six of them published on every interface, and an `expose`."""
    ports = [
        8080,  # an int: a random host port on every interface
        "8081:80",
        "0.0.0.0:8082:80",
        "127.0.0.1:8083:80",
        {"target": 80, "published": 8084, "host_ip": "127.0.0.1"},
        {"target": 80, "published": 8085},
        "127.0.0.1:8086:80/udp",
        "8087:80/tcp",
        "${HOST_IP:-127.0.0.1}:${WEB_PORT:-8088}:80",
        "${HOST_IP:-0.0.0.0}:8089:80",
    ]
    found = _lab07_call(
        "a service with ten ports",
        compose_problems,
        {"web": _lab07_fine(ports=ports, expose=["9000"])},
    )
    grouped = _lab07_problems_by_service(found)
    assert set(grouped) <= {"web"}, f"every problem starts with 'web:', not {found}"
    bad = ["8080", "8081", "8082", "8085", "8087", "8089"]
    named = {port for port in bad for p in found if port in p and "port" in p}
    assert named == set(bad), (
        f"you let ports {sorted(set(bad) - named)} pass, which are published on every "
        "interface: no address, 0.0.0.0, an int, a mapping without host_ip, or the "
        f"address ${{HOST_IP:-0.0.0.0}} filled in. You found {found}"
    )
    good = [p for p in found if any(f"{n}" in p for n in (8083, 8084, 8086, 8088, 9000))]
    assert not good, (
        f"you flagged {good}, but ports 8083, 8084, 8086 and 8088 are on 127.0.0.1 "
        "(8088 once the defaults are filled in) and `expose` publishes nothing"
    )
    assert len(found) == len(bad), f"one problem per bad port ({len(bad)}), not {found}"


@cases.exercise(1)
def _flags_images_without_a_version():
    """Images without a tag, latest, a registry's port, defaults filled in; a build."""
    images = {
        "a": "redis",
        "b": "redis:latest",
        "c": "localhost:5000/tools",
        "d": "localhost:5000/tools:1.2",
        "e": "redis@sha256:" + "0" * 64,
        "f": "${REDIS_IMAGE:-redis:7.4.1}",
        "g": "${REGISTRY:-ghcr.io/acme}/api:${TAG:-latest}",
        "h": "ghcr.io/acme/api:${TAG:-1.4.0}",
    }
    services = {name: _lab07_fine(image=image) for name, image in images.items()}
    services["i"] = {key: v for key, v in _lab07_fine().items() if key != "image"}
    services["i"]["build"] = {"context": ".", "target": "api"}
    found = _lab07_call("services with various images", compose_problems, services)
    grouped = _lab07_problems_by_service(found)
    flagged = sorted(n for n, ps in grouped.items() if any("image" in p for p in ps))
    expected = ["a", "b", "c", "g"]
    why = (
        "a: redis has no tag; b: latest; c: 5000 is the registry's port, not a tag; "
        "g: its tag's default is latest; d has a tag, e a digest, f and h a tag once "
        "the defaults are filled in, i builds its image"
    )
    assert flagged == expected, (
        f"expected image problems for {expected}, you flagged {flagged} ({why})"
    )
    assert len(found) == len(expected), f"one problem per image, nothing else: {found}"


@cases.exercise(1)
def _flags_healthchecks_and_restart_policies():
    """Healthchecks turned off, restart policies missing or `no`, a job that needs neither."""
    import yaml

    services = yaml.safe_load("""
        job: {image: "busybox:1.36.1", profiles: [jobs]}
        disabled: {image: "busybox:1.36.1", healthcheck: {disable: true}, restart: always}
        none: {image: "busybox:1.36.1", healthcheck: {test: [NONE]}, restart: on-failure:3}
        bare-no: {image: "busybox:1.36.1", healthcheck: {test: [CMD, x]}, restart: no}
        quoted-no: {image: "busybox:1.36.1", healthcheck: {test: [CMD, x]}, restart: "no"}
        retry: {image: "busybox:1.36.1", healthcheck: {test: [CMD, x]}, restart: on-failure}
        empty: {image: "busybox:1.36.1"}
    """)
    found = _lab07_call(
        "services with and without healthchecks and restart policies", compose_problems, services
    )
    grouped = _lab07_problems_by_service(found)
    expected = {
        "disabled": ["healthcheck"],
        "none": ["healthcheck"],
        "bare-no": ["restart"],
        "quoted-no": ["restart"],
        "empty": ["healthcheck", "restart"],
    }
    got = {
        n: sorted(w for p in ps for w in ("healthcheck", "restart") if w in p)
        for n, ps in grouped.items()
    }
    assert got == expected, (
        f"expected {expected}, got {got}: a job (profiles) needs neither; disable: true "
        "and test: [NONE] turn the healthcheck off; `restart: no` (False once read) and "
        "'no' are no policy, on-failure is one"
    )
    order = [p.split(":", 1)[0] for p in found]
    assert order == ["disabled", "none", "bare-no", "quoted-no", "empty", "empty"], (
        f"list the problems service by service, in the mapping's order: {found}"
    )
    assert "healthcheck" in found[4] and "restart" in found[5], (
        f"for one service, the healthcheck comes before the restart policy: {found[4:]}"
    )


@cases.exercise(1)
def _accepts_the_workbook_s_scaled_stack():
    """docker-compose.yml with compose/scale.yml breaks no rule; a job's port still does."""
    # compose/scale.yml on top of docker-compose.yml: for the keys the linter reads
    # (image, healthcheck, ports, restart, profiles), a key scale.yml sets replaces the
    # base's, as compose does, since the base sets none of them for the same service.
    base = _lab07_load("docker-compose.yml")["services"]
    scale = _lab07_load("compose/scale.yml")["services"]
    stack = {name: base.get(name, {}) | scale.get(name, {}) for name in base | scale}
    found = _lab07_call("docker-compose.yml with compose/scale.yml", compose_problems, stack)
    assert found == [], (
        "docker-compose.yml with compose/scale.yml (PostgreSQL, nginx, three API "
        f"replicas) breaks no rule, but you found {found}"
    )
    stack["trainer"] = stack["trainer"] | {"ports": ["9999:9999"]}
    found = _lab07_call("a job that publishes a port", compose_problems, stack)
    assert len(found) == 1 and found[0].startswith("trainer:") and "port" in found[0], (
        "a job needs no healthcheck or restart policy, but a port it publishes on every "
        f"interface is still a problem: expected one, about trainer's port; got {found}"
    )


# start_waves(services) -> [[names], [names], ...]; ValueError on an unknown name or a cycle
@cases.exercise(2)
def _orders_a_small_graph_in_waves():
    """A small graph: lists and mappings of dependencies, empty and blank ones."""
    import yaml

    services = yaml.safe_load("""
        e: {depends_on: [a, d]}
        d: {depends_on: {b: {condition: service_healthy}, c: {condition: service_started}}}
        c: {depends_on: {a: {condition: service_completed_successfully}}}
        b: {depends_on: [a]}
        a: {image: "busybox:1.36.1"}
        g: {depends_on: []}
        f: {depends_on: }
    """)
    got = _lab07_call("a small graph", start_waves, services)
    expected = [["a", "f", "g"], ["b", "c"], ["d"], ["e"]]
    assert got == expected, (
        f"expected {expected}, got {got}: e waits for a and d, d for b and c (a mapping), "
        "c and b for a; f and g for nothing (depends_on empty, or blank: None)"
    )
    assert _lab07_call("no services", start_waves, {}) == [], "no services: no waves, []"


@cases.exercise(2)
def _names_a_cycle_in_its_order():
    """A cycle of three beside services that wait behind it, and a service waiting for itself."""
    services = {
        "alpha": {"depends_on": ["bravo"]},
        "bravo": {"depends_on": {"charlie": {"condition": "service_healthy"}}},
        "charlie": {"depends_on": ["alpha"]},
        "delta": {"depends_on": ["alpha"]},  # waits behind the cycle, not in it
        "echo": {},
    }
    message = _lab07_refused("a cycle alpha -> bravo -> charlie -> alpha", start_waves, services)
    missing = [n for n in ("alpha", "bravo", "charlie") if n not in message]
    assert not missing, (
        f"the cycle is alpha -> bravo -> charlie -> alpha; your message says {message!r}"
    )
    assert "delta" not in message and "echo" not in message, (
        "delta only waits behind the cycle and echo waits for nothing: name the cycle "
        f"alone, not {message!r}"
    )
    first = sorted(("alpha", "bravo", "charlie"), key=message.index)
    rotations = [
        ["alpha", "bravo", "charlie"],
        ["bravo", "charlie", "alpha"],
        ["charlie", "alpha", "bravo"],
    ]
    assert first in rotations, (
        "name the services in the order they wait for each other (alpha waits for "
        f"bravo, bravo for charlie, charlie for alpha), not {message!r}"
    )
    message = _lab07_refused(
        "a service that waits for itself",
        start_waves,
        {"solo": {"depends_on": ["solo"]}, "other": {}},
    )
    assert "solo" in message and "other" not in message, f"solo -> solo, not {message!r}"


@cases.exercise(2)
def _names_an_unknown_dependency():
    """A dependency that is no service: ValueError naming both."""
    services = {
        "db": {},
        "api": {
            "depends_on": {
                "db": {"condition": "service_healthy"},
                "ghost": {"condition": "service_started"},
            }
        },
    }
    message = _lab07_refused("api depending on ghost, which is no service", start_waves, services)
    assert "ghost" in message and "api" in message, (
        f"api depends on ghost, which is not a service: name both, not {message!r}"
    )


@cases.exercise(2)
def _orders_the_workbook_s_scaled_stack():
    """docker-compose.yml with compose/scale.yml: its real waves."""
    base = _lab07_load("docker-compose.yml")["services"]
    scale = _lab07_load("compose/scale.yml")["services"]
    stack = {}
    for name in base | scale:  # compose merges depends_on, a mapping, key by key
        depends = (base.get(name, {}).get("depends_on") or {}) | (
            scale.get(name, {}).get("depends_on") or {}
        )
        stack[name] = {"depends_on": depends}
    got = _lab07_call("docker-compose.yml with compose/scale.yml", start_waves, stack)
    expected = [
        ["alert-log", "alertmanager", "postgres"],
        ["mlflow", "prometheus"],
        ["api", "grafana", "retrainer", "trainer"],
        ["lb"],
    ]
    assert got == expected, (
        "with compose/scale.yml, MLflow waits for PostgreSQL and nginx (lb) for the API: "
        f"expected {expected}, got {got}"
    )


# stages_needed(dockerfile, target) -> [stage names, in the file's order]
@cases.exercise(3)
def _follows_names_numbers_and_continued_lines():
    """Stage names in any case, `--from=1`, flags on continued lines, an unused stage."""
    dockerfile = """# syntax=docker/dockerfile:1
    FROM golang:1.22 AS Build
    WORKDIR /src
    RUN go build \\
        # a comment between continued lines
        -o /out/app .

    from alpine:3.20
    run apk add --no-cache ca-certificates

    FROM alpine:3.20 AS unused
    RUN echo never

    FROM scratch AS final
    COPY --chown=10001:10001 \\
         --from=build /out/app /app
    copy --from=1 /etc/ssl/certs /etc/ssl/certs
    """
    dockerfile = "\n".join(line.strip() for line in dockerfile.splitlines())
    got = _lab07_call("a Dockerfile with an unnamed stage", stages_needed, dockerfile, "final")
    expected = ["build", "stage-1", "final"]
    assert got == expected, (
        f"expected {expected}, got {got}: final copies from build (`AS Build`, stored in "
        "lower case; --from on a continued line after --chown) and from stage 1 "
        "(`--from=1`, the unnamed `from alpine`: stage-1); scratch is an image"
    )


@cases.exercise(3)
def _follows_forward_references_and_skips_comments():
    """`--from` naming a later stage, FROM naming a later stage (an image), a commented COPY."""
    dockerfile = """FROM python:3.12-slim AS base
    FROM tools AS app
    COPY --from=assets /dist /srv
    COPY --from=nginx:1.27 /etc/nginx /etc/nginx
    COPY --from=base \\
    # COPY --from=unused /x /x
         /usr/local /usr/local
    FROM base AS tools
    FROM node:22 AS assets
    FROM alpine:3.20 AS unused
    FROM app AS test
    """
    dockerfile = "\n".join(line.strip() for line in dockerfile.splitlines())
    got = _lab07_call("a Dockerfile with references forward", stages_needed, dockerfile, "test")
    expected = ["base", "app", "assets", "test"]
    assert got == expected, (
        f"expected {expected}, got {got}: test is FROM app, which copies from assets "
        "(--from may name a later stage), base and nginx:1.27 (an image); FROM tools is "
        "an image (that stage comes later); --from=unused is in a comment"
    )
    got = _lab07_call("the same Dockerfile", stages_needed, dockerfile, "tools")
    assert got == ["base", "tools"], f"tools is FROM base: ['base', 'tools'], not {got}"


@cases.exercise(3)
def _finds_the_stages_of_the_workbook_s_dockerfile():
    """compose/Dockerfile's real stages, for four targets."""
    from app.config import REPO_ROOT

    dockerfile = (REPO_ROOT / "compose" / "Dockerfile").read_text()
    expected = {
        "mlflow": ["python", "requirements", "builder", "mlflow-venv", "runtime", "mlflow"],
        "trainer": [
            "python",
            "requirements",
            "builder",
            "api-venv",
            "trainer-venv",
            "runtime",
            "trainer",
        ],
        "python": ["python"],
        "requirements": ["python", "requirements"],
    }
    for stage, stages in expected.items():
        got = _lab07_call(f"compose/Dockerfile, target {stage}", stages_needed, dockerfile, stage)
        assert got == stages, f"for {stage}, compose/Dockerfile needs {stages}; got {got}"


@cases.exercise(3)
def _names_the_stages_of_an_unknown_target():
    """A target that is no stage: ValueError naming it and the stages there are."""
    from app.config import REPO_ROOT

    dockerfile = (REPO_ROOT / "compose" / "Dockerfile").read_text()
    message = _lab07_refused("target nope", stages_needed, dockerfile, "nope")
    stages = ("python", "builder", "api-venv", "runtime", "trainer")
    named = [stage for stage in stages if stage in message]
    assert "nope" in message and len(named) == 5, (
        f"there is no stage nope: name it, and the stages there are, not {message!r}"
    )


# in_build_context(path, lines) -> bool
@cases.exercise(4)
def _reads_patterns_from_the_root():
    """Comments, blank lines, a leading / or ./, `?`, folders, an exception with spaces."""
    lines = [
        "# build outputs",
        "",
        "*.md",
        "/build/",
        "./dist",
        "temp?",
        "docs",
        "  !docs/keep.txt  ",
    ]
    expected = {
        "README.md": (False, "*.md matches it"),
        "guide/README.md": (True, "a * does not cross a /, and *.md starts at the root"),
        "build/lib/x.so": (False, "/build/ is build, the folder that holds it"),
        "src/build/x.so": (True, "build matches from the root, not src/build"),
        "dist/app.js": (False, "./dist is dist"),
        "temp1": (False, "temp? matches one more character"),
        "temp12": (True, "temp? matches exactly one more character"),
        "docs/a/b.txt": (False, "docs holds it"),
        "docs/keep.txt": (True, "!docs/keep.txt lets it in again, once stripped"),
        "src/main.py": (True, "no line matches it"),
    }
    for path, (sent, why) in expected.items():
        got = _lab07_call(f"{path} with {lines}", in_build_context, path, lines)
        assert got == sent, (
            f"{path} is {'sent' if sent else 'left out'}, you said {got!r}: {why} (lines {lines})"
        )


@cases.exercise(4)
def _lets_the_last_matching_line_win():
    """Exceptions before and after their pattern: the last matching line wins."""
    lines = [
        "!keep.log",
        "*.log",
        "!important.log",
        "logs/",
        "!logs/today/",
        "secret*",
        "! secret.example",
    ]
    expected = {
        "keep.log": (False, "its exception comes before *.log: the last match wins"),
        "important.log": (True, "!important.log comes after *.log"),
        "debug.log": (False, "*.log"),
        "logs/today/a.txt": (True, "!logs/today/ comes after logs/"),
        "logs/today/b/c.log": (True, "*.log is at the root only; !logs/today/ wins"),
        "logs/old/a.txt": (False, "logs/ holds it"),
        "secrets/key.pem": (False, "secret* matches the folder secrets"),
        "secret.example": (True, "'! secret.example' is an exception, once stripped"),
    }
    for path, (sent, why) in expected.items():
        got = _lab07_call(f"{path} with {lines}", in_build_context, path, lines)
        assert got == sent, (
            f"{path} is {'sent' if sent else 'left out'}, you said {got!r}: {why} (lines {lines})"
        )


@cases.exercise(4)
def _matches_double_stars():
    """`**` at the start, the end and the middle of a pattern, matching no folder too."""
    lines = ["**/__pycache__", "**/*.pyc", "node_modules/**", "a/**/z", "!a/keep/**/z"]
    expected = {
        "__pycache__/x": (False, "**/ matches no folder at all too"),
        "app/sub/__pycache__/m.pyc": (False, "**/__pycache__ at any depth"),
        "mod.pyc": (False, "**/*.pyc at the root"),
        "pkg/deep/mod.pyc": (False, "**/*.pyc at any depth"),
        "pkg/mod.py": (True, "no line matches it"),
        "node_modules/lib/index.js": (False, "node_modules/** matches all below it"),
        "node_modules": (True, "node_modules/** matches what is below it, not itself"),
        "a/z": (False, "a/**/z, ** matching no folder"),
        "a/b/c/z": (False, "a/**/z, ** matching b/c"),
        "a/keep/z": (True, "!a/keep/**/z comes last"),
        "a/keep/x/z": (True, "!a/keep/**/z comes last"),
        "a/zz": (True, "a/**/z matches z, not zz"),
        "b/a/z": (True, "a/**/z starts at the root"),
    }
    for path, (sent, why) in expected.items():
        got = _lab07_call(f"{path} with {lines}", in_build_context, path, lines)
        assert got == sent, (
            f"{path} is {'sent' if sent else 'left out'}, you said {got!r}: {why} (lines {lines})"
        )


@cases.exercise(4)
def _reads_the_workbook_s_dockerignore():
    """The workbook's real .dockerignore, then with app/serving/ planted last."""
    from app.config import REPO_ROOT

    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    expected = {
        "app/serving/app.py": True,
        "pyproject.toml": True,
        "compose/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl": True,
        "app/serving/__pycache__/app.cpython-311.pyc": False,
        "data/train/0/0001.png": False,
        ".env": False,
        ".git/HEAD": False,
        "compose/scale.yml": False,
        "params.yaml": False,
    }
    wrong = {}
    for path, sent in expected.items():
        if _lab07_call(f"{path}, the real .dockerignore", in_build_context, path, lines) != sent:
            wrong[path] = "sent" if sent else "left out"
    assert not wrong, f"with the workbook's .dockerignore, these files are {wrong}"
    planted = lines + ["app/serving/"]
    got = (
        _lab07_call(
            "app/serving/app.py, app/serving/ planted last",
            in_build_context,
            "app/serving/app.py",
            planted,
        ),
        _lab07_call(
            "app/training/train.py, app/serving/ planted last",
            in_build_context,
            "app/training/train.py",
            planted,
        ),
    )
    assert got == (False, True), (
        "with app/serving/ added at the end, app/serving/app.py is left out and "
        f"app/training/train.py still sent: expected (False, True), got {got}"
    )


@cases.helper
def _lab07_workload(kind, name, *containers, init=()):
    """A workload of `kind` whose pod runs `containers` (dicts), with `init` containers."""
    pod = {"containers": list(containers)}
    if init:
        pod["initContainers"] = list(init)
    spec = {"template": {"spec": pod}}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": spec}}
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


@cases.exercise(5)
def _finds_servers_without_a_readiness_probe():
    """Each long-running kind counts; a liveness probe is no readiness probe."""
    probe = {"httpGet": {"path": "/ready", "port": 8000}}
    ready = {"name": "web", "image": "busybox:1.36.1", "readinessProbe": probe}
    alive_only = {"name": "web", "image": "busybox:1.36.1", "livenessProbe": probe}
    objects = [
        _lab07_workload("StatefulSet", "db", {"name": "db", "image": "postgres:15"}),
        _lab07_workload("Deployment", "web", ready, alive_only | {"name": "cache"}),
        _lab07_workload("DaemonSet", "agent", {"name": "agent", "image": "busybox:1.36.1"}),
    ]
    found = _lab07_call("a StatefulSet, a Deployment and a DaemonSet", unready_containers, objects)
    expected = ["StatefulSet/db/db", "Deployment/web/cache", "DaemonSet/agent/agent"]
    assert found == expected, f"expected {expected} (in the objects' order), got {found}"


@cases.exercise(5)
def _skips_batch_work_other_kinds_and_init_containers():
    """Jobs, CronJobs, Services and init containers take no traffic: none is a problem."""
    bare = {"name": "work", "image": "busybox:1.36.1"}
    ready = bare | {"readinessProbe": {"exec": {"command": ["true"]}}}
    objects = [
        _lab07_workload("Job", "train", bare),
        _lab07_workload("CronJob", "sync", bare),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config"}, "data": {}},
        _lab07_workload("Deployment", "web", ready, init=[bare | {"name": "migrate"}]),
    ]
    found = _lab07_call("a Job, a CronJob, a Service, a ConfigMap", unready_containers, objects)
    assert found == [], f"none of these takes traffic unready, but you found {found}"
    assert _lab07_call("no objects", unready_containers, []) == [], "no objects: nothing found"
