"""What the browser tests share: one service (web server and workers, real processes) and one
Debian Chromium for the whole run, and a fresh signed-in page per test that fails the test on any
uncaught script error. Registered as fixtures by conftest.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.processes import Processes, free_port

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# Chromium's own background traffic (updates, sync, metrics) has nowhere to go on these machines.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
CLERK = "clerk"
CLERK_PASSWORD = "a long enough password"


@pytest.fixture(scope="session")
def ui_service(tmp_path_factory: pytest.TempPathFactory, tiny_char_model: Path) -> Iterator[tuple[str, Processes]]:
    """``inkwell serve``'s processes on a free port with the tiny model and one user, the clerk:
    (base URL, processes). One for the whole run: starting them is the slow part of a browser test."""
    folder = tmp_path_factory.mktemp("ui")
    port = free_port()
    env = {
        "INKWELL_DATA_DIR": str(folder / "var"),
        "INKWELL_MODEL": str(tiny_char_model),
        "INKWELL_WEB_PORT": str(port),
        "INKWELL_WEB_WORKERS": "1",
        "INKWELL_PAGES_CONCURRENCY": "1",
        "INKWELL_LINES_FLUSH_INTERVAL": "0.3",
    }
    processes = Processes(env, folder)
    processes.run("migrate")
    subprocess.run(
        [sys.executable, "-m", "inkwell_cli", "user", "create", CLERK, "--password-stdin"],
        input=CLERK_PASSWORD + "\n",
        text=True,
        env=processes.env,
        check=True,
        capture_output=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        processes.start_service(base)
        yield base, processes
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright (no browser is ever downloaded)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def signed_in_page(ui_service: tuple[str, Processes], browser: Browser) -> Iterator[Page]:
    """A page in a new browser context, signed in as the clerk. An uncaught script error on any page
    it opens fails the test at its end."""
    base, _ = ui_service
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, base)
        yield page
    finally:
        context.close()
    assert errors == [], f"script errors in the page: {errors}"


def sign_in(page: Page, base: str) -> None:
    """Sign in as the clerk through the sign-in form the jobs page redirects to."""
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/sign-in?next=%2F")
    page.fill("#username", CLERK)
    page.fill("#password", CLERK_PASSWORD)
    page.press("#password", "Enter")
    expect(page.locator("h1")).to_have_text("Read scanned forms")


def upload_and_wait(page: Page, base: str, scan: Path) -> None:
    """From the jobs page, upload ``scan`` and wait on its job's page until it has succeeded."""
    page.goto(f"{base}/")
    page.set_input_files("#files", str(scan))
    page.click("form.upload button[type=submit]")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=120_000)
