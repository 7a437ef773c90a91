"""A Server-Sent Events client for the tests: it reconnects like a browser's EventSource (with
Last-Event-ID) and records every event it got, and from which push process."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass(frozen=True)
class Event:
    name: str
    id: str | None
    data: dict[str, Any]
    at: float  # time.time() when it arrived


def parse(lines: Any) -> Any:
    """Events from the lines of a stream (comments yield ('comment', text))."""
    name, event_id, data = "message", None, list[str]()
    for line in lines:
        if line == "":
            if data:
                yield Event(name, event_id, json.loads("\n".join(data)), time.time())
            name, event_id, data = "message", None, []
        elif line.startswith(":"):
            yield ("comment", line[1:].strip())
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "id":
                event_id = value
            elif key == "data":
                data.append(value)


@dataclass
class Listener:
    """One client on URL until stopped; reconnects after 0.1 s as EventSource would (retry:)."""

    url: str
    last_id: str | None = None
    reconnect: bool = True
    events: list[Event] = field(default_factory=list)
    served_by: list[str] = field(default_factory=list)  # one entry per connection
    refused: list[int] = field(default_factory=list)
    comments: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    connected: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Listener:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    @property
    def posts(self) -> list[Event]:
        return [e for e in self.events if e.name == "post"]

    def run(self) -> None:
        while not self.stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if self.last_id:
                headers["Last-Event-ID"] = self.last_id
            try:
                with requests.get(self.url, headers=headers, stream=True, timeout=(2, 5)) as r:
                    if r.status_code != 200:
                        self.refused.append(r.status_code)
                    else:
                        self.served_by.append(r.headers["X-Served-By"])
                        self.read(r)
            except (requests.RequestException, ValueError):
                pass  # the connection ended: reconnect, as a browser does
            if not self.reconnect:
                return
            time.sleep(0.1)

    def read(self, response: requests.Response) -> None:
        for item in parse(response.iter_lines(decode_unicode=True)):
            if isinstance(item, tuple):
                self.comments.append(time.time())
            else:
                if item.id:
                    self.last_id = item.id
                self.events.append(item)
                if item.name in ("ready", "reload"):
                    self.connected.set()
            if self.stop.is_set():
                return
