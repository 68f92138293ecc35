"""The JSON log lines: a request's line, written without `logging`, is the line it would write."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta

import pytest

from app.log import JsonLines, json_stream_handler

FIELDS = {"request_id": "r1", "status": 200, "latency_ms": 0.431, "digits": [3, 7], "version": "1"}


@pytest.fixture
def stdout(request: pytest.FixtureRequest):
    """What the test's logger (`json_logger`) writes; the logger as it was, after."""
    yield io.StringIO()
    logger = logging.getLogger(f"tests.lines.{request.node.name}")
    logger.handlers, logger.propagate = [], True
    logger.setLevel(logging.NOTSET)


def json_logger(request: pytest.FixtureRequest, stdout: io.StringIO) -> logging.Logger:
    """The test's logger, whose only handler is `setup_json_logging`'s, on `stdout`: nothing
    passed on to the root logger, nor to the handlers pytest adds when the test starts."""
    logger = logging.getLogger(f"tests.lines.{request.node.name}")
    logger.handlers, logger.propagate = [json_stream_handler(stdout)], False
    logger.setLevel(logging.INFO)
    return logger


def test_the_line_written_directly_is_the_line_logging_writes(stdout, monkeypatch, request):
    logger = json_logger(request, stdout)
    lines = JsonLines(logger)
    assert lines.json_handler() is not None
    logger.info("request", extra=FIELDS)

    def through_logging(*args, **kwargs):
        raise AssertionError("the line went through logging")

    monkeypatch.setattr(logger, "info", through_logging)
    lines.info("request", FIELDS)
    logged, direct = (json.loads(line) for line in stdout.getvalue().splitlines())
    times = [datetime.fromisoformat(line.pop("time")) for line in (logged, direct)]
    expected = {"level": "INFO", "logger": logger.name, "message": "request", **FIELDS}
    assert direct == logged == expected and list(direct) == list(logged)
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times[0] <= times[1]


def test_a_line_goes_through_logging_when_another_handler_listens(stdout, request):
    logger = json_logger(request, stdout)
    records: list[logging.LogRecord] = []
    listener = logging.Handler()
    listener.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(listener)
    try:
        JsonLines(logger).info("request", FIELDS)
    finally:
        logger.removeHandler(listener)
    (record,) = records
    assert record.getMessage() == "request" and record.__dict__["digits"] == [3, 7]
    (line,) = stdout.getvalue().splitlines()  # and the JSON handler still wrote it, once
    assert json.loads(line)["request_id"] == "r1"


def test_a_level_above_info_writes_no_line(stdout, request):
    logger = json_logger(request, stdout)
    logger.setLevel(logging.WARNING)
    JsonLines(logger).info("request", FIELDS)
    assert stdout.getvalue() == ""


def test_a_stream_that_fails_is_reported_by_logging_not_raised(stdout, capsys, request):
    logger = json_logger(request, stdout)

    def refuse(text: str) -> int:
        raise OSError("disk full")

    stdout.write = refuse
    JsonLines(logger).info("request", FIELDS)  # a request's answer never fails for its line
    assert "disk full" in capsys.readouterr().err
