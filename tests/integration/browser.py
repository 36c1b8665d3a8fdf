"""Headless Chromium for browser tests: Debian's `chromium` driven by Playwright.

Playwright drives the system's Chromium (`executable_path`), so no browser is ever downloaded
(`playwright install` is never run). Outside CI a machine without Chromium skips the browser
tests with a loud reason; in CI (env CI set) a missing Chromium fails them.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

# Headless, and nothing that phones home: a fresh profile, no sync, no component updates.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium_or_skip() -> str:
    """The path of the system's Chromium; skips (fails in CI) where there is none."""
    # MLBATCH_CHROMIUM: a Chrome/Chromium elsewhere (GitHub's runners get one from setup-chrome)
    path = os.environ.get("MLBATCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = ("NO BROWSER TEST: Chromium is not installed, so the Airflow web UI is not checked in a "
              "browser in this run. Install it with: apt-get install --no-install-recommends chromium")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextlib.contextmanager
def headless_chromium(executable: str) -> Iterator[BrowserContext]:
    """A browser context on a fresh, throwaway profile."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


def png_size(path: os.PathLike) -> tuple[int, int]:
    """(width, height) of a PNG file; AssertionError if it is not one."""
    data = open(path, "rb").read(24)
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
