"""Liveness (/healthz: this process only), readiness (/readyz: every dependency) and /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app import metrics
from app.api.context import services
from app.api.responses import json_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """This process is alive; calls no dependency."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready while reads can be served (writes need the primary); what is not ok is named."""
    body, ready = services().health.readiness()
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus text format."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
