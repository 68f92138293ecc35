"""Waiting on a condition: ask again and again, with a limit, and fail loudly.

Servers answer in their own time (a scrape every 5 s, a model loaded after a poll); rather
than sleep and hope, poll the condition itself. One function for the stack, the notebooks and
the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], seconds: float, every: float = 0.5, what: str = "") -> T:
    """Call `check` until it returns something truthy, and return that. After `seconds`, raise
    TimeoutError naming `what` (or the check) and its last answer. An exception `check`
    raises ends the wait at once: that is how a check says "this will never happen"."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > deadline:
            name = what or getattr(check, "__name__", "a condition")
            raise TimeoutError(f"still waiting after {seconds:g} s for {name} (last: {result!r})")
        time.sleep(every)
    return result
