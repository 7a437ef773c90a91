"""The live page (/live) in a real headless browser: Debian's chromium driven by its chromedriver
(both installed by `make install`). Posts created through the API appear on the page; the push
process serving the page is killed, and the page reconnects and shows the posts created
meanwhile, each once. A browser that cannot start fails the test: it is never skipped."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from loadtest.browser import headless_chromium
from stack.settings import Stack
from tests.integration.helpers import Api, eventually
from tests.integration.test_push import Writer, push_pids, wait_following

pytestmark = pytest.mark.integration


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = headless_chromium()
    try:
        yield driver
    finally:
        driver.quit()


def text_of(browser: webdriver.Chrome, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def shown_post_ids(browser: webdriver.Chrome) -> list[int]:
    """The posts the page shows, oldest first (it lists the newest on top)."""
    items = browser.find_elements(By.CSS_SELECTOR, "#posts li")
    return [int(item.get_attribute("data-post-id") or 0) for item in reversed(items)]


def test_the_live_page_shows_new_posts_and_the_missed_ones_after_its_push_process_dies(
    stack: Stack, api: Api, browser: webdriver.Chrome
) -> None:
    browser.get(f"{stack.base_url}/live")
    eventually(lambda: text_of(browser, "state") == "open", timeout=15)
    serving = eventually(lambda: text_of(browser, "served-by").strip("-"), timeout=10)
    author = api.create_user("Page", "Reader")["id"]
    writer = Writer(api, author)
    before = [writer.post(f"seen live {i}") for i in range(3)]
    eventually(lambda: shown_post_ids(browser) == before, timeout=15)
    assert "seen live 0" in browser.find_element(By.ID, "posts").text

    for pid in push_pids(stack, serving):
        os.kill(pid, signal.SIGKILL)
    during = [writer.post(f"created while down {i}") for i in range(3)]
    eventually(lambda: int(text_of(browser, "reconnects")) >= 1, timeout=20)
    eventually(lambda: shown_post_ids(browser) == before + during, timeout=20)
    assert text_of(browser, "state") == "open"
    after = [writer.post("after the reconnect")]
    eventually(lambda: shown_post_ids(browser) == before + during + after, timeout=15)
    assert text_of(browser, "count") == str(len(before + during + after))
    # supervisord restarts the killed process; the next tests want it back.
    wait_following(stack, serving)
