"""`make bench`: this API against `mlflow models serve`, same model, payload and load.

Starts a throwaway stack (its own MLflow server in a temporary folder, on free ports),
trains and promotes the CNN, serves that one model version three times, one worker each: this
API, this API keeping no predictions for labels (`feedback_store` off: what storing costs), and
`mlflow models serve`; loads each with wrk: one instance per request, the same connections and
duration. Then a second CNN becomes @challenger, which the API scores every request with in
shadow, off the answer's path (app/serving/rollout.py), and this API is measured again.
Prints requests per second, p50 and p99 latency, and the ratios. When Prometheus is
installed, it scrapes this API every 5 s during the run, as in the stack: the drift scores it
triggers are part of what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from app import registry, stack
from app.config import get_settings, load_params
from app.data import load_split
from app.poll import wait_for
from app.training import setup_mlflow, train_and_log

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
UNSTORED = "this API, keeping no predictions"
SHADOWED = "this API, a challenger in shadow"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: install it with `sudo apt-get install wrk`")
    with tempfile.TemporaryDirectory() as state:
        settings = get_settings().model_copy(
            update={
                "state_dir": Path(state),
                "mlflow_port": stack.free_port(),
                "api_port": stack.free_port(),
                "prometheus_port": stack.free_port(),
                "alertmanager_port": stack.free_port(),  # none runs: no alert is sent
            }
        )
        params = load_params()
        mlflow_service, api_service, prometheus = (
            stack.service(settings, name) for name in ("mlflow", "api", "prometheus")
        )
        scraped = prometheus.command is not None
        # The same API keeping no predictions: its own state folder (pid file, log) and port.
        unstored_settings = settings.model_copy(
            update={
                "state_dir": Path(state) / "unstored",
                "api_port": stack.free_port(),
                "feedback_store": False,
            }
        )
        unstored = stack.service(unstored_settings, "api")
        serve_port = stack.free_port()
        mlflow_serve = stack.Service(
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
                str(serve_port),
            ],  # fmt: skip
            port=serve_port,
            health_url=f"{settings.url(serve_port)}/health",
            url=f"{settings.url(serve_port)}/invocations",
            env={"MLFLOW_TRACKING_URI": settings.mlflow_uri},
            startup_seconds=120,
        )
        try:
            stack.start(settings, mlflow_service)
            setup_mlflow(settings)
            logged = train_and_log(settings, params, "cnn")
            version = registry.register_challenger(settings, logged.model_uri).version
            registry.gate(settings, params, version)
            stack.start(settings, api_service)
            stack.start(unstored_settings, unstored)
            if scraped:
                stack.start(settings, prometheus)
            stack.start(settings, mlflow_serve)
            row = load_split(settings.data_dir / "val")[0][0].tolist()
            api = f"{settings.api_url}/predict"
            results = {}
            for name, url, body in [
                ("this API (FastAPI + uvicorn)", api, {"instances": [row]}),
                ("mlflow models serve", mlflow_serve.url, {"inputs": [row]}),
                (UNSTORED, f"{unstored_settings.api_url}/predict", {"instances": [row]}),
            ]:
                wrk(url, body, args.connections, 3)  # warm-up, not counted
                results[name] = wrk(url, body, args.connections, args.seconds)
            shadowed = shadow_challenger(settings, params)
            wrk(api, {"instances": [row]}, args.connections, 3)
            results[SHADOWED] = wrk(api, {"instances": [row]}, args.connections, args.seconds)
            scored = shadow_counts(settings)
        finally:
            stack.stop(unstored_settings, unstored)
            for service in (mlflow_serve, prometheus, api_service, mlflow_service):
                stack.stop(settings, service)
    print(
        f"\nmodel: {settings.model_name} v{version} (CNN), 1 instance per request, 1 worker each,"
    )
    print(f"wrk -t1 -c{args.connections} -d{args.seconds}s on {os.cpu_count()} cores")
    print(
        "this API scraped by Prometheus every 5 s: "
        + ("yes\n" if scraped else "no (not installed)\n")
    )
    print(f"| {'server':<34} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    for name, r in results.items():
        print(f"| {name:<34} | {r['rps']:>8.0f} | {r['p50']:>7.2f} | {r['p99']:>7.2f} |")
    ours, theirs, unstored_result, shadow_result = results.values()
    for label, a, b in [
        ("ratio (this API / mlflow)", ours, theirs),
        ("storing predictions (with/without)", ours, unstored_result),
        ("a shadow challenger (with/without)", shadow_result, ours),
    ]:
        print(
            f"| {label:<34} | {a['rps'] / b['rps']:>7.2f}x | "
            f"{a['p50'] / b['p50']:>6.2f}x | {a['p99'] / b['p99']:>6.2f}x |"
        )
    print(
        f"\nshadow: challenger v{shadowed} scored {scored['agree'] + scored['disagree']:.0f} "
        f"requests ({scored['agree']:.0f} agreeing), dropped {scored['dropped']:.0f} (queue full)"
    )
    return 0


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
