"""Real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a real
gunicorn web server and a real Celery worker process on the embedded backend (SQLite file +
file-system broker): nothing is mocked."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright_driver: Any) -> Iterator[Any]:
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One service for the module: gunicorn + one worker, the demo table registered and granted."""
    from core.db import dispose_engines
    from tests.browser.support import demo_service

    svc = demo_service(tmp_path_factory.mktemp(f"web-{secrets.token_hex(2)}"))
    try:
        yield svc
    finally:
        svc.stop()
        dispose_engines()


@pytest.fixture
def screenshots() -> Any:
    """shoot(page, name): a full-page PNG into $SYNTHGATE_SCREENSHOTS (the README's docs/screenshots)
    when that variable is set; nothing otherwise."""
    target = os.environ.get("SYNTHGATE_SCREENSHOTS")

    def shoot(page: Any, name: str, max_height: int = 3200) -> None:
        if not target:
            return
        Path(target).mkdir(parents=True, exist_ok=True)
        # a viewport as tall as the page rather than full_page: headless Chromium leaves the
        # sandboxed (out-of-process) report frame blank in full-page captures
        size = page.viewport_size
        height = min(int(page.evaluate("document.documentElement.scrollHeight")), max_height)
        page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
        page.wait_for_timeout(600)
        page.screenshot(path=str(Path(target) / f"{name}.png"))
        page.set_viewport_size(size)

    return shoot
