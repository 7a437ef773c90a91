"""What a push process remembers of the post stream (pure): the recent posts, in stream order,
and the clients each new post goes to.

Resuming is exact because of two rules. The log holds *every* post whose sequence is at least
``covered_from``, so a client whose position is inside that range is replayed from memory; an
older position is filled from the stream first (feed.py). And a client joins the live posts in
the same step (no await between) as it finds nothing left to replay after its position, so a
post is either replayed or queued for it, never neither; what is both is skipped by sequence.
No gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.messaging.events import written_at
from app.push import sse

POST_EVENT = "post"


@dataclass(frozen=True)
class Post:
    """One post as the streams send it: its stream sequence, author and SSE frame."""

    seq: int
    user_id: int
    frame: bytes
    created_at: datetime | None = None


def post_from_event(seq: int, payload: bytes) -> Post | None:
    """The post in a post.created event at stream sequence SEQ (None: not one)."""
    try:
        document = json.loads(payload)
        data = document["data"]
        post_id, user_id = document["aggregate_id"], data["user_id"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(post_id, int) or not isinstance(user_id, int):
        return None
    created = data.get("created_at")
    shown: dict[str, Any] = {
        "id": post_id,
        "user_id": user_id,
        "body": data.get("body"),
        "created_at": created,
    }
    return Post(seq, user_id, sse.event(POST_EVENT, shown, seq), written_at(created))


@dataclass(eq=False)
class Client:
    """One open stream: the posts waiting for it, and whose posts it wants (None: everyone's)."""

    user_id: int | None
    buffer: int
    on_drop: Callable[[], object] = lambda: None
    queue: asyncio.Queue[Post] = field(init=False)
    dropped: bool = False
    gone: asyncio.Event = field(init=False)  # set when it is dropped
    after: int = 0  # the position it joined at: older posts are not queued for it

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.buffer)
        self.gone = asyncio.Event()

    def wants(self, post: Post) -> bool:
        return post.seq > self.after and (self.user_id is None or post.user_id == self.user_id)

    def offer(self, post: Post) -> bool:
        """Queue POST; False (and the client dropped) when its buffer is full."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(post)
        except asyncio.QueueFull:
            self.dropped = True
            self.gone.set()
            self.on_drop()
            return False
        return True


class Log:
    """The last CAPACITY posts read from the stream, and the clients that get the next ones."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.posts: list[Post] = []
        self.seqs: list[int] = []
        # Every post with a sequence >= covered_from is in self.posts (set by the feed's start).
        self.covered_from = 1
        self.head = 0  # the last sequence read
        self.clients: set[Client] = set()

    def start_at(self, seq: int) -> None:
        """The feed reads the stream from SEQ on: nothing older is in the log."""
        self.posts, self.seqs = [], []
        self.covered_from, self.head = seq, seq - 1

    def append(self, post: Post) -> list[Client]:
        """Add POST (in stream order; a sequence already read is ignored), hand it to every client
        that wants it; the clients dropped because their buffer was full."""
        if post.seq <= self.head:
            return []
        self.posts.append(post)
        self.seqs.append(post.seq)
        self.head = post.seq
        if len(self.posts) > 2 * self.capacity:  # forget the older half at once (amortized)
            cut = len(self.posts) - self.capacity
            self.covered_from = self.seqs[cut - 1] + 1
            del self.posts[:cut], self.seqs[:cut]
        dropped = [c for c in self.clients if c.wants(post) and not c.offer(post)]
        for client in dropped:
            self.clients.discard(client)
        return dropped

    def join(self, client: Client, cursor: int) -> bool:
        """Give CLIENT every post after CURSOR from now on, if nothing after CURSOR is in the log
        yet (True); else False: replay what is there first, then try again."""
        if not self.covers(cursor) or (self.seqs and self.seqs[-1] > cursor):
            return False
        client.after = cursor
        self.clients.add(client)
        return True

    def position_before(self, when: datetime) -> int:
        """The position a stream asked for at WHEN starts after: the last post made before WHEN
        that the log holds (its posts come in commit order, so the scan stops at the first older
        one). Every post the log holds, when they were all made at or after WHEN."""
        for index in range(len(self.posts) - 1, -1, -1):
            created = self.posts[index].created_at
            if created is not None and created < when:
                return self.seqs[index]
        return self.covered_from - 1

    def covers(self, cursor: int) -> bool:
        """Is every post after CURSOR in the log?"""
        return cursor >= self.covered_from - 1

    def after(self, cursor: int) -> list[Post]:
        """The posts after CURSOR that the log holds, oldest first (a copy)."""
        return self.posts[bisect.bisect_right(self.seqs, cursor) :]
