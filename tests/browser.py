"""A headless Chromium driven by Selenium: the system's `chromium` and `chromedriver` (Debian packages
chromium and chromium-driver, installed by .ci/run). None when either is missing."""

from __future__ import annotations

import shutil


def chromium_binaries() -> tuple[str, str] | None:
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def chromium_driver(width: int = 1400, height: int = 1000):
    """A headless Chromium session that keeps the page's console messages (driver.get_log("browser"))."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = chromium_binaries()
    if found is None:
        return None
    browser, driver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))
