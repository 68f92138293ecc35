# Every target creates .venv first if it is missing; running any target twice is harmless.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# Kernels, dvc and papermill resolve to the project's environment, activated or not.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# pytest-xdist workers for `make test`: two keep both cores busy for the whole run (2,406 s of
# tests in 20m22s); three took 19m29s against 20m03s. Less CPU work, not more workers, shortens it.
TEST_WORKERS ?= 2

# Torch's OpenMP threads sleep while they wait instead of spinning: the tests run two workers,
# notebook kernels and servers on 2 cores, where spinning threads starve the rest (training tests
# took 3x as long beside one busy core). It changes when a thread sleeps, never a result.
TEST_ENV := OMP_WAIT_POLICY=PASSIVE

# Tests run against a stack of their own (own state folder, own ports): yours stays untouched.
TEST_STACK := $(TEST_ENV) WORKBOOK_STATE_DIR=$(CURDIR)/.stack-test WORKBOOK_MLFLOW_PORT=5100 \
	WORKBOOK_API_PORT=8100 WORKBOOK_PROMETHEUS_PORT=9190 WORKBOOK_ALERTMANAGER_PORT=9193 \
	WORKBOOK_ALERT_LOG_PORT=9195 WORKBOOK_GRAFANA_PORT=3100 WORKBOOK_RETRAINER_PORT=9197

.PHONY: setup system-deps data pipeline stack-up stack-down stack-status reset train retrain field-data bench bench-ab bench-parts score loadtest test test-fast compose-test k8s-check test-latest screenshots labs grade doctor lab solutions lint format clean

setup: $(INSTALLED) .env

