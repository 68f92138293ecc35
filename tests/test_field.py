"""Labels from the field as a data version: sorting the store's labels, validating field_val, and
`python -m app.data field` on a real git + DVC repository, a real store and a real registry."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from app.config import REPO_ROOT
from app.data import dir_md5, dvc, is_clean, read_pin, switch_version, validate
from app.data.build import base_version
from app.data.field import (
    FIELD_PREFIX,
    FieldError,
    FieldLabel,
    NothingNew,
    fetch_labels,
    held_out,
    make_field_version,
    next_version,
    sort_labels,
)
from app.data.images import FIELD_VAL, image_to_features, to_png_bytes
from app.data.validate import DataValidationError
from app.drawing import render, scribbles
from app.feedback import FeedbackStore, Made, utcnow
from app.training.fit import for_data_version
from tests.helpers import file_bytes


def label(pid: str, digit: int, png: bytes, version: str = "1") -> FieldLabel:
    return FieldLabel(pid, digit, digit, version, "playground", png)


PNGS = [to_png_bytes(np.full(64, value)) for value in range(17)]


def test_labels_are_kept_once_and_every_other_one_is_left_out_with_its_reason():
    found = [
        label("a-0", 3, PNGS[1]),
        label("a-1", 3, PNGS[1]),  # the same drawing, labelled the same again
        label("a-2", 4, PNGS[2]),
        label("a-3", 5, PNGS[2]),  # ... and labelled another digit
        label("a-4", 6, PNGS[3], version="9"),  # a version the registry no longer has
        label("a-5", 7, PNGS[4]),  # the data holds it already
        *(label(f"b-{i}", i % 10, PNGS[5 + i]) for i in range(12)),
    ]
    done = sort_labels(found, "v1", {"1", "2"}, known={PNGS[4]}, share=0.3)
    kept = {x.prediction_id for x in done.train + done.held_out}
    assert kept == {"a-0"} | {f"b-{i}" for i in range(12)}
    assert [x.prediction_id for x in done.duplicates] == ["a-1"]
    assert [x.prediction_id for x in done.conflicting] == ["a-2", "a-3"]
    assert [x.prediction_id for x in done.vanished] == ["a-4"]
    assert [x.prediction_id for x in done.known] == ["a-5"]
    assert sum(map(len, done.left_out().values())) + done.kept == len(found)
    summary = done.summary()
    for reason in ("different digits", "no longer has", "labelled again", "already holds"):
        assert reason in summary
    assert "a-2, a-3" in summary


def test_the_held_out_share_follows_the_input_and_matches_the_setting():
    pngs = [to_png_bytes(np.random.default_rng(seed).integers(0, 17, 64)) for seed in range(2000)]
    share = np.mean([held_out(png, 0.3) for png in pngs])
    assert 0.27 < share < 0.33
    assert [held_out(png, 0.3) for png in pngs] == [held_out(png, 0.3) for png in pngs]


def test_field_versions_count_their_rounds_from_their_base():
    assert next_version("v1") == "v1+field1"
    assert next_version("v1+field1") == "v1+field2"
    assert next_version("v3+field9") == "v3+field10"
    assert base_version("v3+field2") == "v3" and base_version("v3-mislabelled") == "v3-mislabelled"


def test_a_field_version_of_v3_augments_as_v3_does(params):
    assert for_data_version(params.train, "v3+field1").cnn.augment is not None
    assert for_data_version(params.train, "v1+field1").cnn.augment is None


def test_field_val_needs_a_total_not_every_digit(data_copy, params):
    for i in range(params.validation.min_field_val):
        path = data_copy / FIELD_VAL / str(i % 3) / f"{FIELD_PREFIX}{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_png_bytes(np.full(64, i % 16) + np.eye(8).ravel() * (i // 16)))
    assert validate(data_copy, params.validation).ok  # only digits 0-2: still valid
    next(data_copy.glob(f"{FIELD_VAL}/*/*.png")).unlink()
    report = validate(data_copy, params.validation)
    assert report.rules_broken == {"too-few"}
    assert f"{FIELD_VAL}" in report.summary()


# -- the whole command, for real -------------------------------------------------------------


def features_of(drawings) -> np.ndarray:
    return np.stack([image_to_features(render(d.strokes, d.pen)) for d in drawings])


@pytest.fixture
def field_repo(dvc_repo, params, tmp_path):
    """A repository pinning v1 (committed), a registry holding versions 1 and 2 of its model,
    and a feedback store with 60 labelled drawings: two of them labelled twice."""
    switch_version(dvc_repo, params, "v1")
    subprocess.run(["git", "add", "data.dvc", ".dvc"], cwd=dvc_repo.root, check=True)
    subprocess.run(["git", "commit", "-qm", "data: v1"], cwd=dvc_repo.root, check=True)
    registry = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = dvc_repo.model_copy(
        update={"mlflow_tracking_uri": registry, "state_dir": tmp_path / "state"}
    )
    client = MlflowClient(registry, registry)
    client.create_registered_model(settings.model_name)
    for _ in range(2):
        client.create_model_version(settings.model_name, source=str(tmp_path))
    drawings = scribbles(seed=5, per_digit=6)
    store = FeedbackStore(f"sqlite:///{settings.state_dir / 'feedback.db'}", 24, 1000)
    features = features_of(drawings)
    digits = np.array([d.digit for d in drawings])
    store.record(Made("a" * 32, utcnow(), settings.model_name, "1", "playground",
                      digits, np.full(len(digits), 0.9), features))  # fmt: skip
    store.record(Made("b" * 32, utcnow(), settings.model_name, "2", "api",
                      digits[:2], np.full(2, 0.9), features[:2]))  # fmt: skip
    for i, digit in enumerate(digits):
        store.label(f"{'a' * 32}-{i}", int(digit), "playground")
    store.label(f"{'b' * 32}-0", int(digits[0]), "api")  # the same drawing, the same label
    store.label(f"{'b' * 32}-1", (int(digits[1]) + 1) % 10, "api")  # ... another label
    store.close()
    return settings


@pytest.mark.integration
def test_labels_become_the_next_version_pushed_and_committed(field_repo, params):
    v1 = read_pin(field_repo.dvc_file)
    env = os.environ | {
        "WORKBOOK_ROOT": str(field_repo.root),
        "WORKBOOK_STATE_DIR": str(field_repo.state_dir),
        "WORKBOOK_MLFLOW_TRACKING_URI": field_repo.mlflow_tracking_uri,
        "WORKBOOK_DVC_REMOTE_URL": field_repo.dvc_remote_url,
    }
    command = [sys.executable, "-m", "app.data", "field"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pin = read_pin(field_repo.dvc_file)
    meta = yaml.safe_load(field_repo.dvc_file.read_text())["meta"]
    assert (pin.version, meta["base"]) == ("v1+field1", "v1")
    assert meta["source"] == "labels from the field"
    train = sorted(field_repo.data_dir.glob(f"train/*/{FIELD_PREFIX}*.png"))
    held = sorted(field_repo.data_dir.glob(f"{FIELD_VAL}/*/{FIELD_PREFIX}*.png"))
    # 60 drawings; the first two's conflicting pair is left out, its twin kept once
    assert len(train) + len(held) == 59 == meta["field_train"] + meta["field_val"]
    assert len(held) >= params.validation.min_field_val
    assert pin.nfiles == v1.nfiles + 59 and pin.md5 == dir_md5(field_repo.data_dir)
    assert is_clean(field_repo.root)
    assert dvc("status", "--cloud", "--json", repo=field_repo.root).strip() in ("", "{}")
    git = ["git", "log", "-1", "--format=%s", "--", "data.dvc"]
    message = subprocess.run(git, cwd=field_repo.root, capture_output=True, text=True).stdout
    assert message.startswith("data: v1+field1, v1 plus 59 labelled inputs from the field")
    assert "labels left out: conflicting 2, duplicates 1)" in message
    assert "different digits: 2" in done.stderr and "labelled again (kept once): 1" in done.stderr
    # Every label is in the data now: a second round finds nothing new and changes nothing.
    before = file_bytes(field_repo.data_dir), field_repo.dvc_file.read_bytes()
    again = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 1 and "no new labelled inputs" in again.stderr
    assert "Traceback" not in again.stderr
    assert (file_bytes(field_repo.data_dir), field_repo.dvc_file.read_bytes()) == before


@pytest.mark.integration
def test_a_round_too_small_to_judge_on_changes_nothing(field_repo, params):
    strict = params.model_copy(
        update={"validation": params.validation.model_copy(update={"min_field_val": 1000})}
    )
    before = file_bytes(field_repo.data_dir), field_repo.dvc_file.read_bytes()
    with pytest.raises(DataValidationError, match=f"too-few.*\n.*{FIELD_VAL}"):
        make_field_version(field_repo, strict)
    assert (file_bytes(field_repo.data_dir), field_repo.dvc_file.read_bytes()) == before
    assert is_clean(field_repo.root)


@pytest.mark.integration
def test_labels_of_a_deleted_model_version_are_left_out_and_named(field_repo, params):
    MlflowClient(field_repo.mlflow_uri, field_repo.mlflow_uri).delete_model_version(
        field_repo.model_name, "2"
    )
    done = make_field_version(field_repo, params)
    assert {x.prediction_id for x in done.vanished} == {f"{'b' * 32}-0", f"{'b' * 32}-1"}
    assert not done.conflicting and not done.duplicates and done.kept == 60


@pytest.mark.integration
def test_no_registry_no_version(field_repo, params):
    down = field_repo.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})
    with pytest.raises(FieldError, match="MLflow at http://127.0.0.1:9"):
        make_field_version(down, params)
    with pytest.raises(NothingNew):
        make_field_version(field_repo.model_copy(update={"model_name": "nobody"}), params)


@pytest.mark.integration
def test_through_the_api_the_same_labels_make_the_same_version(field_repo, params, tmp_path):
    """`--api`: the labels through GET /admin/labels of a running API (its store is the same
    database), as compose's store, in a volume, is reached."""
    from pydantic import SecretStr

    from app import stack

    served = field_repo.model_copy(
        update={"api_port": stack.free_port(), "admin_token": SecretStr("field-token")}
    )
    with stack.running(served, "api"):
        done = make_field_version(served, params, api_url=served.api_url)
    assert done.kept == 59 and len(done.conflicting) == 2 and len(done.duplicates) == 1
    assert read_pin(field_repo.dvc_file).version == "v1+field1"
    wrong = served.model_copy(update={"admin_token": SecretStr("not-it")})
    with stack.running(served, "api"), pytest.raises(FieldError, match="answered 401"):
        fetch_labels(wrong, served.api_url)
