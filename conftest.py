"""Every notebook nbmake runs in `make test` must also stay quiet on stderr."""

from tests.quiet_notebooks import install


def pytest_configure(config) -> None:
    install()
