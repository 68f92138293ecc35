"""Labels from the field as the next data version: `python -m app.data field`.

The API keeps every prediction's inputs, and `POST /feedback` gives some of them their true
digit (app/feedback.py). Here those labelled inputs become data: the version data.dvc pins, plus
each labelled input as `train/<digit>/field-<prediction id>.png`, or as
`field_val/<digit>/field-<prediction id>.png` for a share held out to judge models on (the gate
scores every evaluation set the data holds, this one too). Which side an input lands on follows
from a hash of its pixels: the same input always lands on the same side, in every later round.

Nothing is kept silently. Left out, and reported by name:
- **vanished**: labels of predictions made by a model version the registry no longer has (a
  sandbox's, or a deleted bad one): where the input came from can no longer be checked;
- **conflicting**: the same input labelled as different digits (two predictions of one
  drawing): no one knows which is right;
- **duplicates**: the same input labelled the same digit more than once: kept once;
- **known**: an input the data already holds (an earlier round took it, or it is a dataset digit).

The new version is validated like every version (the leakage rule included) before it replaces
`data/`; then `dvc add`, `dvc push`, and data.dvc's `meta` says where it came from. The caller
commits data.dvc (`python -m app.data field` does, with `commit_message`); the retraining
watcher takes it from there.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import numpy as np

from app.config import Params, Settings
from app.credentials import admin_token
from app.data.build import FIELD_SUFFIX, base_version, replace_dir, staging_dir
from app.data.dvc import DvcError, configure_remote, dvc, is_clean, read_pin, write_version_meta
from app.data.images import FIELD_VAL, to_png_bytes
from app.data.validate import check
from app.feedback import LabelledInput, connect, database_url, labelled_inputs

FIELD_PREFIX = "field-"


class FieldError(RuntimeError):
    """No field version can be made; the message says why."""


class NothingNew(FieldError):
    """The store holds no labelled input the data lacks: no version to make."""


@dataclass(frozen=True)
class FieldLabel:
    """One labelled prediction from the store."""

    prediction_id: str
    digit: int  # the label: what it really was
    predicted: int
    model_version: str
    client: str
    png: bytes  # the input as the dataset stores it


@dataclass
class FieldRound:
    """What one round did with the store's labels: kept, held out, and every one left out."""

    base: str  # the version it was made from
    version: str = ""
    train: list[FieldLabel] = field(default_factory=list)
    held_out: list[FieldLabel] = field(default_factory=list)
    vanished: list[FieldLabel] = field(default_factory=list)
    conflicting: list[FieldLabel] = field(default_factory=list)
    duplicates: list[FieldLabel] = field(default_factory=list)
    known: list[FieldLabel] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return len(self.train) + len(self.held_out)

    def left_out(self) -> dict[str, list[FieldLabel]]:
        """Every label not kept, by reason."""
        reasons = ("vanished", "conflicting", "duplicates", "known")
        return {reason: getattr(self, reason) for reason in reasons}

    def summary(self) -> str:
        """One line per outcome, naming the predictions of every label left out."""
        lines = [
            f"{self.version or 'no new version'} from {self.base}: {self.kept} labelled field "
            f"inputs kept ({len(self.train)} to train, {len(self.held_out)} to {FIELD_VAL})"
        ]
        for reason, left in self.left_out().items():
            if left:
                named = ", ".join(label.prediction_id for label in left[:5])
                more = f" and {len(left) - 5} more" if len(left) > 5 else ""
                lines.append(f"  left out, {REASONS[reason]}: {len(left)} ({named}{more})")
        return "\n".join(lines)

    def commit_message(self) -> str:
        """What the data commit says: where the data came from, and what was left out."""
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.left_out().items() if v)
        return (
            f"data: {self.version}, {self.base} plus {self.kept} labelled inputs from the field "
            f"({len(self.train)} train, {len(self.held_out)} {FIELD_VAL}; from the API's feedback "
            f"store{'; labels left out: ' + counts if counts else ''})"
        )


REASONS = {
    "vanished": "made by a model version the registry no longer has",
    "conflicting": "the same input labelled as different digits",
    "duplicates": "the same input labelled again (kept once)",
    "known": "an input the data already holds",
}


def as_field_label(found: LabelledInput) -> FieldLabel:
    return FieldLabel(
        found.prediction_id, found.label, found.predicted, found.model_version, found.client,
        to_png_bytes(found.pixels),
    )  # fmt: skip


def read_labels(url: str, model_name: str) -> list[FieldLabel]:
    """Every labelled prediction of a model in the store at `url`, oldest label first."""
    engine = connect(url)
    try:
        found = labelled_inputs(engine, model_name)
    finally:
        engine.dispose()
    return [as_field_label(row) for row in sorted(found, key=by_label_time)]


