"""The API process: a Flask app factory that reads like a table of contents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

from app import logs, wiring
from app.api import access, context, health, metrics, openapi, users
from app.api.parsing import AsciiIntConverter
from app.api.problems import register_error_handlers
from app.config import Settings


class Api(Flask):
    """Flask, deciding once per function whether it must run as a coroutine."""

    def __init__(self, import_name: str) -> None:
        """A Flask app with an empty memo of ensure_sync's answers."""
        super().__init__(import_name)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def make_default_options_response(self) -> Response:
        """OPTIONS: 204 with the methods the path allows in Allow, and no body (Flask's own
        answer is a 200 typed text/html with an empty body)."""
        allowed = super().make_default_options_response().headers["Allow"]
        response = Response(status=204, headers={"Allow": allowed})
        del response.headers["Content-Type"]
        return response

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's answer for FUNC, remembered: Flask asks for every hook of every request."""
        sync = self._sync.get(func)
        if sync is None:
            sync = self._sync[func] = super().ensure_sync(func)
        return sync


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app from environment settings; OVERRIDES replace settings (tests)."""
    settings = Settings(**(overrides or {}))
    logs.configure(settings.log_level, settings.api_name)

    app = Api(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["services"] = wiring.build_services(settings)

    context.init_app(
        app,
        settings.api_name,
        settings.consistency_cookie_max_age_s,
        secure_cookie=settings.app_env == "production",
    )
    metrics.init_app(app)
    access.init_app(app, settings.writes_need_api_key, settings.rate_limit_enabled)
    app.url_map.converters["int"] = AsciiIntConverter
    # "//api/users" is no path of the API: a 404 problem, not Werkzeug's HTML 308 to "/api/users".
    app.url_map.merge_slashes = False
    app.register_blueprint(health.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(openapi.bp)
    register_error_handlers(app)

    # Exactly one trusted proxy hop (nginx) in front of the app.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]
    return app
