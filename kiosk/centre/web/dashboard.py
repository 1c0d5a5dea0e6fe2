"""The dashboard's state and the one wrapper every route goes through.

:class:`Dashboard` holds what the routes share (the query layer, accounts, sessions, limiter, audit
log, templates). :meth:`Dashboard.endpoint` turns a row of the route table into a Starlette
endpoint: it finds the session, refuses an anonymous visitor (401 for the API, the login page
otherwise), parses the declared parameters (400 naming a bad one), calls the handler and answers
:class:`~kiosk.centre.access.Forbidden` with 403 and ``LookupError`` with 404.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import urllib.parse
from dataclasses import dataclass, field
from importlib import resources

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kiosk.centre import access
from kiosk.centre.access import Forbidden
from kiosk.centre.accounts import Account, Accounts, account_key
from kiosk.centre.audit import AuditLog
from kiosk.centre.i18n import LANGUAGES, words
from kiosk.centre.limiter import LoginLimiter
from kiosk.centre.queries import FIGURES, INSPECTION_KINDS, Centre, DayOutOfRange
from kiosk.centre.sessions import Session, Sessions
from kiosk.centre.web.params import BadParameter
from kiosk.centre.web.security import Network, client_address

DATA = resources.files("kiosk").joinpath("data/centre")
SESSION_COOKIE = "centre_session"
CSRF_COOKIE = "centre_csrf"  # the login form's token, before there is a session
LANG_COOKIE = "centre_lang"
log = logging.getLogger(__name__)


def finite(value):
    """``value`` with every NaN or infinity turned into null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return json.dumps(finite(content), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_error(status: int, message: str, **extra) -> JSON:
    return JSON({"error": message, **extra}, status_code=status, headers={"Cache-Control": "no-store"})


@dataclass
class Asked:
    """One request as the routes see it: who asks, in which language, with which CSRF token."""

    request: Request
    account: Account | None
    session: Session | None
    lang: str
    token: str | None = None  # the session cookie's id
    anon_csrf: str | None = None  # a new login-form token to set as a cookie
    clear_session: bool = False
    address: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        if self.session is not None:
            return self.session.csrf
        if self.anon_csrf is None:
            have = self.request.cookies.get(CSRF_COOKIE, "")
            self.anon_csrf = have if 20 <= len(have) <= 64 and have.isascii() and have.isprintable() else ""
        if not self.anon_csrf:
            self.anon_csrf = secrets.token_urlsafe(32)
            self.extra["set_anon_csrf"] = True
        return self.anon_csrf


class Dashboard:
    def __init__(self, centre: Centre, accounts: Accounts, sessions: Sessions, limiter: LoginLimiter,
                 audit: AuditLog, secure_cookies: bool = True, refresh_seconds: float = 10.0,
                 trusted_proxies: list[Network] | None = None, metrics=None):
        self.centre, self.accounts, self.sessions, self.limiter, self.audit = centre, accounts, sessions, limiter, audit
        self.metrics = metrics  # kiosk.centre.metrics.CentreMetrics: /metrics for a city account
        self.secure_cookies = secure_cookies
        self.refresh_seconds = refresh_seconds
        self.trusted = list(trusted_proxies or [])
        self.env = Environment(loader=FileSystemLoader(str(DATA / "templates")), autoescape=select_autoescape(["html"]))

    # -- who asks ---------------------------------------------------------------------------
    def asked(self, request: Request) -> Asked:
        """The request's account and session (sync: it reads the store)."""
        lang = request.cookies.get(LANG_COOKIE)
        lang = lang if lang in LANGUAGES else "vi"
        token = request.cookies.get(SESSION_COOKIE)
        address = client_address(request.scope, self.trusted)
        s = self.sessions.find(token) if token else None
        account = None
        if s is not None:
            account = self.accounts.get(s.account)
            if account is None or account.disabled or account.stamp != s.stamp:
                # Removed, disabled, a new password or role: the session ends here, in whichever process.
                self.sessions.end_session(s)
                self.audit.write("session-ended", account=s.account, why="account changed" if account else
                                 "account removed")
                s, account = None, None
        return Asked(request, account, s, lang, token=token, clear_session=bool(token) and s is None,
                     address=address)

    def finish(self, ask: Asked, response: Response) -> Response:
        """Cookies the request's outcome calls for."""
        if ask.clear_session:
            response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure_cookies, httponly=True,
                                   samesite="strict")
        if ask.extra.get("set_anon_csrf"):
            response.set_cookie(CSRF_COOKIE, ask.anon_csrf, path="/", secure=self.secure_cookies, httponly=True,
                                samesite="strict")
        return response

    # -- answers ----------------------------------------------------------------------------
    def page(self, ask: Asked, template: str, status: int = 200, **ctx) -> HTMLResponse:
        req = ask.request
        here = req.url.path + ("?" + req.url.query if req.url.query else "")
        html = self.env.get_template(template).render(
            w=words(ask.lang), lang=ask.lang, account=ask.account, figures=FIGURES, kinds=INSPECTION_KINDS,
            q=urllib.parse.quote, refresh=self.refresh_seconds, path=req.url.path, here=here, csrf=ask.csrf,
            timezone=self.centre.settings.timezone,
            may=(lambda cap: ask.account is not None and access.may(ask.account, cap)), access=access, **ctx)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    def error_page(self, ask: Asked, status: int, message: str) -> HTMLResponse:
        return self.page(ask, "error.html", status=status, message=message)

    def refuse(self, ask: Asked, kind: str, status: int, message: str, **extra) -> Response:
        if kind in ("api", "metrics"):
            return json_error(status, message, **extra)
        return self.error_page(ask, status, message)

    def login_redirect(self, ask: Asked) -> Response:
        req = ask.request
        here = req.url.path + ("?" + req.url.query if req.url.query else "")
        return RedirectResponse("/login?next=" + urllib.parse.quote(here, safe=""), status_code=303)

    def endpoint(self, spec):
        """The Starlette endpoint of one route table row (sync: Starlette runs it in its thread pool)."""
        def run(request: Request) -> Response:
            ask = self.asked(request)
            return self.finish(ask, self._run(spec, ask))
        run.__name__ = spec.name
        return run

    def _run(self, spec, ask: Asked) -> Response:
        if ask.account is None:
            if spec.kind in ("api", "metrics"):  # machines' answers: 401, never the login page
                return json_error(401, "login required")
            return self.login_redirect(ask)
        try:
            values = {}
            for p in spec.params:
                raw = ask.request.path_params.get(p.name) if p.where == "path" else \
                    ask.request.query_params.get(p.name)
                values[p.name] = p.parse(raw)
            result = spec.handler(self, ask, **values)
        except BadParameter as exc:
            return self.refuse(ask, spec.kind, 400, exc.message, parameter=exc.name)
        except DayOutOfRange as exc:  # before LookupError: its sentence says which days there are
            return self.refuse(ask, spec.kind, 404, str(exc), parameter="day")
        except Forbidden:
            return self.refuse(ask, spec.kind, 403, "not your district" if spec.kind in ("api", "metrics") else "403")
        except LookupError:
            return self.refuse(ask, spec.kind, 404, "not found")
        if isinstance(result, Response):
            return result
        return JSON(result, headers={"Cache-Control": "no-store"})

    def key(self, name: str) -> str:
        return account_key(name)[:64]
