"""Parameters: every tunable of the pipeline as params.yaml writes it, grouped by stage."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

# Live accuracy's knobs for models whose drift reference predates them (see MonitoringParams).
LIVE_WINDOW, LIVE_MIN_LABELS, LIVE_THRESHOLD = 200, 20, 0.8


class SplitParams(BaseModel):
    """How the source digits are split into train and val."""

    seed: int
    val_fraction: float = Field(gt=0, lt=1)


class ShiftParams(BaseModel):
    """A batch of shifted digits: how many, and how they differ from the originals."""

    seed: int  # picks the digits and draws their angles and noise
    size: int = Field(gt=0)
    rotate_degrees: float
    thicken: int = Field(ge=0)
    noise_std: float = Field(ge=0)


class DriftBatchParams(ShiftParams):
    """The drifted batch (val digits) that monitoring sends, and a fresh draw like it."""

    # Another batch made the same way from another seed: nothing is trained or tuned on it,
    # so it measures how well a model generalises to drifted digits.
    fresh_seed: int


class VersionParams(BaseModel):
    """What one dataset version's train split holds (val is the same in every version)."""

    pool: float = Field(gt=0, le=1)  # the stratified share of the training pool; nested
    # Add `shifted_train`'s labelled shifted digits to train, and `shifted_val`'s as a second
    # evaluation set (`shifted_val/`): the traffic the version's models must serve.
    include_shifted: bool = False


class FieldParams(BaseModel):
    """Labels from the field as a data version (`python -m app.data field`)."""

    holdout: float = Field(gt=0, lt=1)  # the share kept apart as field_val/, by input hash


class DataParams(BaseModel):
    """The data versions and how each is built (params.yaml `data`)."""

    split: SplitParams
    versions: dict[str, VersionParams]
    shift: DriftBatchParams
    # The labelled shifted digits a version may add: made from training-pool digits only.
    shifted_train: ShiftParams
    # Its labelled shifted evaluation set: val digits, drawn apart from the drift batches.
    shifted_val: ShiftParams
    field: FieldParams  # labelled inputs from the API's feedback store


class ValidationParams(BaseModel):
    """What a valid dataset holds (params.yaml `validation`)."""

    min_per_class_train: int = Field(ge=1)
    min_per_class_val: int = Field(ge=1)
    min_field_val: int = Field(ge=1)  # field_val/ may lack digits nobody drew: a total minimum


class BaselineParams(BaseModel):
    """The logistic regression's hyperparameters."""

    C: float = Field(gt=0)  # inverse regularisation strength
    max_iter: int = Field(gt=0)


class AugmentParams(BaseModel):
    """Drift-like changes to CNN training digits, drawn afresh every epoch (train.cnn.augment)."""

    versions: list[str]  # the data versions whose models augment (see training.for_data_version)
    probability: float = Field(ge=0, le=1)  # share of digits changed in an epoch; 0: none
    rotate_degrees: float = Field(ge=0)  # a changed digit turns by a uniform angle within +-this
    thicken: float = Field(ge=0, le=1)  # the chance a changed digit's strokes grow by a pixel
    noise_std: float = Field(ge=0)  # Gaussian noise on the 0..16 pixel scale


class CnnParams(BaseModel):
    """The CNN's architecture and training hyperparameters."""

    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    learning_rate: float = Field(gt=0)  # the peak of the one-cycle schedule
    weight_decay: float = Field(ge=0)
    channels: tuple[int, int]
    hidden: int = Field(gt=0)
    conv_dropout: float = Field(ge=0, lt=1)
    dropout: float = Field(ge=0, lt=1)
    # None: no augmentation (and what models logged before it existed were trained with).
    augment: AugmentParams | None = None


class TrainParams(BaseModel):
    """Training: the seed and each family's parameters (params.yaml `train`)."""

    seed: int
    threads: int = Field(gt=0)  # fixed, so CPU results do not depend on the machine
    baseline: BaselineParams
    cnn: CnnParams


class LiveParams(BaseModel):
    """Promotion on live evidence (app/registry.py `decide_live`): what the challenger must
    have shown in shadow or on its canary before `python -m app.retraining promote` moves it."""

    min_requests: int = Field(default=200, gt=0)  # requests it scored or answered, at least
    min_agreement: float = Field(default=0.9, ge=0, le=1)  # in shadow, with the champion
    min_labels: int = Field(default=30, gt=0)  # labels of its own answers before accuracy counts
    max_accuracy_gap: float = Field(default=0.02, ge=0, le=1)  # below the champion's, at most


class RegistryParams(BaseModel):
    """The gate's rule: the floor on val and the tolerance against the champion."""

    min_accuracy: float = Field(ge=0, le=1)  # the gate: a challenger below this never ships
    # The gate's non-inferiority margin: how much lower than the champion a challenger may
    # score on an evaluation set and still be promoted (app/registry.py, `decide`).
    tolerance: float = Field(ge=0, lt=1)
    live: LiveParams = Field(default_factory=LiveParams)


class MonitoringParams(BaseModel):
    """How drift is judged (`monitoring:` in params.yaml); it travels with each model
    in its drift reference (see app/monitoring/drift.py)."""

    window: int = Field(gt=0)  # inputs the API keeps and scores
    min_inputs: int = Field(gt=0)  # below this many, the score would be noise: none is given
    drift_threshold: float = Field(gt=0, le=1)  # the InputDrift alert fires above it
    # Inner bin edges on the 0..16 pixel scale: [1, 4, 8, 12] makes the bins blank (below 1),
    # 1-4, 4-8, 8-12 and 12-16 (full ink).
    pixel_bins: list[float] = Field(min_length=1)
    # Live accuracy: over the last `live_window` labelled predictions of the served model, none
    # (NaN) below `live_min_labels`; the ModelDegraded alert fires below the threshold.
    live_window: int = Field(default=LIVE_WINDOW, gt=0)
    live_min_labels: int = Field(default=LIVE_MIN_LABELS, gt=0)
    live_accuracy_threshold: float = Field(default=LIVE_THRESHOLD, gt=0, le=1)


class Params(BaseModel):
    """Every tunable of the pipeline, grouped by stage, as written in params.yaml."""

    data: DataParams
    validation: ValidationParams
    train: TrainParams
    registry: RegistryParams
    monitoring: MonitoringParams

    @model_validator(mode="after")
    def augment_names_data_versions(self) -> Params:
        """A misspelt version in train.cnn.augment.versions would silently turn it off."""
        augment = self.train.cnn.augment
        unknown = sorted(set(augment.versions) - set(self.data.versions)) if augment else []
        if unknown:
            raise ValueError(f"train.cnn.augment.versions: {unknown} not in data.versions")
        return self
