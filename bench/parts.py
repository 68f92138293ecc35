"""`make bench-parts`: what each part of a request costs, and what no model path can reach.

This API as it is, and the same API with its model call taken out, its log line, and both
(bench/parts_api.py), beside `mlflow models serve` and FastAPI alone (bench/serving.py's peer and
ceiling), all serving the same promoted CNN version, one worker each, loaded by wrk in alternating
rounds (bench/serving.py's `measure`). The API without its model is the most any model path could
give: a goal above it (so many times mlflow's throughput) asks more of the request around the
model than of the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from app import stack
from app.config import load_params
from app.data import load_split
from app.stack.services import uvicorn
from bench.serving import (
    REPO,
    api_beside,
    bare_fastapi,
    load_arguments,
    loads_of,
    measure,
    mlflow_serve,
    print_runs,
    promoted_cnn,
    throwaway_settings,
)

OURS, MLFLOW, BARE = "this API", "mlflow models serve", "FastAPI alone"
WITHOUT = {
    "this API without its model call": "model",
    "this API without its log line": "log",
    "this API without either": "model,log",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    load_arguments(parser, "1,8", rounds=5)
    args = parser.parse_args()
    loads = loads_of(args)
    with tempfile.TemporaryDirectory() as state:
        settings = throwaway_settings(state)
        mlflow_service, api_service = (stack.service(settings, n) for n in ("mlflow", "api"))
        if api_service.command is None:
            raise SystemExit(f"the API cannot start: {api_service.install_hint}")
        servers = {OURS: (settings, api_service)}
        for name, parts in WITHOUT.items():
            owner, api = api_beside(settings, Path(state) / parts)
            servers[name] = (
                owner,
                dataclasses.replace(
                    api,
                    command=uvicorn("bench.parts_api:create_app", owner.host, owner.api_port),
                    env=api.env | {"BENCH_WITHOUT": parts, "PYTHONPATH": str(REPO)},
                ),
            )
        servers[MLFLOW] = (settings, mlflow_serve(settings))
        servers[BARE] = (settings, bare_fastapi(settings))
        try:
            stack.start(settings, mlflow_service)
            version, _ = promoted_cnn(settings, load_params())
            for owner, service in servers.values():
                stack.start(owner, service)
            row = load_split(settings.data_dir / "val")[0][0].tolist()

            def target(name: str, owner, service: stack.Service) -> tuple[str, dict]:
                if name == MLFLOW:
                    return service.url, {"inputs": [row]}
                url = service.url if name == BARE else f"{owner.api_url}/predict"
                return url, {"instances": [row]}

            targets = {name: target(name, *server) for name, server in servers.items()}
            results = measure(targets, loads, args.seconds, args.rounds)
        finally:
            for owner, service in (*servers.values(), (settings, mlflow_service)):
                stack.stop(owner, service)
    print(f"\nmodel v{version} (CNN), one digit a request, one worker each,")
    print(f"wrk -t1 -c<n> -d{args.seconds}s, median of {args.rounds} alternating rounds\n")
    print_runs(results)
    width = max(map(len, results))
    print("\nthroughput over mlflow models serve's; over FastAPI alone's:")
    for name in (OURS, *WITHOUT):
        cells = "  ".join(
            f"{c} conn. {results[name][c]['rps'] / results[MLFLOW][c]['rps']:5.2f}x; "
            f"{results[name][c]['rps'] / results[BARE][c]['rps']:.2f}x"
            for c in loads
        )
        print(f"{name:<{width}}  {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
