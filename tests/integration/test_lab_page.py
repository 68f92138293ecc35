"""`make lab`'s JupyterLab, as a learner first sees it, in headless Chromium: START.md rendered as
a page of links, no news pop-up, no build clutter in the file browser, a lab on its kernel.

JupyterLab runs with the course's config file, as `make lab` starts it, on a port of its own; its
user settings, workspaces and runtime files go to a temporary folder, never to ~/.jupyter.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect

from app.config import REPO_ROOT
from app.poll import wait_for
from app.stack import free_port
from tests.helpers import chromium

pytestmark = pytest.mark.integration
CONFIG = REPO_ROOT / ".jupyter" / "jupyter_lab_config.py"
CLUTTER = REPO_ROOT / "zz-probe.egg-info"  # what `pip install -e` leaves at the root


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab started as `make lab` starts it; its URL and token; stopped after."""
    home = tmp_path_factory.mktemp("jupyter")
    port, token = free_port(), secrets.token_hex(16)
    env = os.environ | {
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    command = [sys.executable, "-m", "jupyter", "lab", f"--config={CONFIG}", f"--port={port}",
               "--no-browser", f"--IdentityProvider.token={token}"]  # fmt: skip
    log = (home / "lab.log").open("w")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, (home / "lab.log").read_text()
        try:
            return httpx.get(f"{url}/api/status", params={"token": token}).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 60, what=f"JupyterLab to answer (its log: {home / 'lab.log'})")
    yield url, token, home / "lab.log"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def page():
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 900})


def test_start_opens_rendered_with_its_links_and_no_news_pop_up(lab, page):
    url, token, _ = lab
    page.goto(f"{url}/?token={token}")  # what `make lab` opens: the default URL, START.md
    rendered = page.locator(".jp-RenderedMarkdown")
    expect(rendered.locator("h1", has_text="Start here")).to_be_visible(timeout=60_000)
    links = rendered.locator("table a")
    stages = len(list((REPO_ROOT / "notebooks").glob("*.ipynb")))
    expect(links).to_have_count(2 * stages)  # a notebook and a lab per stage
    hrefs = [links.nth(i).get_attribute("href") for i in range(2 * stages)]
    assert any(h.split("?")[0].endswith("/notebooks/01_data_versioning.ipynb") for h in hrefs)
    assert any(h.split("?")[0].endswith("/my-labs/06_automated_retraining.ipynb") for h in hrefs)
    assert page.locator(".jp-FileEditor").count() == 0  # not opened as text to edit
    news = httpx.get(
        f"{url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        params={"token": token},
    ).json()["schema"]["properties"]  # the course's overrides are the defaults here
    assert news["fetchNews"]["default"] == "false" and news["checkForUpdates"]["default"] is False
    expect(page.get_by_text("official Jupyter news")).to_have_count(0)


def test_build_clutter_stays_out_of_the_file_browser(lab):
    url, token, _ = lab
    CLUTTER.mkdir(exist_ok=True)
    try:
        listed = httpx.get(f"{url}/api/contents/", params={"token": token}).json()["content"]
    finally:
        CLUTTER.rmdir()
    names = {entry["name"] for entry in listed}
    assert {"notebooks", "labs", "START.md"} <= names
    assert CLUTTER.name not in names


def test_a_lab_opens_on_its_kernel_without_the_encryption_warning(lab, page):
    url, token, log = lab
    page.goto(f"{url}/lab/tree/labs/01_data_versioning.ipynb?token={token}")
    expect(page.locator(".jp-Notebook").first).to_be_visible(timeout=60_000)

    def idle_kernel() -> dict | None:
        sessions = httpx.get(f"{url}/api/sessions", params={"token": token}).json()
        kernels = [s["kernel"] for s in sessions if s["path"].endswith("01_data_versioning.ipynb")]
        return kernels[0] if kernels and kernels[0]["execution_state"] == "idle" else None

    kernel = wait_for(idle_kernel, 60, what="the lab's kernel, idle")
    assert kernel["name"] == "python3"
    assert "without encryption" not in log.read_text()