# Reinstall only when the project's dependencies change. Torch first, CPU-only where PyTorch's
# CPU index answers (scripts/torch-cpu.sh; TORCH_CPU=0 keeps PyPI's CUDA build on Linux).
$(INSTALLED): pyproject.toml
	test -x $(PY) || { scripts/check-python.sh $(PYTHON) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	scripts/torch-cpu.sh $(PY)
	$(PY) -m pip install --quiet -e '.[serve,train,server,notebooks,dev]'
	touch $@

# Your machine's settings and passwords (docker compose reads them too); never overwritten.
.env:
	$(PYTHON) scripts/dotenv.py

# What pip cannot install: Prometheus and Alertmanager for the stack, Chromium for the browser
# test (Debian packages); a no-op once present.
system-deps:
	scripts/system-deps.sh stack browser containers

data: setup
	$(PY) -m app.data ensure
	$(PY) -m app.data validate

pipeline: setup
	scripts/system-deps.sh stack
	$(PY) -m app.pipeline

stack-up: setup
	scripts/system-deps.sh stack
	$(PY) -m app.stack up

stack-down: setup
	$(PY) -m app.stack down

stack-status: setup
	$(PY) -m app.stack status

# Start over: stop the stack, delete its runs, registry and logs, and the executed notebooks.
reset: setup
	$(PY) -m app.stack reset
	rm -rf runs

train: stack-up
	$(PY) -m app.training --promote

# Retrain if the pinned data version is new (gate, promote); `make retrain FORCE=1` anyway.
# .github/workflows/retrain.yml runs exactly this.
retrain: data stack-up
	$(PY) -m app.retraining $(if $(FORCE),--force)

# The labels people gave through POST /feedback (the playground's "Right?") as the next data
# version: validated, pushed, data.dvc committed; the watcher retrains it (notebook 09).
field-data: data stack-up
	$(PY) -m app.data field

# What this machine needs for the course, each problem with its fix (exit 1 on a blocker).
doctor: setup
	$(PY) -m app.doctor

# JupyterLab on the repository, opened on START.md (the path through notebooks and labs), with
# the course's settings (.jupyter/jupyter_lab_config.py; yours in ~/.jupyter stay as they are).
# The labs are the learner's own copies in my-labs/, made on first use and never overwritten.
lab: stack-up data
	$(PY) -m app.labs --mine
	$(VENV)/bin/jupyter lab --config=$(CURDIR)/.jupyter/jupyter_lab_config.py \
		--port $${WORKBOOK_JUPYTER_PORT:-8888}

# Every solution notebook run top to bottom with papermill, as `make pipeline` runs notebooks/.
solutions: setup data
	scripts/system-deps.sh stack
	$(PY) -m app.pipeline --folder solutions

# The student labs (labs/) from the solutions (solutions/): solutions become stubs raising the
# exercise's hint (app/labs.py). A test fails when labs/ is stale.
labs: setup
	$(PY) -m app.labs

# Grade your labs (my-labs/), one lab (NOTEBOOK=my-labs/01_....ipynb), or a class's folder of
# them (NOTEBOOK=submissions/): one table, and grades.csv for a folder.
NOTEBOOK ?= my-labs
grade: setup data
	@test -e "$(NOTEBOOK)" || { echo "nothing to grade at $(NOTEBOOK): make lab makes my-labs/, or give NOTEBOOK=path/to/01_....ipynb (or a folder)"; exit 2; }
	$(PY) -m app.grading $(NOTEBOOK)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Speed is measured here, never asserted in tests: this API against `mlflow models serve` and
# against FastAPI alone (the ceiling), at 1, 8 and 64 connections.
bench: setup data
	scripts/system-deps.sh stack bench
	$(PY) bench/serving.py

# This checkout's API (uncommitted changes included) against another commit's, two copies of it,
# in alternating rounds: how each change in README "Speed" was judged. BASE=HEAD~1, a tag, ...
# SET="api_threads=2 ...": settings of this checkout's API alone (an A/B of a setting, BASE=HEAD).
BASE ?= HEAD
SET ?=
bench-ab: setup data
	scripts/system-deps.sh stack bench
	$(PY) -m bench.ab $(BASE) $(foreach setting,$(SET),--set $(setting))

# This API with its model call, its log line or both taken out, beside mlflow and FastAPI alone:
# what each part of a request costs (bench/parts.py).
bench-parts: setup data
	scripts/system-deps.sh stack bench
	$(PY) -m bench.parts

# The fast tier: no server, no notebook, no long training (about two minutes on 2 cores): data,
# training smoke, registry rules, drift maths, configs, labs' generation, the files' linters.
test-fast: setup data
	$(TEST_ENV) $(PY) -m pytest -n $(TEST_WORKERS) -o addopts="-ra --strict-markers -p no:locust" \
		-m "not integration and not slow and not compose" tests

# Every test: the main suite on the test stack and, beside it, the container tests when a Docker
# engine runs or can be started here (CI sets WORKBOOK_REQUIRE_DOCKER=1: no engine is then a
# failure, not a note). Beside, not after: the container tests keep 1 of the 2 cores busy on
# average (they wait on builds, the engine and health checks), so they fit in what the main
# suite leaves. Their output follows the main suite's (scripts/beside.sh).
CONTAINER_LOG := .stack-test-containers.log
test: lint data system-deps
	rm -rf .stack-test
	@if scripts/docker-engine.sh exec -- true; then containers='$(CONTAINER_TESTS)'; \
	elif [ "$${WORKBOOK_REQUIRE_DOCKER:-0}" = 1 ]; then exit 1; \
	else echo "container tests not run: no Docker engine here (see above); make compose-test runs them"; \
		containers=; \
	fi; \
	scripts/beside.sh $(CONTAINER_LOG) "$$containers" env $(TEST_STACK) $(PY) -m app.stack exec -- \
		$(PY) -m pytest -n $(TEST_WORKERS) $(if $(REPORTS),--junitxml=$(REPORTS)/tests.xml)

# The README's screenshot of the playground, made by its browser test (a real API and champion).
screenshots: setup
	WORKBOOK_SCREENSHOT_DIR=$(CURDIR)/docs $(PY) -m pytest tests/integration/test_playground.py \
		-k drawn -o addopts=

# The images built and the compose stack run by a real Docker engine: tests/containers. If none
# answers, one is started for the run and stopped after (scripts/docker-engine.sh).
# Score a folder of images or a CSV of rows with @champion, as a job: make score INPUT=path
# [OUT=runs/scores.csv]. Each prediction names its model version and input hash; what cannot be
# read is refused by name in OUT's .rejected.csv; the job is an MLflow run (app/batch.py).
OUT ?= runs/scores.csv
score: setup
	@test -n "$(INPUT)" || { echo "usage: make score INPUT=<folder of images or .csv> [OUT=...]"; exit 2; }
	$(PY) -m app.batch $(INPUT) --out $(OUT)

# A Locust load test of the native API (`make stack-up` first), read back from Prometheus: what
# Locust saw beside what the API recorded for the same requests (app/loadtest).
USERS ?= 4
RATE ?= 10
DURATION ?= 30
loadtest: setup
	$(PY) -m app.loadtest --users $(USERS) --rate $(RATE) --seconds $(DURATION)

# deploy/k8s, offline: every overlay rendered by kubectl, validated against the Kubernetes API's
# schemas, the pod policy and compose (app/k8s.py); tests/test_k8s.py also shows each check bite.
k8s-check: setup
	$(PY) -m app.k8s

CONTAINER_TESTS = scripts/system-deps.sh containers && scripts/docker-engine.sh exec -- \
	$(PY) -m pytest -m compose -s tests/containers $(if $(REPORTS),--junitxml=$(REPORTS)/containers.xml)
compose-test: setup data
	$(CONTAINER_TESTS)

# The tests against the newest releases of the main dependencies instead of the pins, in an
# environment of their own (.venv-latest): what .github/workflows/nightly.yml runs, so an
# upstream break shows there before a learner meets it. Torch stays pinned (its CPU build), and
# so do the dev tools (linters, pytest): a new ruff rule is not an upstream break.
LATEST = $(shell $(PYTHON) compose/requirements.py pyproject.toml core serve train server notebooks \
	| sed -e 's/[=<>!~; ].*//' | grep -vx torch)
test-latest:
	$(MAKE) --no-print-directory setup VENV=.venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade $(LATEST)
	.venv-latest/bin/python -m pip list --format=freeze > .venv-latest/versions.txt
	$(MAKE) --no-print-directory test VENV=.venv-latest

clean:
	rm -rf runs reports .pytest_cache .ruff_cache .data-next-* .data-old .stack-test $(CONTAINER_LOG)
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
