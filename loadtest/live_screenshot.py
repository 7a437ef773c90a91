"""`make screenshots`: the live page as a reader sees it, into imgs/live-page.png.

Against the running stack (`make up` first): opens /live in headless chromium, writes a few posts
through the API (two authors, a second apart), waits until the page shows them all, and saves the
window. The README shows the picture.
"""

from __future__ import annotations

import time

import requests
from selenium.webdriver.common.by import By

from loadtest.browser import headless_chromium
from stack.keys import ensure_key
from stack.settings import REPO, load_stack

SHOT = REPO / "imgs" / "live-page.png"
POSTS = [
    ("Ada", "Lovelace", "The engine weaves algebraic patterns as the loom weaves flowers."),
    ("Grace", "Hopper", "A ship in port is safe, but that is not what ships are built for."),
    ("Ada", "Lovelace", "This post went through the outbox, the relay and a 3-node stream."),
    ("Grace", "Hopper", "…and reached this page over one Server-Sent Events stream."),
]


def main() -> None:
    stack = load_stack()
    key = ensure_key(stack, "screenshots", "standard")
    session = requests.Session()
    session.headers["X-API-Key"] = key
    authors: dict[str, int] = {}
    browser = headless_chromium(1000, 700)
    try:
        browser.get(f"{stack.base_url}/live")
        deadline = time.monotonic() + 20
        while browser.find_element(By.ID, "state").text != "open":
            if time.monotonic() > deadline:
                raise SystemExit("the live page did not connect: is the stack up (make up)?")
            time.sleep(0.1)
        for name, second_name, body in POSTS:
            if name not in authors:
                user = session.post(
                    f"{stack.base_url}/api/users",
                    json={"name": name, "second_name": second_name},
                    timeout=10,
                )
                user.raise_for_status()
                authors[name] = user.json()["id"]
            answer = session.post(
                f"{stack.base_url}/api/users/{authors[name]}/posts", json={"body": body}, timeout=10
            )
            answer.raise_for_status()
            time.sleep(1)
        deadline = time.monotonic() + 20
        while len(browser.find_elements(By.CSS_SELECTOR, "#posts li")) < len(POSTS):
            if time.monotonic() > deadline:
                raise SystemExit("the posts did not reach the page")
            time.sleep(0.1)
        SHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SHOT))
    finally:
        browser.quit()
    print(f"wrote {SHOT}")


if __name__ == "__main__":
    main()
