"""A push process (app.push.app): ``gunicorn 'app.processes.push:create_app()'`` with one
uvicorn worker."""

from __future__ import annotations

from app.push.app import PushApp
from app.push.config import PushSettings


def create_app() -> PushApp:
    """The app gunicorn's uvicorn worker serves."""
    return PushApp(PushSettings())  # type: ignore[call-arg]  # fields from the environment
