"""The ASGI app: the route table's routes, the forms, the static files and the defences around them."""

from __future__ import annotations

import logging
import re
import sqlite3
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kiosk.centre.accounts import Accounts
from kiosk.centre.audit import AuditLog
from kiosk.centre.health import Health
from kiosk.centre.limiter import LoginLimiter
from kiosk.centre.queries import Centre
from kiosk.centre.sessions import Sessions
from kiosk.centre.photo_check import MAX_PHOTO_BYTES
from kiosk.centre.web import auth, field_forms
from kiosk.centre.web.dashboard import DATA, JSON, Dashboard
from kiosk.centre.web.openapi import describe
from kiosk.centre.web.routes import ENDPOINTS
from kiosk.centre.web.security import BodyLimit, Network, SecurityHeaders

MAX_BODY = 64 * 1024  # the largest form the dashboard takes (login: three short fields)
# The photo of a venue's posted code is the one larger body the centre takes (kiosk.centre.photo_check).
PHOTO_LIMIT = ((re.compile(r"/api/v1/visits/[^/]+/photo"), MAX_PHOTO_BYTES, field_forms.PHOTO_TOO_LARGE),)
STORE_DOWN = "the centre's store cannot be reached just now; try again in a minute"

log = logging.getLogger(__name__)


def _store_errors() -> tuple[type[Exception], ...]:
    """The exceptions a store that is down or unreachable raises (psycopg's only where it is installed)."""
    errors: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.OperationalError)
    return tuple(errors)


class StoreDown:
    """A store that cannot be reached answers 503 with a sentence (pages and API alike), never a 500.

    Logged at most once a minute: a dashboard polled by many browsers during an outage must not flood
    the log. The connection is asked again on the next request (kiosk.centre.store reconnects).
    """

    def __init__(self):
        self.logged_at = float("-inf")

    def __call__(self, request, exc):
        now = time.monotonic()
        if now - self.logged_at >= 60:
            self.logged_at = now
            log.warning("store unreachable: %s", type(exc).__name__)
        if request.url.path.startswith("/api/"):
            return JSON({"error": STORE_DOWN}, status_code=503, headers={"Retry-After": "30", "Cache-Control": "no-store"})
        return Response(STORE_DOWN, status_code=503, media_type="text/plain; charset=utf-8",
                        headers={"Retry-After": "30", "Cache-Control": "no-store"})


def create_app(centre: Centre, accounts: Accounts, session_key: str | None = None, secure_cookies: bool = True,
               limiter: LoginLimiter | None = None, refresh_seconds: float = 10.0, sessions: Sessions | None = None,
               audit: AuditLog | None = None, trusted_proxies: list[Network] | None = None,
               max_body: int = MAX_BODY, health: Health | None = None, metrics=None) -> Starlette:
    """The dashboard's ASGI app (uvicorn serves it; tests drive it in-process or through a real browser).

    ``sessions``: kept in ``centre.store`` unless given (idle and absolute timeouts there).
    ``session_key`` is accepted for older callers and not used: sessions are ids kept server-side.
    ``health``: the probes ``/healthz`` and ``/readyz`` answer (default: the store's alone, no ingest);
    ``metrics``: what ``/metrics`` shows a city account (default: the fleet's state from the store).
    """
    del session_key
    health = health or Health(centre.store)
    if metrics is None:
        from kiosk.centre.metrics import CentreMetrics

        metrics = CentreMetrics(centre=centre, health=health, role="dashboard")
    dash = Dashboard(centre, accounts, sessions or Sessions(centre.store), limiter or LoginLimiter(),
                     audit or AuditLog(None), secure_cookies=secure_cookies, refresh_seconds=refresh_seconds,
                     trusted_proxies=trusted_proxies, metrics=metrics)
    login, logout, set_lang = auth.routes(dash)
    field_posts = field_forms.routes(dash)
    description = describe()

    def probe(request):  # no session: a load balancer asks; it learns one word per check (kiosk.centre.health)
        status, body = health.answer(request.url.path)
        return Response(body, status_code=status, media_type="application/json",
                        headers={"Cache-Control": "no-store"})

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{code}", set_lang, methods=["POST"]),
        Route("/api/v1/openapi.json", lambda request: JSON(description), methods=["GET"]),
        Route("/healthz", probe, methods=["GET"]),
        Route("/readyz", probe, methods=["GET"]),
        *(Route(e.path, dash.endpoint(e), methods=["GET"]) for e in ENDPOINTS),
        *(Route(path, post, methods=["POST"]) for path, post in field_posts),
        Mount("/static", StaticFiles(directory=str(DATA / "static")), name="static"),
    ]
    store_down = StoreDown()
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, hsts=secure_cookies),
                                               Middleware(BodyLimit, max_bytes=max_body, larger=PHOTO_LIMIT)],
                    exception_handlers={e: store_down for e in _store_errors()})
    app.state.dashboard = dash
    return app
