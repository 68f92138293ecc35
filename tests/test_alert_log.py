"""The alert log: Alertmanager's webhook payloads in, one JSON line per alert out."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.monitoring.alert_log import create_app

NOTIFICATION = {
    "version": "4",
    "status": "firing",
    "receiver": "alert-log",
    "groupKey": '{}:{alertname="InputDrift"}',
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "InputDrift", "severity": "warning"},
            "annotations": {"summary": "Input drift score 0.424 is above its threshold"},
            "startsAt": "2026-11-28T18:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "abc",
        }
    ],
}


@pytest.fixture
def client():
    with TestClient(create_app()) as client:
        yield client


def test_each_alert_is_logged_and_kept(client, caplog):
    with caplog.at_level(logging.WARNING, logger="app.monitoring.alerts"):
        assert client.post("/alerts", json=NOTIFICATION).json() == {"logged": 1}
    (record,) = caplog.records
    assert (record.alertname, record.status, record.severity) == ("InputDrift", "firing", "warning")
    assert record.summary.startswith("Input drift score 0.424")
    (kept,) = client.get("/alerts").json()
    assert kept["alerts"][0]["labels"]["alertname"] == "InputDrift"


def test_each_notification_is_stamped_with_the_time_it_arrived(client):
    before = datetime.now(UTC)
    client.post("/alerts", json=NOTIFICATION | {"receivedAt": "2001-01-01T00:00:00Z"})
    (kept,) = client.get("/alerts").json()
    assert before <= datetime.fromisoformat(kept["receivedAt"]) <= datetime.now(UTC)


@pytest.mark.parametrize(
    "body, says",
    [
        ({"version": "4"}, "alerts"),
        (NOTIFICATION | {"alerts": []}, "alerts"),
        (NOTIFICATION | {"alerts": [{"status": "firing"}]}, "labels"),
    ],
)
def test_a_payload_that_is_not_alertmanager_s_is_a_422(client, body, says):
    answer = client.post("/alerts", json=body)
    assert answer.status_code == 422
    assert says in json.dumps(answer.json())
    assert client.get("/alerts").json() == []  # nothing kept
