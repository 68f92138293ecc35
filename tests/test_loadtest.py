"""The load test's bounds: a lesson's load, on this machine only, refused by name otherwise.
(The load test itself runs against a live stack: tests/integration/test_monitoring_live.py.)"""

from __future__ import annotations

import re

import pytest

from app.loadtest import LoadTestRefused, check_bounds

LOCAL = "http://127.0.0.1:8000"


@pytest.mark.parametrize("url", [LOCAL, "http://localhost:8000", "http://[::1]:8000"])
def test_this_machines_api_within_the_bounds_is_accepted(url):
    check_bounds(url, users=50, rate=50, seconds=120)


@pytest.mark.parametrize(
    ("url", "users", "rate", "seconds", "says"),
    [
        (
            "http://example.com:8000",
            4,
            10,
            30,
            "this machine's API only (127.0.0.1), not 'example.com'",
        ),
        ("http://10.0.0.5:8000", 4, 10, 30, "not '10.0.0.5'"),
        (LOCAL, 51, 10, 30, "users must be above 0 and at most 50, not 51"),
        (LOCAL, 0, 10, 30, "users must be above 0"),
        (LOCAL, 4, 51, 30, "rate must be above 0 and at most 50, not 51"),
        (LOCAL, 4, 10, 121, "seconds must be above 0 and at most 120, not 121"),
    ],
)
def test_a_load_beyond_the_bounds_or_elsewhere_is_refused(url, users, rate, seconds, says):
    with pytest.raises(LoadTestRefused, match=re.escape(says)):
        check_bounds(url, users, rate, seconds)
