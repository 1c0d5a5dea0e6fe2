"""Login, logout and the language switch: the dashboard's only state-changing routes.

Each is a POST with the CSRF token (the session's; before login, the ``centre_csrf`` cookie's,
double-submitted) and from this site's own pages (:func:`~kiosk.centre.web.security.same_origin`):
no other site can log a browser in as someone else, out, or into another language. A login makes
a new session id; every outcome is in the audit log. Redirects go only to paths of this site.
"""

from __future__ import annotations

import hmac
import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kiosk.centre.access import home
from kiosk.centre.i18n import LANGUAGES, words
from kiosk.centre.web.dashboard import CSRF_COOKIE, LANG_COOKIE, SESSION_COOKIE, Asked, Dashboard
from kiosk.centre.web.security import safe_path, same_origin

CROSS_SITE = "this form came from another site or is out of date: reload the page and try again"


async def _form(request: Request) -> dict[str, str]:
    # A urlencoded form of a few fields (Starlette's own form parser needs python-multipart); the
    # body is capped by BodyLimit before it gets here.
    body = await request.body()
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    except ValueError:
        return {}
    return {k: v for k, v in pairs}


def _token_ok(ask: Asked, given: str) -> bool:
    want = ask.session.csrf if ask.session is not None else ask.request.cookies.get(CSRF_COOKIE, "")
    return bool(want) and hmac.compare_digest(want.encode("utf-8", "replace"), given.encode("utf-8", "replace"))


def _refused(dash: Dashboard, ask: Asked) -> Response:
    return dash.finish(ask, dash.error_page(ask, 403, CROSS_SITE))


def routes(dash: Dashboard):
    async def login(request: Request) -> Response:
        ask = await run_in_threadpool(dash.asked, request)
        if request.method == "GET":
            nxt = safe_path(request.query_params.get("next"), "")
            if ask.account is not None:
                return dash.finish(ask, RedirectResponse(nxt or home(ask.account), status_code=303))
            return dash.finish(ask, dash.page(ask, "login.html", error="", next=nxt))
        if not same_origin(request, dash.trusted):
            return _refused(dash, ask)
        form = await _form(request)
        given = form.get("csrf", "")
        if not (_token_ok_anon(ask, given) or (ask.session is not None and _token_ok(ask, given))):
            return _refused(dash, ask)
        name, password = form.get("name", "")[:64], form.get("password", "")[:1024]
        nxt = safe_path(form.get("next"), "")
        key = dash.key(name)
        w = words(ask.lang)

        def again(status: int, error: str) -> Response:
            return dash.finish(ask, dash.page(ask, "login.html", status=status, error=error, next=nxt))

        if dash.limiter.blocked(key, ask.address):
            await run_in_threadpool(dash.audit.write, "login-refused", account=_known(dash, key),
                                    address=ask.address, why="too many failures")
            return again(429, w["too_many"])
        account = await run_in_threadpool(dash.accounts.check, name, password)  # argon2: off the event loop
        if account is None:
            known = _known(dash, key)
            dash.limiter.failed(key, ask.address, known=known is not None)
            await run_in_threadpool(dash.audit.write, "login-failed", account=known, address=ask.address)
            return again(401, w["bad_login"])
        dash.limiter.succeeded(key)
        token, session = await run_in_threadpool(dash.sessions.start, account.name, account.stamp, ask.token)
        await run_in_threadpool(dash.audit.write, "login", account=account.name, role=account.role,
                                address=ask.address)
        response = RedirectResponse(nxt or home(account), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, max_age=int(dash.sessions.max_seconds), path="/",
                            secure=dash.secure_cookies, httponly=True, samesite="strict")
        return response

    async def logout(request: Request) -> Response:
        ask = await run_in_threadpool(dash.asked, request)
        if ask.session is None:
            return dash.finish(ask, RedirectResponse("/login", status_code=303))
        if not same_origin(request, dash.trusted) or not _token_ok(ask, (await _form(request)).get("csrf", "")):
            return _refused(dash, ask)
        await run_in_threadpool(dash.sessions.end_session, ask.session)
        await run_in_threadpool(dash.audit.write, "logout", account=ask.account.name, address=ask.address)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=dash.secure_cookies, httponly=True,
                               samesite="strict")
        return response

    async def set_lang(request: Request) -> Response:
        ask = await run_in_threadpool(dash.asked, request)
        code = request.path_params["code"]
        if code not in LANGUAGES:
            return dash.finish(ask, dash.error_page(ask, 400, f"code: one of {', '.join(LANGUAGES)}"))
        form = await _form(request)
        ok = _token_ok(ask, form.get("csrf", "")) if ask.session is not None else _token_ok_anon(ask, form.get("csrf", ""))
        if not same_origin(request, dash.trusted) or not ok:
            return _refused(dash, ask)
        response = RedirectResponse(safe_path(form.get("next"), "/"), status_code=303)
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, path="/", secure=dash.secure_cookies,
                            httponly=True, samesite="lax")
        return dash.finish(ask, response)

    return login, logout, set_lang


def _token_ok_anon(ask: Asked, given: str) -> bool:
    """The login form's token: the ``centre_csrf`` cookie's value, sent back in the form."""
    want = ask.request.cookies.get(CSRF_COOKIE, "")
    return len(want) >= 20 and hmac.compare_digest(want.encode("utf-8", "replace"), given.encode("utf-8", "replace"))


def _known(dash: Dashboard, key: str) -> str | None:
    """The account's name when ``key`` names one (never a typed name that is not an account: it may be
    a password typed into the wrong field)."""
    return key if dash.accounts.get(key) is not None else None
