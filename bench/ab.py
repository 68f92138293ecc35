"""`make bench-ab BASE=<commit>`: this checkout's API against the API of another commit.

How every change in README "Speed" was judged: the two APIs serve the same model version side by
side, and wrk loads them in alternating rounds (bench/serving.py's `measure`), so that the VM's
drift, 10 % and more within minutes, falls on both alike. `--copies 2` (the default) serves the
base twice: how far two identical APIs differ in the same run is the noise to read a ratio against.

The base commit is checked out in a temporary git worktree (removed after) and imported from there
(`PYTHONPATH`); both run on this checkout's stack, settings and allocator. A base older than the
settings it is given, or than the data and registry it reads, fails at start-up with its own error.
`--set NAME=VALUE` (`make bench-ab SET=...`) gives this checkout's API alone other settings: with
the base `HEAD`, the A/B of a setting (`api_threads=2`: ONNX Runtime on two threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from app import stack
from app.config import Settings, load_params
from app.data import load_split
from bench.serving import (
    REPO,
    api_beside,
    load_arguments,
    loads_of,
    measure,
    print_runs,
    promoted_cnn,
    throwaway_settings,
)

THIS = "this checkout"


@contextmanager
def checked_out(commit: str, folder: Path) -> Iterator[str]:
    """`commit` in a git worktree at `folder` (detached) while the block runs; its short id."""
    git = ["git", "-C", str(REPO)]
    added = subprocess.run(
        [*git, "worktree", "add", "--detach", "--quiet", str(folder), commit],
        capture_output=True,
        text=True,
    )
    if added.returncode != 0:
        raise SystemExit(f"cannot check out {commit!r}: {added.stderr.strip()}")
    try:
        yield subprocess.run(
            [*git, "rev-parse", "--short", commit], check=True, capture_output=True, text=True
        ).stdout.strip()
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(folder)], check=False)


def settings_changes(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs as settings and their validated values; stops at a wrong one."""
    changes = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        field = Settings.model_fields.get(name)
        if field is None or not equals:
            raise SystemExit(f"--set {pair!r}: not NAME=VALUE with a setting's NAME")
        try:
            kind = TypeAdapter(field.rebuild_annotation())  # its type and constraints
            changes[name] = kind.validate_python(value)
        except ValidationError as error:
            raise SystemExit(f"--set {pair!r}: {error.errors()[0]['msg']}") from None
    return changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "base", nargs="?", default="HEAD", help="the commit to compare with (default: HEAD)"
    )
    parser.add_argument("--copies", type=int, default=2, help="APIs of the base commit")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of this checkout's API alone (app/config/settings.py, e.g. api_threads=2): "
        "with the base HEAD, an A/B of a setting rather than of a commit",
    )
    load_arguments(parser, "1,8", rounds=5)
    args = parser.parse_args()
    loads = loads_of(args)
    changes = settings_changes(args.set)
    with tempfile.TemporaryDirectory() as state:
        checkout = Path(state) / "base"
        with checked_out(args.base, checkout) as base:
            settings = throwaway_settings(str(Path(state) / "stack"))
            this_settings = settings.model_copy(update=changes)
            mlflow_service = stack.service(settings, "mlflow")
            api_service = stack.service(this_settings, "api")
            if api_service.command is None:
                raise SystemExit(f"the API cannot start: {api_service.install_hint}")
            apis = {THIS: (this_settings, api_service)}
            for copy in range(1, args.copies + 1):
                name = f"{base} ({copy})" if args.copies > 1 else base
                owner, service = api_beside(settings, Path(state) / f"base-{copy}")
                pythonpath = {"PYTHONPATH": str(checkout)}
                apis[name] = (owner, dataclasses.replace(service, env=service.env | pythonpath))
            try:
                stack.start(settings, mlflow_service)
                version, _ = promoted_cnn(settings, load_params())
                for owner, service in apis.values():
                    stack.start(owner, service)
                body = {"instances": [load_split(settings.data_dir / "val")[0][0].tolist()]}
                targets = {
                    name: (f"{owner.api_url}/predict", body) for name, (owner, _) in apis.items()
                }
                results = measure(targets, loads, args.seconds, args.rounds)
            finally:
                for owner, service in (*apis.values(), (settings, mlflow_service)):
                    stack.stop(owner, service)
    settings_set = "".join(f" --set {pair}" for pair in args.set)
    print(f"\n{THIS}{settings_set} against {args.base} ({base}), model v{version} (CNN),")
    print(f"one digit a request, wrk -t1 -c<n> -d{args.seconds}s,", end=" ")
    print(f"median of {args.rounds} alternating rounds\n")
    print_runs(results)
    width = max(map(len, results))
    print(f"\nratios, {THIS} over each (throughput; p99):")
    ours = results[THIS]
    for name, theirs in list(results.items())[1:]:
        cells = "  ".join(
            f"{c} conn. {ours[c]['rps'] / theirs[c]['rps']:.3f}x; "
            f"{ours[c]['p99'] / theirs[c]['p99']:.2f}x"
            for c in loads
        )
        print(f"{name:<{width}}  {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
