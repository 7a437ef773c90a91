"""`make status`'s broker rows, from the nodes' JetStream reports (asked through the system
account by stack.queue.reports)."""

from __future__ import annotations

from stack.queue import broker_table
from stack.settings import REPO, Stack, read_env_file


def test_each_node_says_whether_it_answered_and_the_leaders_it_names() -> None:
    stack = Stack(read_env_file(REPO / ".env.example"))
    leading = {
        "meta_cluster": {"leader": "nats-2"},
        "account_details": [
            {
                "stream_detail": [
                    {"name": stack.env["EVENTS_STREAM"], "cluster": {"leader": "nats-3"}}
                ]
            }
        ],
    }
    shown = broker_table(stack, {"nats-1": leading, "nats-3": {}}).splitlines()
    rows = [line.split() for line in shown if line.startswith("nats-")]
    assert rows == [
        ["nats-1", "yes", "nats-2", "nats-3"],
        ["nats-2", "no"],
        ["nats-3", "yes", "none", "none"],
    ]
