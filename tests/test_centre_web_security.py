"""The dashboard against a hostile browser (issue 19, items 5-7): sessions the server ends, CSRF,
same-site redirects, capped bodies, safe CSV cells, security headers, the client's address.

In-process (Starlette's TestClient) over a real SQLite store, except the body cap, which is
tested against a real uvicorn over a socket (what must not happen is the server reading 200 MiB).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import socket
import time

import pytest
from starlette.testclient import TestClient

from kiosk.centre.accounts import Accounts
from kiosk.centre.audit import AuditLog
from kiosk.centre.limiter import LoginLimiter
from kiosk.centre.queries import Centre, Settings
from kiosk.centre.registry import Venue
from kiosk.centre.sessions import Sessions
from kiosk.centre.store import open_store
from kiosk.testing.clock import FakeClock
from kiosk.centre.web import create_app
from kiosk.centre.web.exports import safe_cell
from kiosk.centre.web.security import client_address, parse_networks, safe_path
from centre_helpers import LiveServer, seeded_city

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("websec")
    store = open_store(tmp / "centre.sqlite3")
    c = seeded_city(store, venues=30)
    districts = sorted({v.district for v in c.venues})
    yield store, c, districts, tmp
    store.close()


@pytest.fixture(scope="module")
def accounts_file(city):
    """The accounts, hashed once for the module (argon2 is slow on purpose)."""
    store, c, districts, tmp = city
    acc = Accounts.load(tmp / "accounts.json")
    acc.add("city", PASSWORD)
    acc.add("d0", PASSWORD, districts[0])
    acc.add("d1", PASSWORD, districts[1])
    return acc.save()


@pytest.fixture
def site(city, accounts_file, tmp_path):
    """Accounts in a file, two dashboards ("processes") over one store and that file, a clock we move."""
    store, c, districts, _ = city
    path = tmp_path / "accounts.json"
    shutil.copy(accounts_file, path)
    clock = FakeClock(1_800_000_000.0)
    store.execute("DELETE FROM web_sessions") if _has_sessions(store) else None
    audit = AuditLog(tmp_path / "audit.jsonl")

    def app(**kw):
        sessions = Sessions(store, idle_seconds=1800, max_seconds=12 * 3600, clock=clock)
        return create_app(Centre(store, Settings(grace_hour=0)), Accounts.load(path), secure_cookies=False,
                          sessions=sessions, audit=audit, **kw)

    return {"app": app, "path": path, "clock": clock, "districts": districts, "audit": audit, "store": store}


def _has_sessions(store) -> bool:
    return bool(store.query("SELECT name FROM sqlite_master WHERE name = 'web_sessions'"))


def token(client: TestClient, page: str = "/login") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
    assert found, page
    return found.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD, **extra):
    return client.post("/login", data={"name": name, "password": password, "csrf": token(client), **extra},
                       follow_redirects=False)


def client_of(app, **kw) -> TestClient:
    return TestClient(app, base_url="http://testserver", **kw)


# -- item 5: sessions the server can end ----------------------------------------------------------
def test_logout_ends_the_session_at_once(site):
    c = client_of(site["app"]())
    assert login(c, "city").status_code == 303
    stolen = c.cookies.get("centre_session")
    assert c.get("/api/v1/me").json()["account"] == "city"
    r = c.post("/logout", data={"csrf": token(c, "/inspection")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    thief = client_of(site["app"]())
    thief.cookies.set("centre_session", stolen, domain="testserver.local")
    assert thief.get("/api/v1/me").status_code == 401  # the copied cookie is worth nothing now


@pytest.mark.parametrize("change", ["password", "disable", "remove", "role"])
def test_an_account_change_ends_its_sessions_in_every_dashboard_process(site, change):
    a, b = client_of(site["app"]()), client_of(site["app"]())  # two processes over one store and file
    other = client_of(site["app"]())
    assert login(a, "d0").status_code == 303 and login(other, "d1").status_code == 303
    b.cookies.set("centre_session", a.cookies.get("centre_session"), domain="testserver.local")
    assert a.get("/api/v1/me").status_code == 200 and b.get("/api/v1/me").status_code == 200
    acc = Accounts.load(site["path"])
    if change == "password":
        acc.set_password("d0", "a brand new password")
    elif change == "disable":
        acc.set_disabled("d0", True)
    elif change == "remove":
        acc.remove("d0")
    else:
        acc.add("d0", PASSWORD, role="inspector", districts=site["districts"][:2], replace_existing=True)
    acc.save()
    assert a.get("/api/v1/me").status_code == 401
    assert b.get("/api/v1/me").status_code == 401
    assert other.get("/api/v1/me").status_code == 200  # other accounts keep theirs
    ended = [e for e in site["audit"].read() if e["event"] == "session-ended"]
    assert ended and ended[-1]["account"] == "d0"
    if change == "password":
        assert login(a, "d0", PASSWORD).status_code == 401
        assert login(a, "d0", "a brand new password").status_code == 303
    if change == "disable":
        assert login(a, "d0").status_code == 401  # the right password, but disabled


def test_idle_and_absolute_timeouts(site):
    c = client_of(site["app"]())
    clock = site["clock"]
    assert login(c, "city").status_code == 303
    clock.t += 29 * 60
    assert c.get("/api/v1/me").status_code == 200
    clock.t += 29 * 60  # used 29 minutes ago: still alive
    assert c.get("/api/v1/me").status_code == 200
    clock.t += 31 * 60  # idle for 31 minutes
    assert c.get("/api/v1/me").status_code == 401
    assert login(c, "city").status_code == 303
    for _ in range(40):  # used every 20 minutes, yet 12 hours after its login it ends
        clock.t += 20 * 60
        status = c.get("/api/v1/me").status_code
        if status == 401:
            break
    assert status == 401 and 11.5 * 3600 < 20 * 60 * (_ + 1) <= 12 * 3600 + 20 * 60


def test_the_session_id_rotates_at_login(site):
    c = client_of(site["app"]())
    c.cookies.set("centre_session", "fixated-by-an-attacker-0123456789", domain="testserver.local")
    assert login(c, "d0").status_code == 303
    first = c.cookies.get("centre_session")
    assert first and first != "fixated-by-an-attacker-0123456789" and len(first) >= 40
    assert login(c, "d0").status_code == 303
    second = c.cookies.get("centre_session")
    assert second != first
    old = client_of(site["app"]())
    old.cookies.set("centre_session", first, domain="testserver.local")
    assert old.get("/api/v1/me").status_code == 401  # the id before the new login is gone
    rows = site["store"].query("SELECT id_hash FROM web_sessions")
    assert all(second not in r["id_hash"] for r in rows)  # the store keeps hashes, never the id


# -- item 6: CSRF, same-site redirects -------------------------------------------------------------
def test_login_needs_the_forms_token_and_this_sites_origin(site):
    c = client_of(site["app"]())
    form = {"name": "city", "password": PASSWORD}
    assert c.post("/login", data=form, follow_redirects=False).status_code == 403  # no token
    t = token(c)
    assert c.post("/login", data={**form, "csrf": "x" * 43}, follow_redirects=False).status_code == 403
    for origin in ("https://evil.example", "null", "http://testserver.evil.example"):
        r = c.post("/login", data={**form, "csrf": t}, headers={"Origin": origin}, follow_redirects=False)
        assert r.status_code == 403 and "another site" in r.text
    r = c.post("/login", data={**form, "csrf": t}, headers={"Referer": "https://evil.example/page"},
               follow_redirects=False)
    assert r.status_code == 403
    r = c.post("/login", data={**form, "csrf": t}, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303


def test_login_csrf_cannot_swap_the_victims_session(site):
    """Another site posts its own login form (a district's account) into the city official's browser."""
    victim = client_of(site["app"]())
    assert login(victim, "city").status_code == 303
    session = victim.cookies.get("centre_session")
    attacker = client_of(site["app"]())
    attackers_token = token(attacker)  # the attacker can fetch a token of its own, not the victim's cookie
    r = victim.post("/login", data={"name": "d1", "password": PASSWORD, "csrf": attackers_token},
                    headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403
    r = victim.post("/login", data={"name": "d1", "password": PASSWORD, "csrf": attackers_token},
                    follow_redirects=False)
    assert r.status_code == 403  # without Origin: the token is not the victim's
    assert victim.cookies.get("centre_session") == session
    assert victim.get("/api/v1/me").json()["account"] == "city"


def test_language_and_logout_are_not_links(site):
    c = client_of(site["app"]())
    assert login(c, "city").status_code == 303
    assert c.get("/lang/en", follow_redirects=False).status_code == 405
    assert c.get("/logout", follow_redirects=False).status_code == 405
    assert c.post("/lang/en", follow_redirects=False).status_code == 403  # no token
    assert c.post("/logout", follow_redirects=False).status_code == 403
    t = token(c, "/inspection")
    assert c.post("/logout", data={"csrf": t}, headers={"Origin": "https://evil.example"},
                  follow_redirects=False).status_code == 403
    assert c.get("/api/v1/me").status_code == 200  # still logged in
    assert c.get("/api/v1/me").json()["lang"] == "vi"
    r = c.post("/lang/en", data={"csrf": t, "next": "/inspection"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/inspection"
    assert c.get("/api/v1/me").json()["lang"] == "en"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
                                    "http:/evil.example", "/%0d%0aLocation:x", "javascript:alert(1)", "/\t/evil"])
def test_redirects_stay_on_this_site(site, target):
    c = client_of(site["app"]())
    r = login(c, "d0", next=target)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location
    assert "evil" not in location or location.startswith("/%")
    r = c.post("/lang/en", data={"csrf": token(c, "/inspection"), "next": target},
               headers={"Referer": "https://evil.example/"}, follow_redirects=False)
    assert r.status_code == 403  # a cross-site Referer is refused outright
    r = c.post("/lang/en", data={"csrf": token(c, "/inspection"), "next": target}, follow_redirects=False)
    assert r.headers["location"] in ("/", target) and not r.headers["location"].startswith("//")
    assert safe_path(target) in ("/", target)


def test_safe_path():
    assert safe_path("/inspection?kind=silent") == "/inspection?kind=silent"
    for bad in ("//x", "/\\x", "https://x/", "x", "", None, "/a\nb", "/a\\b"):
        assert safe_path(bad) == "/"


# -- item 6: bodies capped before they are read ------------------------------------------------------
def _rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _raw_post(port: int, headers: str, body_chunks) -> tuple[int, float]:
    """POST over a raw socket: (the status answered, seconds until it came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    t = time.monotonic()
    s.sendall(headers.encode())
    status = 0
    try:
        for chunk in body_chunks:
            s.sendall(chunk)
            s.setblocking(False)
            try:
                head = s.recv(4096)
            except BlockingIOError:
                head = b""
            s.setblocking(True)
            if head:
                status = int(head.split()[1])
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    if not status:
        s.settimeout(20)
        status = int(s.recv(4096).split()[1])
    s.close()
    return status, time.monotonic() - t


def test_a_huge_login_body_is_refused_before_it_is_read(site):
    server = LiveServer(site["app"]())
    try:
        before = _rss_kib()
        mib = b"n" * (1 << 20)
        status, _ = _raw_post(server.port, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              "application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % (200 << 20),
                              (mib for _ in range(200)))
        assert status == 413
        # chunked: no length to judge by, the bytes are counted as they come
        chunk = b"%x\r\n%s\r\n" % (len(mib), mib)
        status, _ = _raw_post(server.port, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              "application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
                              (chunk for _ in range(200)))
        assert status == 413
        assert _rss_kib() - before < 64 * 1024  # the server (in this process) never held the bodies
    finally:
        server.stop()


# -- item 6: CSV cells and headers ----------------------------------------------------------------------
def test_csv_cells_cannot_run_as_formulas(site):
    store = site["store"]
    d = site["districts"][0]
    evil = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\tTAB=1", "\rCR=1"]
    store.import_venues([Venue(f"EVIL-{i}", name, f"{name} street", "Hà Nội", d, "Phường Ác", "", "", "", "")
                         for i, name in enumerate(evil)])
    try:
        c = client_of(site["app"]())
        assert login(c, "city").status_code == 303
        c.cookies.set("centre_lang", "en")  # the machine form's column names (a Vietnamese one is checked too)
        vi = client_of(site["app"]())
        assert login(vi, "city").status_code == 303
        vi_text = vi.get("/inspection.csv", params={"kind": "no-scans-today"}).text
        assert "'=HYPERLINK" in vi_text and "\n=" not in vi_text and ",=" not in vi_text
        text = c.get("/inspection.csv", params={"kind": "no-scans-today"}).text.lstrip("\ufeff")
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["venue_id"].startswith("EVIL-")]
        assert {r["venue_name"] for r in rows} == {"'" + n for n in evil}
        assert all(r["address"].startswith("'") for r in rows)
        assert all(re.fullmatch(r"\d+", r["for_seconds"]) for r in rows)  # numbers stay numbers
        report = list(csv.DictReader(io.StringIO(c.get("/report.csv").text.lstrip("\ufeff"))))
        assert any(r["ward"] == "Phường Ác" for r in report)
        assert all(re.fullmatch(r"-?\d+", r["scans"]) for r in report)
    finally:
        store.execute("DELETE FROM venues WHERE venue_id LIKE 'EVIL-%'")
    assert safe_cell(-5) == -5 and safe_cell(-2.5) == -2.5 and safe_cell("-5") == "-5" and safe_cell("-1e3") == "-1e3"
    assert safe_cell("-5+1") == "'-5+1" and safe_cell("=1") == "'=1" and safe_cell(None) == ""
    assert safe_cell("Quán = bún") == "Quán = bún"


def test_every_answer_carries_the_security_headers(site):
    c = client_of(site["app"]())
    anonymous = [c.get(p, follow_redirects=False) for p in ("/login", "/static/centre.js", "/nowhere", "/api/v1/me")]
    assert login(c, "city").status_code == 303
    answers = anonymous + [c.get(p) for p in ("/", "/api/v1/overview", "/report.csv", "/inspection")]
    for r in answers:
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp and "script-src 'self'" in csp, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-frame-options"] == "DENY"
    svg = c.get("/charts/history.svg")
    assert svg.headers["content-security-policy"].startswith("default-src 'none'")
    assert "script" not in svg.headers["content-security-policy"]
    page = c.get("/").text
    assert "<script>" not in page and " style=" not in page and "<style" not in page  # nothing inline


# -- item 7: the client's address ------------------------------------------------------------------------
def _scope(peer: str, xff: str | None = None) -> dict:
    headers = [(b"x-forwarded-for", xff.encode())] if xff is not None else []
    return {"client": (peer, 1234), "headers": headers}


def test_the_client_address_is_the_peer_unless_the_peer_is_a_trusted_proxy():
    none = parse_networks([])
    proxies = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    assert client_address(_scope("127.0.0.1", "6.6.6.6"), none) == "127.0.0.1"  # a local client is no proxy
    assert client_address(_scope("203.0.113.9", "6.6.6.6"), proxies) == "203.0.113.9"
    assert client_address(_scope("127.0.0.1", "6.6.6.6, 198.51.100.7"), proxies) == "198.51.100.7"
    assert client_address(_scope("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3"), proxies) == "198.51.100.7"
    assert client_address(_scope("127.0.0.1", "10.0.0.5"), proxies) == "10.0.0.5"  # all trusted: the first
    assert client_address(_scope("127.0.0.1"), proxies) == "127.0.0.1"
    assert client_address(_scope("127.0.0.1", "junk"), proxies) == "junk"
    with pytest.raises(ValueError, match="--trusted-proxy 'nope'"):
        parse_networks(["nope"])


def test_forwarded_for_from_an_untrusted_peer_does_not_move_the_address_limit(site):
    app = site["app"](limiter=LoginLimiter(failures=50, address_failures=3))
    c = client_of(app, client=("127.0.0.1", 5555))
    for i in range(3):
        r = c.post("/login", data={"name": f"nobody{i}", "password": "wrong password", "csrf": token(c)},
                   headers={"X-Forwarded-For": f"198.51.100.{i}"}, follow_redirects=False)
        assert r.status_code == 401
    assert login(c, "city").status_code == 429  # the peer is locked, whatever it claimed
    proxied = site["app"](limiter=LoginLimiter(failures=50, address_failures=3),
                          trusted_proxies=parse_networks(["127.0.0.1"]))
    c = client_of(proxied, client=("127.0.0.1", 5555))
    for i in range(6):
        r = c.post("/login", data={"name": f"nobody{i}", "password": "wrong password", "csrf": token(c)},
                   headers={"X-Forwarded-For": f"6.6.6.6, 198.51.100.{i}"}, follow_redirects=False)
        assert r.status_code == 401
    assert login(c, "city", **{}).status_code == 303  # behind the trusted proxy, each client is its own
    entries = site["audit"].read()
    assert any(e["event"] == "login-failed" and e.get("address") == "198.51.100.5" for e in entries)
    assert all("nobody" not in str(e) for e in entries)  # a typed name that is no account is never written


def test_one_officials_typos_do_not_lock_out_the_others_behind_the_same_proxy(site):
    app = site["app"](limiter=LoginLimiter(failures=5, window=300))
    c = client_of(app, client=("192.0.2.10", 4000))
    for _ in range(5):
        assert login(c, "d0", "my old password").status_code == 401
    assert login(c, "d0").status_code == 429  # that name waits
    assert login(c, "d1").status_code == 303  # a colleague behind the same address does not
    other = client_of(app, client=("192.0.2.99", 4000))
    assert login(other, "d0").status_code == 429  # and the locked name is locked from anywhere
    audit = site["audit"].read()
    assert [e["event"] for e in audit if e.get("account") == "d0"] == ["login-failed"] * 5 + ["login-refused"] * 2
    assert not any(PASSWORD in str(e) or "my old password" in str(e) for e in audit)
