"""Batch scoring: a folder of images or a CSV of rows, scored by @champion as a logged job; a bad
file or line is refused by name and the rest is scored."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from app import batch
from app.config import get_settings
from app.data import load_split
from app.data.images import read_png
from tests.helpers import champion_of, isolated


def read_rows(path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_folder_with_a_corrupt_file_is_scored_but_for_it(local_registry, params, tmp_path):
    settings = isolated(local_registry)
    version = champion_of(settings, params)
    folder = tmp_path / "digits"
    folder.mkdir()
    images = sorted((settings.data_dir / "val" / "7").glob("*.png"))[:20]
    for image in images:
        shutil.copy(image, folder / image.name)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("not an image")

    result = batch.score(settings, folder, tmp_path / "out" / "scores.csv")

    assert (result.scored, result.rejected, result.model_version) == (20, 2, version)
    rows = read_rows(result.out)
    assert [r["source"] for r in rows] == [image.name for image in images]
    assert {r["model_version"] for r in rows} == {version}
    assert sum(r["digit"] == "7" for r in rows) >= 18  # the champion reads sevens
    first = read_png(images[0])
    assert rows[0]["input_sha256"] == batch.input_hash(first)
    assert abs(sum(float(rows[0][f"p_{d}"]) for d in range(10)) - 1) < 1e-4
    assert read_rows(result.rejected_file) == [
        {"source": "broken.png", "problem": "not a readable PNG or JPEG image"},
        {"source": "notes.txt", "problem": "not a PNG or JPEG file"},
    ]
    run = MlflowClient().get_run(result.run_id)
    assert run.data.tags["model_version"] == version
    assert run.data.metrics["rows_scored"] == 20 and run.data.metrics["rows_rejected"] == 2
    logged = {a.path for a in MlflowClient().list_artifacts(result.run_id)}
    assert logged == {"scores.csv", "scores.rejected.csv"}
    # beside the registry's database, as the training runs' are: not in the working directory
    registry_folder = Path(settings.mlflow_uri.removeprefix("sqlite:///")).parent
    assert run.info.artifact_uri.startswith(registry_folder.as_uri())


def test_a_csv_of_rows_names_each_line_it_refuses(local_registry, params, tmp_path):
    settings = isolated(local_registry)
    champion_of(settings, params)
    features, labels = load_split(settings.data_dir / "val")
    lines = [",".join(f"p{i}" for i in range(64))]  # a header
    lines += [",".join(str(v) for v in row) for row in features[:10]]
    lines += ["1,2,3", ",".join(["seven"] * 64), ",".join(["17"] * 64), "", ",".join(["nan"] * 64)]
    source = tmp_path / "rows.csv"
    source.write_text("\n".join(lines) + "\n")

    result = batch.score(settings, source, tmp_path / "scores.csv")

    rows = read_rows(result.out)
    assert [r["source"] for r in rows] == [f"line {n}" for n in range(2, 12)]
    assert np.mean([int(r["digit"]) for r in rows] == labels[:10]) >= 0.9
    refused = {r["source"]: r["problem"] for r in read_rows(result.rejected_file)}
    assert refused == {
        "line 12": "3 values, not 64",
        "line 13": "not a number: could not convert string to float: 'seven'",
        "line 14": "a value outside 0..16",
        "line 16": "a value outside 0..16",
    }


def test_without_a_champion_the_command_fails_fast_and_says_so(
    local_registry, tmp_path, capsys, monkeypatch
):
    settings = isolated(local_registry)  # a registered-model name nothing was registered under
    source = tmp_path / "rows.csv"
    source.write_text(",".join(["0"] * 64) + "\n")
    monkeypatch.setenv("WORKBOOK_MODEL_NAME", settings.model_name)
    monkeypatch.setenv("WORKBOOK_MLFLOW_TRACKING_URI", settings.mlflow_uri)
    get_settings.cache_clear()  # the command reads the environment
    try:
        code = batch.main([str(source), "--out", str(tmp_path / "scores.csv")])
    finally:
        get_settings.cache_clear()
    assert code == 1
    assert "no model to score with" in capsys.readouterr().err
    assert not (tmp_path / "scores.csv").exists()
