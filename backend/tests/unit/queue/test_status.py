"""What /readyz says of the broker, from the nodes' JetStream reports (asked through the system
account)."""

from __future__ import annotations

from typing import Any

from app.messaging.status import summarize


def report(leader: str = "nats-2", delivered: int = 10, pending: int = 0) -> dict[str, Any]:
    consumer = {
        "name": "counters",
        "delivered": {"stream_seq": delivered},
        "num_pending": pending,
        "num_ack_pending": 1,
        "num_redelivered": 0,
    }
    events = {
        "name": "EVENTS",
        "cluster": {"leader": leader},
        "state": {"messages": 12, "last_seq": 12},
        "consumer_detail": [consumer],
    }
    dead = {"name": "DEADLETTER", "state": {"messages": 2, "last_seq": 2}}
    return {
        "meta_cluster": {"leader": "nats-1", "cluster_size": 3},
        "account_details": [{"stream_detail": [events, dead]}],
    }


def summary(reports: list[dict[str, Any] | None]) -> dict[str, Any]:
    return summarize(reports, "EVENTS", "counters", "DEADLETTER")


def test_every_node_answering_with_leaders_is_ok() -> None:
    found = summary([report(), report(), report()])
    assert found["status"] == "ok"
    assert (found["cluster_size"], found["meta_leader"]) == (3, "nats-1")
    assert found["stream"] == {"name": "EVENTS", "leader": "nats-2", "messages": 12, "last_seq": 12}
    assert found["dead_letters"] == 2


def test_the_most_advanced_consumer_report_is_the_one_shown() -> None:
    found = summary([report(delivered=8, pending=4), report(delivered=12, pending=0), None])
    assert found["consumer"]["pending"] == 0


def test_a_node_down_is_partial_all_down_is_down_no_leader_is_named() -> None:
    assert summary([report(), None, report()])["status"] == "partial"
    assert summary([None, None, None]) == {"status": "down", "nodes": 3, "answering": 0}
    assert summary([report(leader=""), report(leader="")])["status"] == "no_leader"


def with_purger(base: dict[str, Any], delivered: int, pending: int) -> dict[str, Any]:
    """BASE with an edge purger's consumer beside the workers'."""
    events = base["account_details"][0]["stream_detail"][0]
    purger = {
        "name": "purger-edge-1",
        "delivered": {"stream_seq": delivered},
        "num_pending": pending,
        "num_ack_pending": 3,
    }
    events["consumer_detail"] = [*events["consumer_detail"], purger]
    return base


def test_each_edge_purger_is_shown_from_its_freshest_report_and_far_behind_is_behind() -> None:
    found = summary([with_purger(report(), 2, 500), with_purger(report(), 12, 0)])
    assert found["edge"] == {
        "status": "ok",
        "purgers": {"purger-edge-1": {"pending": 0, "unfinished": 3}},
    }
    behind = summary([with_purger(report(), 2, 500)])["edge"]
    assert behind["status"] == "behind"


def test_no_purger_is_said_so() -> None:
    assert summary([report()])["edge"] == {"status": "no_purger", "purgers": {}}
