"""`python -m bench.playground`: how often the playground recognises scripted strokes of each digit.

A simple pen path per digit (STROKES, in a unit square) is drawn on the playground's canvas by
headless Chromium through real pointer events, in a few variants (smaller, slanted, off centre),
and the page's Predict button sends it to the API. Starts a throwaway stack (its own MLflow
server and API on free ports), trains each model family on data/ and serves each in turn.
Prints the share of variants recognised per digit and family, and what the model said for the
misses. `--url http://127.0.0.1:8000 --rounds 4` measures the stack's served model instead, and
prints the API's drift gauges before and after: drawings are not scans.
A measurement, not a test: tests/integration/test_playground.py checks the page works.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from app.drawing import STROKES, VARIANTS, placed
from tests.helpers import browser_path, predict_drawing


def recognition(url: str) -> Iterator[tuple[int, int, list[str]]]:
    """Per digit: how many variants the served model recognised, and what it said for misses."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(f"{url}/playground")
        page.get_by_label("Predict when I pause drawing").uncheck()
        for digit, strokes in STROKES.items():
            hits, misses = 0, []
            for variant in VARIANTS:
                answer = predict_drawing(page, [placed(s, *variant) for s in strokes])
                said = answer["predictions"][0]["digit"]
                hits += said == digit
                if said != digit:
                    misses.append(f"{said} (variant {variant})")
            yield digit, hits, misses
        browser.close()


def report(url: str, rounds: int = 1) -> None:
    """Print how often the model `url` serves recognises each digit (drawn `rounds` times)."""
    total = 0
    for _ in range(rounds):
        for digit, hits, misses in recognition(url):
            total += hits
            print(f"  {digit}: {hits}/{len(VARIANTS)}  {', '.join(misses)}")
    print(f"  all: {total}/{rounds * 10 * len(VARIANTS)}")


def drift_gauges(url: str) -> str:
    """The API's drift gauges, as `/metrics` has them now."""
    names = ("api_input_drift_score", "api_input_drift_threshold", "api_drift_window_inputs")
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return ", ".join(line for line in lines if line.split(" ")[0] in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", help="default: every family")
    parser.add_argument("--url", help="measure the model this running API serves instead")
    parser.add_argument("--rounds", type=int, default=1, help="with --url: draw everything N times")
    args = parser.parse_args(argv)
    if browser_path() is None:
        print("needs Chromium: make system-deps", file=sys.stderr)
        return 1
    if args.url:  # a live API (the stack's): the drawings also fill its drift window
        print(f"before: {drift_gauges(args.url)}")
        report(args.url, args.rounds)
        print(f"after: {drift_gauges(args.url)}")
        return 0
    from mlflow.tracking import MlflowClient

    from app import registry, stack
    from app.config import get_settings, load_params
    from app.data import read_pin
    from app.training import FAMILIES, setup_mlflow, train_and_log

    params = load_params()
    with tempfile.TemporaryDirectory() as state:
        settings = get_settings().model_copy(
            update={"state_dir": Path(state), "mlflow_port": stack.free_port()}
        )
        (mlflow_service,) = [s for s in stack.services(settings) if s.name == "mlflow"]
        stack.start(settings, mlflow_service)
        setup_mlflow(settings)
        try:
            print(f"data {read_pin(settings.dvc_file).version}, {len(VARIANTS)} variants per digit")
            for family in args.family or FAMILIES:
                logged = train_and_log(settings, params, family)
                version = registry.register_challenger(settings, logged.model_uri).version
                MlflowClient().set_registered_model_alias(
                    settings.model_name, registry.CHAMPION, version
                )  # each family served in turn, whatever the gate would say
                served = settings.model_copy(update={"api_port": stack.free_port()})
                api = stack.service(served, "api")
                stack.start(served, api)
                try:
                    print(f"\n{family} (val accuracy {logged.metrics['val_accuracy']:.3f})")
                    report(served.url(api.port))
                finally:
                    stack.stop(served, api)
        finally:
            stack.stop(settings, mlflow_service)
    return 0


if __name__ == "__main__":
    sys.exit(main())
