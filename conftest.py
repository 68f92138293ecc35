"""Every notebook nbmake runs must stay quiet on stderr; under pytest-xdist (`make test`), what
shares the test stack runs in one worker, in the course's order.

The notebooks and the labs use the stack `make test` starts (one registry, one API, one
champion) and build on each other's state: one work unit, run in order by one worker, started
first since it is the longest. Every other test file is a unit of its own (its module fixtures,
such as a monitored stack, are set up once) on whichever worker is free. xdist's own
`--dist loadgroup` would do it with a marker, but it cannot rename test ids under pytest 9.
"""

import pytest

from tests.quiet_notebooks import install

# In this order: the stage notebooks, notebook 06 stopped in the middle, the labs' solutions, then
# the grading of every lab.
SHARED_STACK = (
    "notebooks/",
    "tests/integration/test_notebook_06_failure.py",
    "solutions/",
    "tests/test_labs.py",
)

# The longest test file of its own (it trains v1, v2 and v3 eight times), started first on the
# worker the shared stack leaves free, so that it does not run last and alone.
LONGEST_ALONE = "tests/test_gate_margins.py"


def shared_rank(nodeid: str) -> int | None:
    """Where a test sits in the shared-stack unit, None when it is not part of it."""
    return next((i for i, prefix in enumerate(SHARED_STACK) if nodeid.startswith(prefix)), None)


def pytest_configure(config) -> None:
    install()


# What needs a server, a notebook kernel or minutes: `make test-fast` leaves them out.
SERVER_PATHS = ("tests/integration/", "notebooks/", "solutions/")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.nodeid.startswith(SERVER_PATHS):
            item.add_marker(pytest.mark.integration)
        if item.nodeid.startswith(LONGEST_ALONE):
            item.add_marker(pytest.mark.slow)
    shared = sorted(
        (item for item in items if shared_rank(item.nodeid) is not None),
        key=lambda item: shared_rank(item.nodeid),  # stable: each part keeps its own order
    )
    rest = [item for item in items if shared_rank(item.nodeid) is None]
    # The longest file outside the shared stack goes next: the other worker starts with it.
    rest.sort(key=lambda item: not item.nodeid.startswith(LONGEST_ALONE))
    items[:] = shared + rest


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class SharedStackFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "shared-stack" if shared_rank(nodeid) is not None else nodeid.split("::")[0]

    return SharedStackFirst(config, log)
