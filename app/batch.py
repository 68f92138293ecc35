"""`python -m app.batch INPUT --out OUT`: score a folder of images or a CSV of rows with @champion.

Scoring as a job rather than a service: no server, no latency to hold, every row of a file at
once. The champion is loaded from the registry once; each row is scored (through ONNX Runtime,
as the API serves it) in chunks; the predictions are written with the model version and a hash
of each row's 64 inputs, so that a row can be traced to the model that scored it and matched
with the same input elsewhere; and the job is an MLflow run in the experiment `<experiment>-batch`
with its lineage (model version and run, input, counts) and the output as an artifact.

Inputs: a folder of images (PNG or JPEG; the dataset's 8x8 files as they are, any other size
read as `/predict/image` reads a photo or a drawing), or a CSV file of rows of 64 pixel values
on 0..16 (a header line is allowed). A file or line that cannot be read is refused by name, in
`<OUT>.rejected.csv`, and the batch goes on; the exit code is 0 when the job ran, 1 when it could
not (no champion, no input, no registry).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from PIL import Image, UnidentifiedImageError

from app.config import Settings, get_settings
from app.data.images import MAX_VALUE, SIDE, from_image, image_to_features
from app.log import quiet_mlflow, setup_logging
from app.training.tracking import MlflowUnavailable, setup_mlflow

log = logging.getLogger("app.batch")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
CHUNK_ROWS = 1024  # rows per model call: big enough to pay, small enough for any memory
PIXELS = SIDE * SIDE


@dataclass
class Inputs:
    """What a batch read: each row's source and 64 values, and what it refused, with why."""

    sources: list[str] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def add(self, source: str, values: np.ndarray) -> None:
        """A row, unless its values are not 64 finite numbers on 0..16."""
        if values.shape != (PIXELS,):
            self.rejected.append((source, f"{values.size} values, not {PIXELS}"))
        elif not np.isfinite(values).all() or values.min() < 0 or values.max() > MAX_VALUE:
            self.rejected.append((source, f"a value outside 0..{MAX_VALUE}"))
        else:
            self.rows.append(values.astype(np.float32))
            self.sources.append(source)


def read_inputs(path: Path, max_image_pixels: int) -> Inputs:
    """The rows of a folder of images or of a CSV file; what cannot be read is refused, named."""
    inputs = Inputs()
    if path.is_dir():
        for image_path in sorted(p for p in path.iterdir() if p.is_file()):
            if image_path.suffix.lower() not in IMAGE_SUFFIXES:
                inputs.rejected.append((image_path.name, "not a PNG or JPEG file"))
                continue
            try:
                inputs.add(image_path.name, read_image(image_path, max_image_pixels))
            except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as error:
                unreadable = isinstance(error, UnidentifiedImageError)  # its message names a path
                problem = "not a readable PNG or JPEG image" if unreadable else str(error)
                inputs.rejected.append((image_path.name, problem))
    elif path.suffix.lower() == ".csv":
        for number, line in csv_lines(path):
            try:
                inputs.add(f"line {number}", np.array([float(v) for v in line], dtype=np.float64))
            except ValueError as error:
                inputs.rejected.append((f"line {number}", f"not a number: {error}"))
    else:
        raise ValueError(f"{path}: give a folder of images or a .csv file of rows")
    return inputs


def read_image(path: Path, max_image_pixels: int) -> np.ndarray:
    """An 8x8 dataset image as it is; any other image as the API reads an upload."""
    with Image.open(path, formats=["PNG", "JPEG"]) as image:
        width, height = image.size
        if width * height > max_image_pixels:
            raise ValueError(f"{width}x{height} pixels, the limit is {max_image_pixels}")
        if image.size == (SIDE, SIDE) and image.mode == "L":
            return from_image(image)
        image.load()
        return image_to_features(image)


def csv_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each non-empty line's cells, by line number; a first line that holds words is a header."""
    with path.open(newline="") as file:
        for number, cells in enumerate(csv.reader(file), start=1):
            if not cells or all(not cell.strip() for cell in cells):
                continue
            if number == 1 and any(c.strip() and not looks_numeric(c) for c in cells):
                continue  # a header
            yield number, cells


def looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def input_hash(row: np.ndarray) -> str:
    """A row's identity: sha256 of its 64 values as little-endian float32 (the API's storage)."""
    return hashlib.sha256(row.astype("<f4").tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class BatchResult:
    """What a job did: where it wrote, what scored it, how many rows, how fast."""

    out: Path
    rejected_file: Path
    model_version: str
    run_id: str
    scored: int
    refused: list[tuple[str, str]]  # (file or line, why)
    seconds: float

    @property
    def rejected(self) -> int:
        """How many files or lines were refused."""
        return len(self.refused)


def score(settings: Settings, source: Path, out: Path) -> BatchResult:
    """Score every readable row of `source` with @champion into `out` (CSV), logged as a run."""
    quiet_mlflow()
    setup_mlflow(settings)
    client = MlflowClient()
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    version = str(champion.version)  # MLflow's SQL store, used without a server, gives an int
    inputs = read_inputs(source, settings.api_max_image_pixels)
    model_uri = f"models:/{settings.model_name}/{version}"
    config = {"runtime": settings.api_model_runtime, "runtime_threads": settings.api_threads}
    classifier = mlflow.pyfunc.load_model(model_uri, model_config=config)
    classifier = classifier.unwrap_python_model().classifier
    features = np.stack(inputs.rows) if inputs.rows else np.empty((0, PIXELS), np.float32)
    started = time.perf_counter()
    chunks = [
        classifier.predict_proba(features[i : i + CHUNK_ROWS])
        for i in range(0, len(features), CHUNK_ROWS)
    ]
    seconds = time.perf_counter() - started
    probabilities = np.concatenate(chunks) if chunks else np.empty((0, 10), np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, inputs, probabilities, settings.model_name, version)
    rejected_file = out.with_suffix(".rejected.csv")
    with rejected_file.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["source", "problem"])
        writer.writerows(inputs.rejected)
    setup_mlflow(settings, f"{settings.experiment_name}-batch")
    with mlflow.start_run(run_name=f"score-{source.name}") as run:
        mlflow.set_tags(
            {
                "model_name": settings.model_name,
                "model_version": version,
                "model_run_id": champion.run_id or "",
                "input": str(source.resolve()),
            }
        )
        mlflow.log_metrics(
            {
                "rows_scored": len(inputs.rows),
                "rows_rejected": len(inputs.rejected),
                "seconds": seconds,
                "rows_per_second": len(inputs.rows) / seconds if seconds else 0.0,
            }
        )
        mlflow.log_artifact(str(out))
        mlflow.log_artifact(str(rejected_file))
    return BatchResult(
        out,
        rejected_file,
        version,
        run.info.run_id,
        len(inputs.rows),
        inputs.rejected,
        seconds,
    )


def write_predictions(
    out: Path, inputs: Inputs, probabilities: np.ndarray, name: str, version: str
) -> None:
    """One line per row: its source and input hash, the digit, its probability, all ten, the
    model that scored it."""
    with out.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            ["source", "input_sha256", "digit", "confidence"]
            + [f"p_{d}" for d in range(10)]
            + ["model_name", "model_version"]
        )
        for source, row, p in zip(inputs.sources, inputs.rows, probabilities, strict=True):
            writer.writerow(
                [source, input_hash(row), int(p.argmax()), f"{p.max():.6f}"]
                + [f"{value:.6f}" for value in p]
                + [name, version]
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.batch", description=__doc__)
    parser.add_argument("input", type=Path, help="a folder of images, or a .csv of rows")
    parser.add_argument("--out", type=Path, required=True, help="the predictions (CSV)")
    args = parser.parse_args(argv)
    setup_logging()
    if not args.input.exists():
        log.error("%s does not exist", args.input)
        return 1
    try:
        result = score(get_settings(), args.input, args.out)
    except (ValueError, MlflowUnavailable) as error:
        log.error("%s", error)
        return 1
    except MlflowException as error:  # no @champion: nothing to score with
        log.error("no model to score with: %s (train and promote one: make train)", error.message)
        return 1
    for where, problem in result.refused:
        log.warning("refused %s: %s", where, problem)
    log.info(
        "scored %d rows with v%s in %.2f s (%.0f rows/s) into %s; refused %d (%s); run %s",
        result.scored,
        result.model_version,
        result.seconds,
        result.scored / result.seconds if result.seconds else 0,
        result.out,
        result.rejected,
        result.rejected_file,
        result.run_id,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
