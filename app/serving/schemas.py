"""Request and response bodies of the model API (they are also its OpenAPI documentation)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.data.images import MAX_VALUE, SIDE

# One pixel: a real number (not a string, not NaN or infinity) on the dataset's 0..16 scale.
Pixel = Annotated[float, Field(ge=0, le=MAX_VALUE, allow_inf_nan=False, strict=True)]
Instance = Annotated[list[Pixel], Field(min_length=SIDE * SIDE, max_length=SIDE * SIDE)]

EXAMPLE_DIGIT = [
    0,
    0,
    5,
    13,
    9,
    1,
    0,
    0,
    0,
    0,
    13,
    15,
    10,
    15,
    5,
    0,
    0,
    3,
    15,
    2,
    0,
    11,
    8,
    0,
    0,
    4,
    12,
    0,
    0,
    8,
    8,
    0,
    0,
    5,
    8,
    0,
    0,
    9,
    8,
    0,
    0,
    4,
    11,
    0,
    1,
    12,
    7,
    0,
    0,
    2,
    14,
    5,
    10,
    12,
    0,
    0,
    0,
    0,
    6,
    13,
    10,
    0,
    0,
    0,
]  # fmt: skip  (the first digit of scikit-learn's dataset: a zero)


EXAMPLE_REQUEST: dict[str, Any] = {"instances": [EXAMPLE_DIGIT]}


class PredictRequest(BaseModel):
    """Digits as rows of 64 pixel values (8x8, row by row), each from 0 (no ink) to 16."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_REQUEST]})
    instances: list[Instance] = Field(min_length=1)


class ModelRef(BaseModel):
    """Which model answered: its name, version and role."""

    name: str
    version: str
    run_id: str
    role: str = Field(
        default="champion",
        description="`champion`, or `challenger` when this client is on its canary share",
    )


class PixelCredits(BaseModel):
    """Why the model said this digit: each pixel's credit (app/explain.py)."""

    method: str = Field(description="`shapley_sampling`: Shapley values from 16 pixel orders")
    baseline: str = Field(description="`blank`: credits are measured from an image with no ink")
    target: int = Field(ge=0, le=9, description="the digit explained: the one predicted")
    pixels: list[float] = Field(
        description="64 credits, row by row like the input: how much each pixel raised (> 0) or "
        "lowered (< 0) p(target); together they add up to probability - baseline_probability"
    )
    probability: float = Field(description="p(target) for this input")
    baseline_probability: float = Field(description="p(target) for a blank image")


class Prediction(BaseModel):
    """One digit's prediction: its id, the digit and its ten probabilities."""

    id: str = Field(
        description="`<request's batch>-<row>`: send it to `POST /feedback` with the true digit"
    )
    digit: int = Field(ge=0, le=9)
    probabilities: list[float] = Field(description="p(digit) for digits 0..9")
    explanation: PixelCredits | None = Field(
        default=None, description="only when asked for (`?explain=true`)"
    )


class PredictResponse(BaseModel):
    """`POST /predict`'s answer: a prediction per instance, and the model that made them."""

    predictions: list[Prediction]
    model: ModelRef


class ImagePredictResponse(PredictResponse):
    """`POST /predict/image`'s answer: the prediction, the 64 pixels it read, the model."""

    pixels: list[float] = Field(description="the 64 values the image was turned into")


PREDICTION_ID = r"^[0-9a-f]{32}-[0-9]{1,6}$"


class FeedbackRequest(BaseModel):
    """The true digit of a prediction the API made (its `id` from `/predict`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prediction_id": "0" * 32 + "-0", "digit": 7}]},
    )
    prediction_id: str = Field(
        pattern=PREDICTION_ID, max_length=40, description="`id` of a `/predict` answer"
    )
    digit: int = Field(ge=0, le=9, strict=True, description="what the digit really is")

    @field_validator("digit", mode="before")
    @classmethod
    def whole_number(cls, value: object) -> object:
        """7.0 is 7: JSON has one kind of number, and JSON Schema's `integer` takes 7.0 (a
        generated client may send it). A string or a boolean stays refused (strict)."""
        if type(value) is float and value.is_integer():
            return int(value)
        return value


class FeedbackResponse(BaseModel):
    """The label as stored, beside what the model had predicted."""

    prediction_id: str
    digit: int
    predicted: int
    correct: bool
    model_version: str
    created: bool = Field(description="false: this very label was already stored (no change)")


class ModelInfo(ModelRef):
    """`GET /model`: the model served, its lineage and val metrics."""

    data_version: str
    metrics: dict[str, float]
    loaded_at: datetime
    runtime: str = Field(
        description="what computes its answers: `onnxruntime` (the model's ONNX export), "
        "`pytorch` or `scikit-learn`"
    )


class LabelledInputOut(BaseModel):
    """A labelled prediction, as `GET /admin/labels` gives it."""

    prediction_id: str
    model_version: str
    predicted: int = Field(description="the digit the model said")
    label: int = Field(description="the digit it really was")
    client: str = Field(description="who labelled it")
    labelled_at: datetime
    pixels: list[float] = Field(description="the 64 inputs, 0..16")


class LabelsPage(BaseModel):
    """One page of labelled predictions, by prediction id; `next` is the next page's `after`."""

    labels: list[LabelledInputOut]
    next: str | None = Field(description="pass as `after` for the next page; none: the last")


class Problem(BaseModel):
    """Every error answer: what is wrong, in words, and where when it is about a field."""

    error: str
    detail: list[dict] | None = None


Model = TypeVar("Model", bound=BaseModel)


def parse_json(model: type[Model], body: bytes) -> Model:
    """A request body validated straight from its bytes (pydantic-core parses the JSON: no
    Python objects made first), its problems raised as FastAPI's own 422, located in `body`.
    Routes that take JSON read their body so, and say so with `json_body`."""
    if not body:
        problems: list[Any] = [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
        raise RequestValidationError(problems, body=body)
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        for problem in problems:
            problem["loc"] = ("body", *problem["loc"])
        raise RequestValidationError(problems, body=body) from None


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads `model` itself (`parse_json`): a
    reference to its schema, which the app adds to the document (`document_schemas`)."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
