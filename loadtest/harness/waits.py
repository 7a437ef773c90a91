"""Waits for a server the load tools started."""

from __future__ import annotations

import socket
import urllib.request

from stack.waiting import until


def wait_for(url: str, timeout: float = 30) -> None:
    """Poll URL until it answers 200."""

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http URL)
                return bool(response.status == 200)
        except OSError:
            return False

    until(answers, timeout, f"{url} answering 200", 0.2)


def wait_for_port(port: int, timeout: float = 20) -> None:
    """Until something listens on 127.0.0.1:PORT."""

    def listens() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    until(listens, timeout, f"a listener on 127.0.0.1:{port}", 0.1)
