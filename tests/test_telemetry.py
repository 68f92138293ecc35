"""The request middleware: a client holding its answer finds the request in the log and metrics."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.serving.telemetry import Children, Metrics, Telemetry, access_log


@pytest.fixture
def access_lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """pytest's caplog, holding the request lines the middleware writes."""
    caplog.set_level(logging.INFO, logger=access_log.name)
    return caplog


def call(app, headers: list[tuple[bytes, bytes]], on_send) -> None:
    """One HTTP request through `app`, the way uvicorn calls it."""
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        on_send(message)

    asyncio.run(app(scope, receive, send))


async def two_chunks(scope, receive, send):
    scope["state"]["log"]["digits"] = [7]
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"a", "more_body": True})
    await send({"type": "http.response.body", "body": b"b"})


def test_the_line_and_metrics_are_written_before_the_last_byte_goes_out(access_lines):
    metrics = Metrics()
    seen_at_each_send = []

    def on_send(message):
        count = metrics.registry.get_sample_value(
            "api_requests_total",
            {"route": "unmatched", "method": "GET", "status": "201", "client": "api"},
        )
        seen_at_each_send.append((message["type"], len(access_lines.records), count))

    call(Telemetry(two_chunks, metrics), [(b"x-request-id", b"abc")], on_send)
    assert seen_at_each_send == [
        ("http.response.start", 0, None),
        ("http.response.body", 0, None),  # more to come: not yet
        ("http.response.body", 1, 1.0),  # the last chunk: already logged and counted
    ]
    (line,) = access_lines.records
    assert (line.request_id, line.status, line.digits, line.client) == ("abc", 201, [7], "api")
    assert metrics.registry.get_sample_value("api_requests_in_flight") == 0


def test_a_request_that_raises_is_still_logged_once(access_lines):
    metrics = Metrics()

    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        call(Telemetry(broken, metrics), [(b"x-client", b"playground")], lambda message: None)
    (line,) = access_lines.records
    assert (line.status, line.client) == (500, "playground")
    assert metrics.registry.get_sample_value("api_requests_in_flight") == 0


def test_children_count_in_the_series_that_labels_names():
    metrics = Metrics()
    by_route = Children(metrics.requests)
    first = by_route("/predict", "POST", "200", "api")
    assert by_route("/predict", "POST", "200", "api") is first  # looked up once
    assert first is metrics.requests.labels("/predict", "POST", "200", "api")
    by_route("/predict", "POST", "200", "api").inc()
    by_route("/predict", "POST", "422", "api").inc(2)
    sample = metrics.registry.get_sample_value
    labels = {"route": "/predict", "method": "POST", "client": "api"}
    assert sample("api_requests_total", labels | {"status": "200"}) == 1
    assert sample("api_requests_total", labels | {"status": "422"}) == 2
    with pytest.raises(ValueError, match="label"):
        by_route("/predict", "POST")  # a missing label value is refused as labels() refuses it
