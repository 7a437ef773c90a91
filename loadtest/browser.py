"""A real headless browser: Debian's chromium through Debian's chromedriver (`make install`
installs both). Used by the live page's test and by `make screenshots`; no driver is downloaded."""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def headless_chromium(width: int = 1000, height: int = 900) -> webdriver.Chrome:
    """A headless chromium window of WIDTH x HEIGHT; raises when it cannot start."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--no-proxy-server")  # the stack is on 127.0.0.1
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