def fetch_labels(settings: Settings, api_url: str, page: int = 1000) -> list[FieldLabel]:
    """The same from a running API (`GET /admin/labels`, a page at a time): the way to a store
    the API alone reaches (a compose volume, PostgreSQL behind replicas)."""
    token = admin_token(settings)
    found: list[LabelledInput] = []
    after: str | None = ""
    with httpx.Client(base_url=api_url, timeout=60) as api:
        while after is not None:
            answer = api.get(
                "/admin/labels",
                params={"after": after, "limit": page},
                headers={"Authorization": f"Bearer {token}"},
            )
            if answer.status_code != 200:
                raise FieldError(f"{api_url}/admin/labels answered {answer.status_code}: "
                                 f"{answer.text[:300]}")  # fmt: skip
            body = answer.json()
            found += [
                LabelledInput(
                    **row
                    | {
                        "labelled_at": datetime.fromisoformat(row["labelled_at"]),
                        "pixels": np.asarray(row["pixels"], dtype=np.float32),
                    }
                )  # fmt: skip
                for row in body["labels"]
            ]
            after = body["next"]
    return [as_field_label(row) for row in sorted(found, key=by_label_time)]


def by_label_time(found: LabelledInput) -> tuple[datetime, str]:
    return found.labelled_at, found.prediction_id


def held_out(png: bytes, share: float) -> bool:
    """Whether an input belongs to field_val: fixed by its pixels, the same in every round."""
    return int(hashlib.sha256(png).hexdigest()[:8], 16) / 16**8 < share


def sort_labels(
    found: list[FieldLabel], base: str, versions: set[str], known: set[bytes], share: float
) -> FieldRound:
    """Split the store's labels into kept (train or held out) and left out, with the reason."""
    done = FieldRound(base)
    by_input: dict[bytes, list[FieldLabel]] = defaultdict(list)
    for label in found:
        if label.model_version not in versions:
            done.vanished.append(label)
        else:
            by_input[label.png].append(label)
    for png, same in by_input.items():
        if png in known:
            done.known += same
        elif len({label.digit for label in same}) > 1:
            done.conflicting += same
        else:
            (done.held_out if held_out(png, share) else done.train).append(same[0])
            done.duplicates += same[1:]
    return done


def next_version(current: str) -> str:
    """`v1` -> `v1+field1`, `v1+field1` -> `v1+field2`."""
    rounds = re.fullmatch(rf".*{re.escape(FIELD_SUFFIX)}(\d+)", current)
    return f"{base_version(current)}{FIELD_SUFFIX}{int(rounds[1]) + 1 if rounds else 1}"


def registered_versions(settings: Settings) -> set[str]:
    """The versions of the served model the registry holds now."""
    from mlflow.tracking import MlflowClient  # here: the API image imports app.data

    uri = settings.mlflow_uri
    if uri.startswith("http"):  # fail at once, not after MLflow's minutes of retries
        try:
            httpx.get(f"{uri}/health", timeout=3).raise_for_status()
        except httpx.HTTPError as error:
            raise FieldError(
                f"MLflow at {uri}: {error}; start the stack (`make stack-up`)"
            ) from None
    found = MlflowClient(uri, uri).search_model_versions(f"name='{settings.model_name}'")
    return {str(version.version) for version in found}


def make_field_version(
    settings: Settings, params: Params, store_url: str | None = None, api_url: str | None = None
) -> FieldRound:
    """Turn the store's labels into the next data version in `settings.root`: write, validate,
    swap in as data/, `dvc add`, `dvc push`. The labels come from the database at `store_url`
    (default: the API's setting), or through the API at `api_url`. NothingNew when no label is
    new; data/ and data.dvc stay as they were on any failure before `dvc add`."""
    repo, data_dir = settings.root, settings.data_dir
    configure_remote(settings)
    if not is_clean(repo):
        raise DvcError(f"{data_dir} differs from data.dvc: commit or discard that change first")
    base = read_pin(settings.dvc_file).version
    known = {path.read_bytes() for path in data_dir.rglob("*.png")}
    if api_url:
        found = fetch_labels(settings, api_url)
    else:
        found = read_labels(store_url or database_url(settings), settings.model_name)
    done = sort_labels(found, base, registered_versions(settings), known, params.data.field.holdout)
    if not done.kept:
        raise NothingNew(
            f"no new labelled inputs in the feedback store ({len(found)} labels)\n" + done.summary()
        )
    done.version = next_version(base)
    with staging_dir(data_dir) as staging:
        shutil.copytree(data_dir, staging, dirs_exist_ok=True)
        for split, kept in (("train", done.train), (FIELD_VAL, done.held_out)):
            for label in kept:
                path = (
                    staging / split / str(label.digit) / f"{FIELD_PREFIX}{label.prediction_id}.png"
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(label.png)
        check(staging, params.validation)  # bad data never replaces good data
        replace_dir(staging, data_dir)
    dvc("add", "data", repo=repo)
    write_version_meta(
        settings.dvc_file, done.version, source="labels from the field", base=base,
        field_train=len(done.train), field_val=len(done.held_out),
    )  # fmt: skip
    dvc("push", repo=repo)
    return done
