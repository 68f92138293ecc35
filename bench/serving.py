"""`make bench`: this API against `mlflow models serve` and against FastAPI alone.

Starts a throwaway stack (its own MLflow server in a temporary folder, on free ports), trains and
promotes the CNN, and serves that one model version, one worker each: this API through ONNX Runtime
(the model's export: what it serves by default) and through PyTorch
(`WORKBOOK_API_MODEL_RUNTIME=native`), this API keeping no predictions for labels (`feedback_store`
off: what storing costs), this API keeping no drift window (`api_drift_window` off: what
monitoring's input window costs), this API on Python's own allocator (`api_allocator`: what mimalloc
on huge pages gains, app/allocator.py), `mlflow models serve`, and the ceiling: FastAPI alone on the
same uvicorn and allocator, the API's own schemas, no model (bench/bare_api.py). Loads each with wrk
at 1, 8 and 64 connections: one instance per request, the same duration, in rounds where the servers
take turns, each round starting with the next (a slow spell of the VM then falls on each of them
alike, and none always holds the same place); each figure is the median of its rounds. Then a second
CNN becomes @challenger, which the API scores every request with in shadow, off the answer's path
(app/serving/rollout.py), and this API is measured again, against itself measured just before.
Prints requests per second, p50 and p99 latency, and the ratios; then the model alone in this
process, a call of 1, 8 and 64 rows through each runtime: a row's share of a bigger call is what
micro-batching concurrent requests could save (README, "Speed"); and the one-row call as each API
timed it under load (`api_model_seconds`). When Prometheus is installed, it scrapes this API every
5 s during the run, as in the stack: the drift scores it triggers are part of what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from app import registry, stack
from app.allocator import allocator_env
from app.config import Params, Settings, get_settings, load_params
from app.data import load_split
from app.log import quiet_mlflow
from app.poll import wait_for
from app.stack.services import uvicorn
from app.training import setup_mlflow, train_and_log

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
OURS = "this API, ONNX Runtime"
TORCH = "this API, PyTorch"
UNSTORED = "this API, keeping no predictions"
UNDRIFTED = "this API, no drift window"
PYMALLOC = "this API, Python's allocator"
MLFLOW = "mlflow models serve"
BARE = "FastAPI alone (the ceiling)"
BEFORE_SHADOW = "this API, again, just before"
SHADOWED = "this API, a challenger in shadow"
REPO = Path(__file__).resolve().parents[1]
BATCH_ROWS = (1, 8, 64)
RUNTIME_OF = {OURS: "onnxruntime", TORCH: "native"}  # the API variant serving through each


def wrk(url: str, body: dict, connections: int, seconds: int) -> dict[str, float]:
    """Run wrk (1 thread: the server gets the other core) and parse throughput and latency."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        script.name,
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(script.name).unlink()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url} answered {errors.group(1)} errors under load:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50": latency("50"), "p99": latency("99")}


def load_arguments(parser: argparse.ArgumentParser, connections: str, rounds: int) -> None:
    """The options of a wrk load: connections, seconds a run, rounds."""
    parser.add_argument("--connections", default=connections, help="comma-separated")
    parser.add_argument("--seconds", type=int, default=5, help="one wrk run")
    parser.add_argument("--rounds", type=int, default=rounds, help="runs of each at each load")


