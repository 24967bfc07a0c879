"""Debian's Chromium (``/usr/bin/chromium``), headless, driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Any]:
    """A browser; fails the test with a clear message where Chromium is not installed."""
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("Chromium is not installed (/usr/bin/chromium): apt-get install chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()
