"""Debian's headless Chromium for the dashboard's tests: one way to start it, at any window size.

The set-up script installs ``chromium`` and ``chromium-driver``; a machine without them skips the browser
tests with that reason. Console messages are kept (a CSP violation is a console error the tests look for).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

needs_chromium = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                                    reason="Debian's chromium and chromium-driver are not installed (scripts/setup)")


@contextmanager
def chromium(width: int, height: int, lang: str = "vi"):
    """A headless Chromium with a fresh profile (removed afterwards), its window ``width`` x ``height``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="centre-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
              f"--window-size={width},{height}", f"--lang={lang}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_window_size(width, height)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