def loads_of(args: argparse.Namespace) -> list[int]:
    """The connection counts asked for; stops at once when wrk is missing."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: install it with `sudo apt-get install wrk`")
    return [int(c) for c in args.connections.split(",")]


def promoted_cnn(settings: Settings, params: Params) -> tuple[str, str]:
    """Train the CNN, register it and let the gate promote it: its version and model URI."""
    setup_mlflow(settings)
    logged = train_and_log(settings, params, "cnn")
    version = registry.register_challenger(settings, logged.model_uri).version
    registry.gate(settings, params, version)
    return version, logged.model_uri


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    load_arguments(parser, "1,8,64", rounds=3)
    args = parser.parse_args()
    loads = loads_of(args)
    with tempfile.TemporaryDirectory() as state:
        # Alertmanager's port too, though none runs: no alert is sent.
        settings = throwaway_settings(state, "prometheus_port", "alertmanager_port")
        params = load_params()
        mlflow_service, api_service, prometheus = (
            stack.service(settings, name) for name in ("mlflow", "api", "prometheus")
        )
        scraped = prometheus.command is not None

        def variant(name: str, **changes) -> tuple[Settings, stack.Service]:
            return api_beside(settings, Path(state) / name, **changes)

        others = {
            TORCH: variant("native", api_model_runtime="native"),
            UNSTORED: variant("unstored", feedback_store=False),
            UNDRIFTED: variant("undrifted", api_drift_window=False),
            PYMALLOC: variant("pymalloc", api_allocator="python"),
        }
        others[MLFLOW] = (settings, mlflow_serve(settings))
        others[BARE] = (settings, bare_fastapi(settings))
        try:
            stack.start(settings, mlflow_service)
            version, model_uri = promoted_cnn(settings, params)
            alone = model_alone(model_uri, load_split(settings.data_dir / "val")[0])
            stack.start(settings, api_service)
            for owner, service in others.values():
                stack.start(owner, service)
            if scraped:
                stack.start(settings, prometheus)
            row = load_split(settings.data_dir / "val")[0][0].tolist()
            api = f"{settings.api_url}/predict"
            targets = {OURS: api} | {
                name: service.url if name in (MLFLOW, BARE) else f"{owner.api_url}/predict"
                for name, (owner, service) in others.items()
            }
            one_row = {"instances": [row]}
            bodies = {
                name: (url, {"inputs": [row]} if name == MLFLOW else one_row)
                for name, url in targets.items()
            }
            results = measure(bodies, loads, args.seconds, args.rounds)
            served = {
                name: model_seconds(url.removesuffix("/predict"))
                for name, url in targets.items()
                if name in RUNTIME_OF
            }
            # The shadow against this API measured again just before it: by then its feedback
            # store holds every earlier request, and a bigger table costs its writer more.
            results |= measure({BEFORE_SHADOW: (api, one_row)}, loads, args.seconds, args.rounds)
            shadowed = shadow_challenger(settings, params)
            results |= measure({SHADOWED: (api, one_row)}, loads, args.seconds, args.rounds)
            scored = shadow_counts(settings)
        finally:
            for owner, service in others.values():
                stack.stop(owner, service)
            for service in (prometheus, api_service, mlflow_service):
                stack.stop(settings, service)
    print(f"\nmodel: {settings.model_name} v{version} (CNN), 1 instance a request, 1 worker each,")
    print(
        f"wrk -t1 -c<connections> -d{args.seconds}s on {os.cpu_count()} cores, "
        f"median of {args.rounds} rounds"
    )
    print(
        "this API scraped by Prometheus every 5 s: "
        + ("yes\n" if scraped else "no (not installed)\n")
    )
    print_table(results, loads)
    print_model_alone(alone, served)
    print(
        f"\nshadow: challenger v{shadowed} scored {scored['agree'] + scored['disagree']:.0f} "
        f"requests ({scored['agree']:.0f} agreeing), dropped {scored['dropped']:.0f} (queue full)"
    )
    return 0


def throwaway_settings(state: str, *ports: str) -> Settings:
    """This checkout's settings on the state folder `state`, with MLflow, the API and the other
    `ports` named (settings' fields) on free ports: a stack beside any other."""
    names = ("mlflow_port", "api_port", *ports)
    return get_settings().model_copy(
        update={"state_dir": Path(state)} | {name: stack.free_port() for name in names}
    )


def api_beside(settings: Settings, state_dir: Path, **changes) -> tuple[Settings, stack.Service]:
    """Another API on `settings`' stack, with `changes` to its settings: its own state folder
    (pid file, log) and a free port. Its settings, and its service to start and stop."""
    owner = settings.model_copy(
        update={"state_dir": state_dir, "api_port": stack.free_port()} | changes
    )
    return owner, stack.service(owner, "api")


def print_runs(results: dict[str, dict[int, dict[str, float]]]) -> None:
    """A line a server: at each load, the median throughput, the rounds' spread, the p99."""
    width = max(map(len, results))
    for name, by_load in results.items():
        cells = "  ".join(
            f"{c} conn. {r['rps']:6.0f} req/s ({r['low']:.0f}-{r['high']:.0f}), "
            f"p99 {r['p99']:6.2f} ms"
            for c, r in by_load.items()
        )
        print(f"{name:<{width}}  {cells}")


def mlflow_serve(settings: Settings) -> stack.Service:
    """`mlflow models serve` of the champion, one worker, on a free port: the peer."""
    port = stack.free_port()
    return stack.Service(
        name="mlflow-serve",
        command=[
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{settings.model_name}@champion",
            "--env-manager",
            "local",
            "--workers",
            "1",
            "--host",
            settings.host,
            "--port",
            str(port),
        ],  # fmt: skip
        port=port,
        health_url=f"{settings.url(port)}/health",
        url=f"{settings.url(port)}/invocations",
        # It starts `uvicorn` by name: this environment's, also outside `make`
        env={
            "MLFLOW_TRACKING_URI": settings.mlflow_uri,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        startup_seconds=120,
    )


def bare_fastapi(settings: Settings) -> stack.Service:
    """FastAPI alone (bench/bare_api.py) on a free port: the ceiling."""
    port = stack.free_port()
    return stack.Service(
        name="bare-fastapi",
        command=uvicorn("bench.bare_api:create_app", settings.host, port),
        port=port,
        health_url=f"{settings.url(port)}/health",
        url=f"{settings.url(port)}/predict",
        # On the API's allocator too: the ceiling of the same runtime.
        env={"PYTHONPATH": str(REPO)} | (allocator_env(settings) or {}),
    )


def measure(
    targets: dict[str, tuple[str, dict]], loads: list[int], seconds: int, rounds: int
) -> dict[str, dict[int, dict[str, float]]]:
    """wrk against each target (a URL and its body) at each number of connections, `rounds`
    times, the targets taking turns, each round starting with the next one, after a 3 s warm-up
    each that is not counted. Each figure is the median of its rounds; `low` and `high` keep the
    rounds' lowest and highest throughput.
    A VM's speed drifts by 10 % and more within minutes: measured one after the other, two servers
    would be compared across that drift."""
    for url, body in targets.values():
        wrk(url, body, max(loads), 3)
    runs: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {connections: [] for connections in loads} for name in targets
    }
    names = list(targets)
    for round_ in range(rounds):
        # One server further on each round: none always holds the same place in the turns.
        shift = round_ % len(names)
        order = names[shift:] + names[:shift]
        for connections in loads:
            for name in order:
                url, body = targets[name]
                runs[name][connections].append(wrk(url, body, connections, seconds))
    return {
        name: {connections: summary(measured) for connections, measured in by_load.items()}
        for name, by_load in runs.items()
    }


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each figure over the rounds, and the lowest and highest throughput."""
    throughputs = [run["rps"] for run in runs]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return medians | {"low": min(throughputs), "high": max(throughputs)}


def print_table(results: dict[str, dict[int, dict[str, float]]], loads: list[int]) -> None:
    """Throughput and latency per server and load; then the ratios that matter, per load."""
    head = "".join(f" | {f'{c} conn. req/s':>15} | {'p50 ms':>7} | {'p99 ms':>7}" for c in loads)
    print(f"| {'server':<34}{head} |")
    print(f"|{'-' * 36}" + f"|{'-' * 17}|{'-' * 9}|{'-' * 9}" * len(loads) + "|")
    for name, by_load in results.items():
        cells = "".join(
            f" | {r['rps']:>15.0f} | {r['p50']:>7.2f} | {r['p99']:>7.2f}"
            for r in (by_load[c] for c in loads)
        )
        print(f"| {name:<34}{cells} |")
    print("\nratios (throughput, p50, p99 of the first over the second):")
    for label, a, b in [
        ("this API / mlflow models serve", OURS, MLFLOW),
        ("this API / FastAPI alone", OURS, BARE),
        ("ONNX Runtime / PyTorch", OURS, TORCH),
        ("storing predictions (with/without)", OURS, UNSTORED),
        ("a drift window (with/without)", OURS, UNDRIFTED),
        ("the allocator (mimalloc/Python's)", OURS, PYMALLOC),
        ("a shadow challenger (with/without)", SHADOWED, BEFORE_SHADOW),
    ]:
        cells = "".join(
            f" | {x['rps'] / y['rps']:>14.2f}x | {x['p50'] / y['p50']:>6.2f}x"
            f" | {x['p99'] / y['p99']:>6.2f}x"
            for x, y in ((results[a][c], results[b][c]) for c in loads)
        )
        print(f"| {label:<34}{cells} |")
    print("\nthe rounds' lowest and highest throughput (req/s): how far one run can be off")
    for name, by_load in results.items():
        spans = (f"{r['low']:.0f} to {r['high']:.0f}" for r in by_load.values())
        cells = "".join(f" | {span:>33}" for span in spans)
        print(f"| {name:<34}{cells} |")


def model_alone(model_uri: str, val: np.ndarray) -> dict[str, dict[int, float]]:
    """The model's own time, in this process, one thread: microseconds a call of n val rows,
    through each runtime. What micro-batching (n requests' rows in one call) could save is the
    difference between a call of one row and a row's share of a bigger call."""
    quiet_mlflow()
    timings: dict[str, dict[int, float]] = {}
    for runtime in ("onnxruntime", "native"):
        config = {"runtime": runtime, "runtime_threads": 1}
        loaded = mlflow.pyfunc.load_model(model_uri, model_config=config)
        if "torch" in sys.modules:  # one thread, as the API runs it (api_threads)
            import torch

            torch.set_num_threads(1)
        classifier = loaded.unwrap_python_model().classifier
        timings[runtime] = {}
        for rows in BATCH_ROWS:
            features = val[:rows].astype(np.float32)
            calls = max(20, 2000 // rows)
            for _ in range(calls // 10):  # warm-up
                classifier.predict_proba(features)
            started = time.perf_counter()
            for _ in range(calls):
                classifier.predict_proba(features)
            timings[runtime][rows] = (time.perf_counter() - started) / calls * 1e6
    return timings


def model_seconds(api_url: str) -> float:
    """The mean time of the API's model calls so far, in microseconds, from its own
    `api_model_seconds` histogram: the model timed inside the API, under the load just measured."""
    families = text_string_to_metric_families(httpx.get(f"{api_url}/metrics").text)
    samples = {
        sample.name: sample.value
        for family in families
        if family.name == "api_model_seconds"
        for sample in family.samples
        if sample.labels.get("role") == "champion"
    }
    return samples["api_model_seconds_sum"] / samples["api_model_seconds_count"] * 1e6


def print_model_alone(timings: dict[str, dict[int, float]], served: dict[str, float]) -> None:
    """Microseconds a call, and a row's share of it, at each batch size; then the same one-row
    call timed inside the API under load: more, since the request path around it and the model
    take turns in the core's caches (README, "Speed")."""
    print("\nthe model alone, one thread: microseconds a call of n rows (a row's share)")
    print("| runtime      " + "".join(f"| {f'n = {n}':>18} " for n in BATCH_ROWS) + "|")
    print("|--------------" + "|--------------------" * len(BATCH_ROWS) + "|")
    for runtime, by_rows in timings.items():
        cells = "".join(f"| {f'{t:.0f} ({t / n:.1f})':>18} " for n, t in by_rows.items())
        print(f"| {runtime:<12} {cells}|")
    print("\nthe same one-row call timed inside the API under wrk (api_model_seconds, mean):")
    for name, microseconds in served.items():
        alone = timings[RUNTIME_OF[name]][1]
        print(f"| {name:<34} | {microseconds:>5.0f} us | {microseconds / alone:>4.1f}x alone |")


def shadow_challenger(settings, params) -> str:
    """A second CNN as @challenger; returns its version once the API scores with it."""
    logged = train_and_log(settings, params, "cnn", overrides={"epochs": 10}, label="shadow")
    version = registry.register_challenger(settings, logged.model_uri).version
    wait_for(lambda: shadow_counts(settings)["following"] == version, 30, what="the challenger")
    return version


def shadow_counts(settings) -> dict:
    """The API's shadow counters, and the challenger it follows."""
    metrics = httpx.get(f"{settings.api_url}/metrics").text
    found = {"agree": 0.0, "disagree": 0.0, "dropped": 0.0, "following": None}
    for line in metrics.splitlines():
        if line.startswith("api_shadow_predictions_total{"):
            found[re.search(r'agreement="(\w+)"', line)[1]] += float(line.split()[-1])
        elif line.startswith("api_shadow_dropped_total "):
            found["dropped"] = float(line.split()[-1])
        elif line.startswith("api_challenger_info{") and line.endswith(" 1.0"):
            found["following"] = re.search(r'version="(\w+)"', line)[1]
    return found


if __name__ == "__main__":
    sys.exit(main())
