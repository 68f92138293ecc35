"""The ceiling `make bench` measures this API against: FastAPI alone, on the same uvicorn.

`POST /predict` takes the API's own request schema (64 validated pixels a row) and answers one
fixed prediction in the API's own response schema: no model, no middleware, no log line, no
metric. What is left is the web framework's cost for this payload; what the API adds over it
is ours to justify.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.serving.schemas import ModelRef, Prediction, PredictRequest, PredictResponse

ANSWER = Prediction(id="0-0", digit=0, probabilities=[1.0] + [0.0] * 9)
MODEL = ModelRef(name="none", version="0", run_id="none")


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: PredictRequest) -> PredictResponse:
        return PredictResponse(predictions=[ANSWER] * len(body.instances), model=MODEL)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
